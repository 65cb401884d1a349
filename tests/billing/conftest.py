"""Fixtures of the bill's tests: Microsoft's storage emulator Azurite, one per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.billing.azurite import azurite_binary, running_azurite
from tests.conftest import unavailable


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string to a running Azurite blob service (skipped without it outside CI, failing in CI)."""
    binary = azurite_binary()
    if binary is None:
        unavailable("Azurite is not installed: npm install --prefix .azurite azurite (or set AOAI_OBS_AZURITE)")
    assert binary is not None
    with running_azurite(binary, tmp_path_factory.mktemp("azurite")) as connection_string:
        yield connection_string
