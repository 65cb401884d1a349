"""The Source protocol: anything that can answer a collection job for a window (embedded workspace, Azure APIs)."""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from collector.rollups.specs import ResultLike, RollupSpec
from collector.rollups.windows import Window


class Source(Protocol):
    """A place telemetry is read from. Its `name` is stored on every rollup row it produces."""

    @property
    def name(self) -> str: ...

    def supports(self, spec: RollupSpec) -> bool:
        """Whether this source can run the job (a Log Analytics workspace has no platform metrics, say)."""
        ...

    def fetch(self, spec: RollupSpec, window: Window, grain: timedelta) -> ResultLike:
        """The job's result for the window, bucketed by `grain`.

        Raises TransientError when trying again later may work, TerminalError when it will not.
        """
        ...

    def close(self) -> None:
        """Release connections and clients; the source may be used again afterwards (it reopens them)."""
        ...
