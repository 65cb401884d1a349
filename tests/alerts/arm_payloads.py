"""ARM metricAlert payloads as the service returns them: the PUT body plus id, type, timestamps, hidden-link tags."""

from __future__ import annotations

import copy
import json
from typing import Any

from alerts.catalog import OWNERSHIP_TAG_KEY
from alerts.model import RuleEssence, to_arm_body


def server_payload(essence: RuleEssence, *, managed: bool = True, shout_ids: bool = False) -> dict[str, Any]:
    """What a GET or list returns after a PUT of `essence`; `shout_ids` upper-cases ids as ARM sometimes does."""
    payload: dict[str, Any] = json.loads(json.dumps(to_arm_body(essence)))
    if not managed:
        del payload["tags"][OWNERSHIP_TAG_KEY]
    props = payload["properties"]
    for scope in props["scopes"]:
        payload["tags"][f"hidden-link:{scope}"] = "Resource"
    props["lastUpdatedTime"] = "2025-03-03T10:00:00.0000000Z"
    props["isMigrated"] = False
    payload["id"] = essence.resource_id
    payload["name"] = essence.name
    payload["type"] = "Microsoft.Insights/metricAlerts"
    if shout_ids:
        payload["id"] = payload["id"].upper()
        props["scopes"] = [s.upper() for s in props["scopes"]]
        for action in props["actions"]:
            action["actionGroupId"] = action["actionGroupId"].upper()
    return payload


def edited(payload: dict[str, Any], **properties: Any) -> dict[str, Any]:
    """A copy of a payload with some properties changed, as if someone edited the rule in the portal."""
    result = copy.deepcopy(payload)
    result["properties"].update(properties)
    return result
