"""Pure: attributed cost as usage export rows (grouped by what the user asks for), and their CSV and Parquet writers.

One row per period, the chosen dimensions, attribution method, price id and basis; they are always kept apart, so
every figure says how it was attributed and priced, and whether it is the bill allocated to teams (`billed`, price
id `bill`) or telemetry priced by the book (`estimate`). Grouping by deployment also fills its account, model
and deployment type (a deployment is an account's, with one model and type); other dimensions not grouped by are
empty. Periods are UTC
(`hour`, `day` or `month`); with none of them, one period starting at the export's start. Cost is exact: the sum of
the rows equals the sum of the attribution's lines, in Decimal, written as plain digits (never through float).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from collector.cost.attribution import Attribution, DeploymentInfo
from collector.csvcells import SafeWriter
from collector.errors import InputError

DIMENSIONS = ("team", "account", "deployment", "model", "deployment_type")
PERIODS = ("hour", "day", "month")
BY_CHOICES = (*DIMENSIONS, *PERIODS)
COLUMNS = ("period_start", "team", "account", "deployment", "model", "deployment_type", "requests",
           "prompt_tokens", "cached_tokens", "completion_tokens", "cost_usd", "attribution_method", "price_id",
           "unpriced", "basis")
FORMATS = ("csv", "parquet")


def parse_by(text: str) -> tuple[str, ...]:
    """`--by team,deployment,day` as a checked tuple; at most one period."""
    parts = tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in parts if p not in BY_CHOICES]
    if unknown:
        raise InputError([], f"--by: unknown {', '.join(map(repr, unknown))}; choose from {', '.join(BY_CHOICES)}")
    if len([p for p in parts if p in PERIODS]) > 1:
        raise InputError([], f"--by: name at most one period of {', '.join(PERIODS)}")
    if len(set(parts)) != len(parts):
        raise InputError([], "--by: a dimension is named twice")
    return parts


def period_start(at: datetime, period: str | None, default: datetime) -> datetime:
    at = at.astimezone(UTC)
    if period == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    if period == "day":
        return datetime(at.year, at.month, at.day, tzinfo=UTC)
    if period == "month":
        return datetime(at.year, at.month, 1, tzinfo=UTC)
    return default


@dataclass
class _Sum:
    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost: Decimal = Decimal(0)
    unpriced: bool = False


def usage_rows(attribution: Attribution, deployments: Mapping[tuple[str, str], DeploymentInfo],
               by: Sequence[str], start: datetime) -> list[dict[str, Any]]:
    """The attribution's lines summed per period, `by` dimensions, method and price id, in sorted order."""
    period = next((p for p in by if p in PERIODS), None)
    if "deployment" in by:  # a deployment is (account, name) and has one model and type: they split nothing
        by = (*by, "account", "model", "deployment_type")
    sums: dict[tuple[Any, ...], _Sum] = {}
    for line in attribution.lines:
        dep = deployments.get((line.account, line.deployment))
        values = {"team": line.team, "account": line.account, "deployment": line.deployment,
                  "model": dep.model if dep else "", "deployment_type": dep.deployment_type if dep else ""}
        key = (period_start(line.bucket, period, start), *(values[d] if d in by else "" for d in DIMENSIONS),
               line.method, line.price_id or "", line.basis)
        total = sums.setdefault(key, _Sum())
        total.requests += line.requests
        total.prompt_tokens += line.prompt_tokens
        total.cached_tokens += line.cached_tokens
        total.completion_tokens += line.completion_tokens
        total.cost += line.cost
        total.unpriced = total.unpriced or line.unpriced
    rows = []
    for key in sorted(sums):
        total = sums[key]
        rows.append(dict(zip(COLUMNS, (*key[:6], total.requests, total.prompt_tokens, total.cached_tokens,
                                       total.completion_tokens, total.cost, key[6], key[7], total.unpriced, key[8]),
                             strict=True)))
    return rows


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, Decimal):
        return format(value.normalize() if value else Decimal(0), "f")
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def write_csv(rows: Iterable[Mapping[str, Any]], stream: TextIO) -> int:
    """CSV with a header in `COLUMNS` order; returns the rows written. Open files with newline="". Text a
    spreadsheet would run as a formula gets a leading `'` (`collector.csvcells`)."""
    writer = SafeWriter(stream, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    count = 0
    for row in rows:
        writer.writerow([_text(row[c]) for c in COLUMNS])
        count += 1
    return count


def write_parquet(rows: Sequence[Mapping[str, Any]], path: Path) -> int:
    """Parquet with typed columns: UTC timestamps, int64 counts, decimal(18, 6) USD, a boolean flag."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([
        ("period_start", pa.timestamp("us", tz="UTC")),
        *((name, pa.string()) for name in DIMENSIONS),
        *((name, pa.int64()) for name in ("requests", "prompt_tokens", "cached_tokens", "completion_tokens")),
        ("cost_usd", pa.decimal128(18, 6)),
        ("attribution_method", pa.string()),
        ("price_id", pa.string()),
        ("unpriced", pa.bool_()),
    ])
    table = pa.Table.from_pylist([dict(row) for row in rows], schema=schema)
    pq.write_table(table, path)
    return int(table.num_rows)
