"""Builds the configured sources, one per entry of the settings' `sources:` list."""

from __future__ import annotations

from collections.abc import Sequence

from collector.collection.loganalytics import LogAnalyticsSource
from collector.collection.metrics import MetricsSource
from collector.collection.run import Timing
from collector.collection.source import Source
from collector.config import LogAnalyticsSourceSettings, MetricsSourceSettings, Settings, WorkspaceSourceSettings
from collector.errors import TerminalError
from collector.workspace.source import WorkspaceSource


def build_sources(settings: Settings, names: Sequence[str] = ()) -> list[Source]:
    """The sources to collect from; `names` narrows them (an unknown name is an error naming the known ones)."""
    known = [s.name for s in settings.sources]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise TerminalError(f"unknown source(s) {', '.join(unknown)}; configured: {', '.join(known) or 'none'}")
    sources: list[Source] = []
    for entry in settings.sources:
        if names and entry.name not in names:
            continue
        if isinstance(entry, WorkspaceSourceSettings):
            sources.append(WorkspaceSource(entry.name, entry.path))
        elif isinstance(entry, LogAnalyticsSourceSettings):
            sources.append(LogAnalyticsSource(entry))
        elif isinstance(entry, MetricsSourceSettings):
            sources.append(MetricsSource(entry))
        else:  # pragma: no cover - every kind the settings accept is handled above
            raise TerminalError(f"source {entry.name}: kind {entry.kind!r} cannot be collected yet")
    return sources


def first_workspace(settings: Settings) -> WorkspaceSourceSettings:
    """The first embedded-workspace source: what `workspace` and `query` commands act on by default."""
    for entry in settings.sources:
        if isinstance(entry, WorkspaceSourceSettings):
            return entry
    raise TerminalError("no source of kind `workspace` is configured; pass --workspace PATH or add one to sources:")


def timing_of(settings: Settings) -> Timing:
    """The collection timing the settings give (grain, lag, lookback, largest window)."""
    c = settings.collector
    return Timing(grain=c.grain, lag=c.lag, lookback=c.lookback, max_window=c.max_window)
