"""ARM's error shape, shared by the emulators of ARM-hosted APIs (metricAlerts, the Metrics API)."""

from __future__ import annotations

import json

#: The `error.code` ARM answers with for the statuses the emulators inject.
FAULT_CODES = {400: "BadRequest", 403: "AuthorizationFailed", 429: "TooManyRequests", 500: "InternalServerError",
               503: "ServiceUnavailable", 504: "GatewayTimeout"}


class ArmError(Exception):
    """Raised inside an emulator's handler; answered as an ARM error body with this status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def arm_error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()
