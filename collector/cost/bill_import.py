"""Importing the bill: Cost Management export runs read from a folder or a blob container, their Azure OpenAI lines
mapped to account and meter (model, version, deployment type, kind) and stored, one run replacing the last.

What is kept: the newest run of each export and period (`billing.exports.newest_runs`); a run already in the store
with the same run id is not read again. Lines are summed per day, resource, meter, charge type, pricing model and
currency within a run, so the store holds a bill line per account, meter and day, not the export's raw rows. Meters
the mapping cannot read are kept with an empty model and listed in the summary, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from collector.billing.exports import BilledLine, ExportFile, ExportRun, ReadStats, discover, read_lines
from collector.billing.meters import MeterReading, read_meter
from collector.store import bills
from collector.store.bills import BillRun
from collector.store.database import Store


@dataclass
class ImportSummary:
    """What an import did, for its summary line."""

    runs_found: int = 0
    runs_imported: list[BillRun] = field(default_factory=list)
    runs_unchanged: int = 0  # already in the store, or older than the run the store holds
    superseded: int = 0
    unlisted: tuple[str, ...] = ()
    lines_written: int = 0
    unmapped: dict[str, str] = field(default_factory=dict)  # meter name -> why it could not be read
    stats: ReadStats = field(default_factory=ReadStats)

    def line(self) -> str:
        periods = ", ".join(f"{r.export_name} {r.first_day:%Y-%m-%d}..{r.last_day:%Y-%m-%d}"
                            for r in self.runs_imported) or "none"
        return (f"bill: {len(self.runs_imported)} run(s) imported ({periods}), {self.runs_unchanged} already in the "
                f"store, {self.superseded} superseded by newer runs; {self.stats.lines:,} Azure OpenAI line(s) of "
                f"{self.stats.rows:,} read, stored as {self.lines_written:,} day/meter line(s)")


def period_days(start: date, end: date | None) -> tuple[date, date]:
    """The days a run covers, both included. `runInfo.endDate` is read as the last day covered, unless it is the
    first day of a later month (then it ends the period before it): both spellings are seen in manifests."""
    if end is None or end < start:
        return start, start
    if end.day == 1 and end > start:
        return start, end - timedelta(days=1)
    return start, end


def import_bill(store: Store, files: Iterable[ExportFile], source: str, now: datetime) -> ImportSummary:
    """Read the runs under a source and store the ones that are new or re-run, all or nothing."""
    discovery = discover(files)
    summary = ImportSummary(runs_found=len(discovery.runs) + len(discovery.superseded),
                            superseded=len(discovery.superseded), unlisted=discovery.unlisted)
    stored = {(r.export_id, r.period_start): r for r in bills.bill_runs(store)}
    todo = [run for run in discovery.runs
            if not _kept(stored.get((run.manifest.export_id, _midnight(run.manifest.period_start))), run)]
    summary.runs_unchanged = len(discovery.runs) - len(todo)

    def runs() -> Iterator[tuple[BillRun, Iterable[Mapping[str, Any]]]]:
        for run in todo:
            record = _record(run, source, now)
            summary.runs_imported.append(record)
            yield record, _summed(read_lines([run], stats=summary.stats), summary.unmapped)

    summary.lines_written = bills.replace_runs(store, runs())
    return summary


def _kept(stored: BillRun | None, run: ExportRun) -> bool:
    """Whether the store's run of the same export and period stays: it is this run, or a newer one (a source
    holding an older run than the one imported before, say a folder downloaded earlier, changes nothing)."""
    if stored is None:
        return False
    submitted = run.manifest.submitted
    return stored.run_id == run.manifest.run_id or (
        stored.submitted is not None and submitted is not None and stored.submitted > submitted)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _record(run: ExportRun, source: str, now: datetime) -> BillRun:
    m = run.manifest
    first, last = period_days(m.period_start, m.period_end)
    return BillRun(export_id=m.export_id, period_start=_midnight(m.period_start), first_day=_midnight(first),
                   last_day=_midnight(last), export_name=m.export_name, dataset=m.dataset_type,
                   data_version=m.data_version, run_id=m.run_id, submitted=m.submitted, source=source, lines=0,
                   imported_at=now)


_Key = tuple[date, str, str, str, str, str, str, str, str]


def _summed(lines: Iterable[BilledLine], unmapped: dict[str, str]) -> Iterator[dict[str, Any]]:
    """A run's lines summed per day, resource, meter, charge, pricing model and currency, with their meter read.
    The sums of a run are held until its last line: a run is at most a month of one export."""
    sums: dict[_Key, list[Any]] = {}
    for line in lines:
        key = (line.day, line.resource_id, line.account, line.meter_id, line.meter_name, line.unit, line.currency,
               line.charge_type, line.pricing_model)
        total = sums.get(key)
        if total is None:
            total = sums[key] = [Decimal(0), Decimal(0), Decimal(0), Decimal(0), 0]
        total[0] += line.quantity
        total[1] += line.billed_cost
        total[2] += line.effective_cost if line.effective_cost is not None else line.billed_cost
        total[3] += line.list_cost if line.list_cost is not None else Decimal(0)
        total[4] += 1
    readings: dict[str, MeterReading] = {}
    for (day, resource_id, account, meter_id, meter_name, unit, currency, charge, pricing), total in sums.items():
        reading = readings.get(meter_name)
        if reading is None:
            reading = readings[meter_name] = read_meter(meter_name)
        meter = reading.key
        if meter is None:
            unmapped.setdefault(meter_name, reading.reason)
        yield {
            "day": _midnight(day), "account": account.lower(), "resource_id": resource_id, "meter_id": meter_id,
            "meter_name": meter_name, "model": meter.model if meter else "", "version": (meter.version or "")
            if meter else "", "deployment_type": meter.deployment_type if meter else "",
            "kind": meter.kind if meter else "", "unit": unit, "currency": currency, "charge_type": charge,
            "pricing_model": pricing, "quantity": _text(total[0]), "billed_cost": _text(total[1]),
            "effective_cost": _text(total[2]), "list_cost": _text(total[3]), "export_lines": total[4],
        }


def _text(amount: Decimal) -> str:
    """Exact decimal text, without an exponent (a sum of 1E-7 and 0 would print as `1E-7`)."""
    return format(amount, "f")
