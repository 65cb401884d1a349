"""The bill in the store: Cost Management export runs and their Azure OpenAI lines, written a run at a time in one
transaction for the whole import, and read back per day range.

A run is keyed by its export and the period it covers: writing a run replaces whatever an earlier run of that export
and period left (a re-run export supersedes the old one), so importing the same files twice changes nothing.
Money and quantities are exact decimal text.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa

from collector.store.database import Store

#: Rows per INSERT statement while a run streams in.
BATCH = 5_000


@dataclass(frozen=True)
class BillRun:
    """One export run kept in the store: which export, which period (days first_day..last_day, both included)."""

    export_id: str
    period_start: datetime
    first_day: datetime
    last_day: datetime
    export_name: str
    dataset: str
    data_version: str
    run_id: str
    submitted: datetime | None
    source: str
    lines: int
    imported_at: datetime


LINE_COLUMNS = ("day", "account", "resource_id", "meter_id", "meter_name", "model", "version", "deployment_type",
                "kind", "unit", "currency", "charge_type", "pricing_model", "quantity", "billed_cost",
                "effective_cost", "list_cost", "export_lines")


def bill_runs(store: Store) -> list[BillRun]:
    """Every run in the store, by export and period."""
    table = store.tables["bill_runs"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.export_id, table.c.period_start))
        return [BillRun(**dict(r._mapping)) for r in rows]


def replace_runs(store: Store, runs: Iterable[tuple[BillRun, Iterable[Mapping[str, Any]]]]) -> int:
    """Write each run with its lines (dicts of `LINE_COLUMNS`), replacing what the store held for the same export and
    period, all in one transaction: an error raised while the runs or their lines are produced (a bad line) rolls
    everything back. The lines of one run are streamed in batches, never held whole. Returns the lines written."""
    runs_table, lines_table = store.tables["bill_runs"], store.tables["bill_lines"]
    written = 0
    with store.engine.begin() as conn:
        for run, lines in runs:
            key = (lines_table.c.export_id == run.export_id) & (lines_table.c.period_start == run.period_start)
            conn.execute(sa.delete(lines_table).where(key))
            conn.execute(sa.delete(runs_table).where((runs_table.c.export_id == run.export_id)
                                                     & (runs_table.c.period_start == run.period_start)))
            count = 0
            for batch in _batches(lines):
                count += store.insert_plain(conn, lines_table, ("export_id", "period_start", *LINE_COLUMNS), [
                    (run.export_id, run.period_start, *[row[c] for c in LINE_COLUMNS]) for row in batch], times=(1, 2))
            conn.execute(sa.insert(runs_table), [{**asdict(run), "lines": count}])
            written += count
    return written


def read_lines(store: Store, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The stored lines of the days in [start, end), with their export and dataset, ordered by day."""
    lines, runs = store.tables["bill_lines"], store.tables["bill_runs"]
    query = (sa.select(lines, runs.c.dataset)
             .join(runs, (runs.c.export_id == lines.c.export_id) & (runs.c.period_start == lines.c.period_start))
             .where(lines.c.day >= start, lines.c.day < end)
             .order_by(lines.c.day, lines.c.account, lines.c.meter_id))
    with store.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def _batches(rows: Iterable[Mapping[str, Any]]) -> Iterator[list[Mapping[str, Any]]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, BATCH)):
        yield batch
