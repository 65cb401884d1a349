"""Stable colours: a name (team, deployment, account) always gets the same colour, on every page and every run.

The colour is the name's SHA-1 modulo the palette (Tableau's ten without its grey, and five of its twenty: 14
colours that stay apart and readable on white), so it depends on nothing but the name: not on sort order, on which
other names are on the chart, or on the Python process (`hash()` is salted per process, SHA-1 is not). Two names
can share a colour (with 14 colours, likely once there are five or more); the legend and hover text still name each.
"""

from __future__ import annotations

import hashlib

PALETTE: tuple[str, ...] = (
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f",
    "#1f4e79", "#8cd17d", "#b6992d", "#499894", "#d37295",
)

#: Status classes keep fixed colours: success muted, client errors amber, throttling orange-red, server errors red.
STATUS_COLOURS: dict[str, str] = {
    "2xx": "#9ecae1",
    "4xx (not 429)": "#f2b134",
    "429": "#e6550d",
    "5xx": "#a50f15",
}


def colour_of(name: str) -> str:
    """The palette colour for a name."""
    digest = hashlib.sha1(name.encode("utf-8"), usedforsecurity=False).digest()
    return PALETTE[int.from_bytes(digest[:4], "big") % len(PALETTE)]
