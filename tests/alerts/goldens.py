"""Golden files: compared byte for byte; rewritten instead when AOAI_OBS_UPDATE_GOLDEN=1."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def assert_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("AOAI_OBS_UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run the tests once with AOAI_OBS_UPDATE_GOLDEN=1 and review it"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} differs from its golden file (AOAI_OBS_UPDATE_GOLDEN=1 rewrites it)"
