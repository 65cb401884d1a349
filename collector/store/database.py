"""The rollup store: the only module that talks to the database (SQLAlchemy Core; SQLite or PostgreSQL).

A window's rollups replace what the store had for that window, the hourly tier is re-derived for the hours it
touches, and the job's watermark advances, all in one transaction.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler

from collector.errors import TerminalError, TransientError
from collector.rollups.specs import (
    LATENCY,
    PLATFORM_METRICS,
    REQUESTS,
    ROLLUPS,
    USAGE_TOKENS,
    Aggregation,
    RollupSpec,
    key_columns,
    row_columns,
)
from collector.rollups.windows import Window, align_down, align_up
from collector.store.migrations.upgrade import check_known, current_revision, head, upgrade

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
#: The fine tier (the collector's grain), hourly, daily and weekly (ISO weeks, from Monday 00:00 UTC): long ranges
#: read few rows. Views read the daily tier; per-deployment totals over a long range read its whole weeks weekly.
TIERS = ("5m", "1h", "1d", "1w")


@dataclass(frozen=True)
class DriverRows:
    """Rollup rows as one database's driver takes them (`Store.for_driver`): the conversion a write needs, done
    beforehand on a thread that has time for it (a backfill's fetch threads), so the storing thread only writes."""

    dialect: str
    params: list[tuple[Any, ...]]

    def __len__(self) -> int:
        return len(self.params)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC in Python; TIMESTAMPTZ on PostgreSQL, naive UTC text on SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; every time is timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _time_floor(sa.sql.functions.FunctionElement[datetime]):
    """The start of the `UNIT` (UTC) a stored bucket start falls in, computed by the database (derives the coarser
    tiers in SQL)."""

    type = UtcDateTime()
    inherit_cache = True
    UNIT = ""


class hour_floor(_time_floor):
    UNIT = "hour"
    inherit_cache = True


class day_floor(_time_floor):
    UNIT = "day"
    inherit_cache = True


class week_floor(_time_floor):
    """ISO weeks: from Monday 00:00 UTC."""

    UNIT = "week"
    inherit_cache = True


#: On SQLite, where SQLAlchemy stores datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' text in UTC (see UtcDateTime). For
#: a week: six days back, then forward to the next Monday (weekday 1; a Monday stays put): the Monday on or before.
_SQLITE_FLOOR = {
    "hour": "(substr({0}, 1, 13) || ':00:00.000000')",
    "day": "(substr({0}, 1, 10) || ' 00:00:00.000000')",
    "week": "(date({0}, '-6 days', 'weekday 1') || ' 00:00:00.000000')",
}


@compiles(_time_floor, "sqlite")
def _floor_sqlite(element: _time_floor, compiler: SQLCompiler, **kw: Any) -> str:
    return _SQLITE_FLOOR[element.UNIT].format(compiler.process(element.clauses, **kw))


@compiles(_time_floor, "postgresql")
def _floor_postgresql(element: _time_floor, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date_trunc('{element.UNIT}', {compiler.process(element.clauses, **kw)}, 'UTC')"


def week_start(instant: datetime) -> datetime:
    """The Monday 00:00 UTC on or before `instant` (what `week_floor` computes in the database)."""
    day = align_down(instant, DAY)
    return day - DAY * day.weekday()


#: The daily tier answers long views' time series: its latency rows are kept in the order those group by (day,
#: then the histogram bucket), so the database reads them in order instead of sorting a quarter of rows.
SERIES_KEY = {LATENCY.name: "le_bucket"}
#: Covering indexes of the long views' tiers by deployment: a view filtered by deployment, model or team (the
#: latter two resolve to (account, deployment) pairs) reads each deployment's rows through the index, not every
#: deployment's rows of the range. (spec, the index's columns; those after the key make it covering.)
BY_DEPLOYMENT_TIERS = ("1d", "1w")
BY_DEPLOYMENT: tuple[tuple[RollupSpec, tuple[str, ...]], ...] = (
    (LATENCY, ("source", "deployment", "bucket_start", "account", "le_bucket", "requests")),
    (REQUESTS, ("source", "deployment", "bucket_start", "account", *(m.store for m in REQUESTS.measures))),
    (PLATFORM_METRICS, ("source", "deployment", "metric", "bucket_start", "account", "status_code",
                        *(m.store for m in PLATFORM_METRICS.measures))),
)
#: An index only PostgreSQL gets (SQLite's table order already serves the series).
POSTGRESQL_ONLY_INDEX = "ix_latency_1d_series"

#: An index only SQLite gets: the cost table by day and team, covering (PostgreSQL hashes those reads faster).
SQLITE_ONLY_INDEX = "ix_cost_daily_day_team"
#: The basis of a cost figure: the bill allocated to teams, or telemetry priced by the book.
BILLED, ESTIMATE = "billed", "estimate"
COST_DAY_TEAM = ("day", "team", "method", "requests", "prompt_tokens", "cached_tokens", "completion_tokens",
                 "cost_micro_usd", "unpriced")
#: The daily latency histogram of each account, its deployments merged: the latency series of a long view of every
#: deployment (or of some accounts) reads it instead of the daily tier (1/50 of the rows for the dashboards
#: benchmark's 300 deployments in 6 accounts).
ACCOUNT_LATENCY = "latency_accounts_1d"


def primary_key(spec: RollupSpec, tier: str) -> list[str]:
    """A rollup table's key: source, bucket start, then the rollup's keys (on the daily tier, its series key
    first)."""
    keys = [k.store for k in spec.keys]
    first = SERIES_KEY.get(spec.name) if tier == "1d" else None
    if first is not None:
        keys.remove(first)
        keys.insert(0, first)
    return ["source", "bucket_start", *keys]


def _measure_type(kql_type: str) -> sa.types.TypeEngine[Any]:
    return sa.Float(precision=53) if kql_type == "real" else sa.BigInteger()


def build_metadata() -> sa.MetaData:
    """The store's tables: two tiers per rollup, watermarks, job status and budget notifications sent."""
    metadata = sa.MetaData()
    for spec in ROLLUPS:
        for tier in TIERS:
            columns: list[sa.Column[Any]] = [
                sa.Column("source", sa.String(64), nullable=False),
                sa.Column("bucket_start", UtcDateTime(), nullable=False),
            ]
            for key in spec.keys:
                key_type: sa.types.TypeEngine[Any] = sa.String(256) if key.kql_type == "string" else sa.Integer()
                columns.append(sa.Column(key.store, key_type, nullable=False))
            for measure in spec.measures:
                columns.append(sa.Column(measure.store, _measure_type(measure.kql_type), nullable=False))
            # On SQLite the composite key is the table itself (no separate rowid B-tree): about half the writes.
            table = sa.Table(f"{spec.table}_{tier}", metadata, *columns,
                             sa.PrimaryKeyConstraint(*primary_key(spec, tier)), sqlite_with_rowid=False)
            if spec is LATENCY and tier == "1d":
                # PostgreSQL reads a quarter of this table for a 90-day latency series by scanning all of it,
                # unless an index holds the series' columns in their order and those the filters need (an
                # index-only scan; SQLite's table already is in that order, see SERIES_KEY).
                sa.Index(POSTGRESQL_ONLY_INDEX, table.c.source, table.c.bucket_start, table.c.le_bucket,
                         postgresql_include=["account", "deployment", "requests"]).ddl_if(dialect="postgresql")
            for indexed, indexed_columns in BY_DEPLOYMENT:
                if spec is indexed and tier in BY_DEPLOYMENT_TIERS:
                    sa.Index(f"ix_{table.name}_by_deployment", *(table.c[c] for c in indexed_columns))
            if spec is USAGE_TOKENS and tier == "1d":
                # Covering: the deployments that served a model, looked up for a Model filter.
                sa.Index(f"ix_{table.name}_by_model", *(table.c[c] for c in (
                    "source", "model", "bucket_start", "account", "deployment")))
            if spec is PLATFORM_METRICS and tier in ("1d", "1w"):
                # Long views read two or three of a dozen metrics per query (time to token, PTU utilisation, peak
                # tokens), from whole weeks and the days either side: a covering index by metric reads just those,
                # at the cost of a second copy of this table.
                sa.Index(f"ix_{table.name}_by_metric", *(table.c[c] for c in (
                    "source", "metric", "bucket_start", "account", "deployment", "status_code", "total", "count",
                    "minimum", "maximum")))
    sa.Table(
        ACCOUNT_LATENCY,
        metadata,
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("bucket_start", UtcDateTime(), nullable=False),
        sa.Column("account", sa.String(256), nullable=False),
        sa.Column("le_bucket", sa.Integer(), nullable=False),
        *(sa.Column(m.store, _measure_type(m.kql_type), nullable=False) for m in LATENCY.measures),
        sa.PrimaryKeyConstraint("source", "bucket_start", "le_bucket", "account"),  # the series' order, as 1d's
        sqlite_with_rowid=False,
    )
    sa.Table(
        "watermarks",
        metadata,
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("watermark", UtcDateTime(), nullable=False),
    )
    sa.Table(
        "job_status",
        metadata,
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("last_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("last_success_at", UtcDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("failed_window_start", UtcDateTime(), nullable=True),
        sa.Column("failed_window_end", UtcDateTime(), nullable=True),
    )
    # Attributed cost per UTC day: derived from the hourly rollups by the cost model (collector/cost/model.py), kept
    # so that dashboards and budgets read a year in milliseconds. `cost_estimate_daily` is the estimate (telemetry x
    # price book); `cost_daily` is what every cost surface reads: the estimate where no bill covers an account's
    # day, and the bill allocated to teams where one does (`basis` says which; collector/cost/ledger.py). `cost_days`
    # says which price book, rules and inventory (their fingerprint) priced each day: a changed book re-prices the
    # days it no longer matches.
    for name in ("cost_daily", "cost_estimate_daily"):
        sa.Table(
            name,
            metadata,
            sa.Column("day", UtcDateTime(), primary_key=True),
            sa.Column("account", sa.String(256), primary_key=True),
            sa.Column("deployment", sa.String(256), primary_key=True),
            sa.Column("team", sa.String(256), primary_key=True),
            sa.Column("method", sa.String(16), primary_key=True),
            sa.Column("price_id", sa.String(512), primary_key=True),
            sa.Column("requests", sa.BigInteger(), nullable=False),
            sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
            sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
            sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
            sa.Column("cost_micro_usd", sa.BigInteger(), nullable=False),
            sa.Column("unpriced", sa.Integer(), nullable=False),
            *((sa.Column("basis", sa.String(8), nullable=False, server_default=ESTIMATE),)
              if name == "cost_daily" else ()),
            sqlite_with_rowid=False,
        )
    # The teams ever seen (for stable colours) in a few index probes rather than a scan of the whole table.
    sa.Index("ix_cost_daily_team", metadata.tables["cost_daily"].c.team, metadata.tables["cost_daily"].c.day)
    # SQLite: cost per day and team (the cost page's daily series by team), covering, read in its grouping order.
    sa.Index(SQLITE_ONLY_INDEX, *(metadata.tables["cost_daily"].c[c] for c in COST_DAY_TEAM)).ddl_if(dialect="sqlite")
    sa.Table(
        "cost_days",
        metadata,
        sa.Column("day", UtcDateTime(), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("refreshed_at", UtcDateTime(), nullable=False),
    )
    # The bill (Cost Management exports, collector/cost/bill_import.py): one row per export run kept (the newest of
    # each export and period) and its Azure OpenAI lines summed per day, resource, meter, charge and currency. Money
    # and quantities are exact decimal text: exports carry more digits than any float or fixed scale keeps.
    sa.Table(
        "bill_runs",
        metadata,
        sa.Column("export_id", sa.String(1024), primary_key=True),
        sa.Column("period_start", UtcDateTime(), primary_key=True),
        sa.Column("first_day", UtcDateTime(), nullable=False),
        sa.Column("last_day", UtcDateTime(), nullable=False),
        sa.Column("export_name", sa.String(256), nullable=False),
        sa.Column("dataset", sa.String(32), nullable=False),
        sa.Column("data_version", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(256), nullable=False),
        sa.Column("submitted", UtcDateTime(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("imported_at", UtcDateTime(), nullable=False),
    )
    sa.Table(
        "bill_lines",
        metadata,
        sa.Column("export_id", sa.String(1024), nullable=False),
        sa.Column("period_start", UtcDateTime(), nullable=False),
        sa.Column("day", UtcDateTime(), nullable=False),
        sa.Column("account", sa.String(256), nullable=False),
        sa.Column("resource_id", sa.String(1024), nullable=False),
        sa.Column("meter_id", sa.String(128), nullable=False),
        sa.Column("meter_name", sa.String(256), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("deployment_type", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("unit", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("charge_type", sa.String(64), nullable=False),
        sa.Column("pricing_model", sa.String(64), nullable=False),
        sa.Column("quantity", sa.String(64), nullable=False),
        sa.Column("billed_cost", sa.String(64), nullable=False),
        sa.Column("effective_cost", sa.String(64), nullable=False),
        sa.Column("list_cost", sa.String(64), nullable=False),
        sa.Column("export_lines", sa.Integer(), nullable=False),
    )
    sa.Index("ix_bill_lines_period", metadata.tables["bill_lines"].c.export_id,
             metadata.tables["bill_lines"].c.period_start)
    sa.Index("ix_bill_lines_day", metadata.tables["bill_lines"].c.day)
    sa.Table(
        "budget_notifications",
        metadata,
        sa.Column("budget_id", sa.String(300), primary_key=True),
        sa.Column("period_start", UtcDateTime(), primary_key=True),
        sa.Column("threshold", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("notified_at", UtcDateTime(), nullable=False),
    )
    return metadata


METADATA = build_metadata()


@dataclass(frozen=True)
class JobStatus:
    source: str
    job: str
    watermark: datetime | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str
    failed_window: Window | None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Reads of long ranges scan many pages: map the file and keep a bigger page cache (64 MiB) than the 2 MiB
    # default, so the dashboards' aggregates read memory, not copies of it.
    cursor.execute("PRAGMA mmap_size=1073741824")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def create_engine(url: str) -> Engine:
    """An engine for a SQLAlchemy URL; SQLite files get WAL and their folder is created."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration, safely against kills and other collectors (migrations/upgrade.py);
    TerminalError for a store a newer release has upgraded."""
    upgrade(engine)


def schema_is_current(engine: Engine) -> bool:
    """Whether the store is at the newest migration; TerminalError for a store a newer release has upgraded."""
    with engine.connect() as connection:
        current = current_revision(connection)
    check_known(current, engine)
    return current == head()


class Store:
    """Rollups, watermarks and job status in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tables = METADATA.tables
        self._statements: dict[str, tuple[sa.Delete, list[sa.Executable]]] = {}

    @classmethod
    def open(cls, url: str, *, migrate_schema: bool = True) -> Store:
        engine = create_engine(url)
        try:
            if migrate_schema:
                migrate(engine)
            elif not schema_is_current(engine):
                raise TerminalError(f"the store at {engine.url!r} is not at the newest schema; run a collector once")
        except sa.exc.OperationalError as e:
            engine.dispose()
            raise TransientError(f"cannot reach the store at {engine.url!r}: {e.orig}") from e
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def table(self, spec: RollupSpec, tier: str) -> sa.Table:
        return self.tables[f"{spec.table}_{tier}"]

    # -- writing ---------------------------------------------------------------------------------------------

    def replace_window(
        self,
        spec: RollupSpec,
        source: str,
        window: Window,
        rows: Sequence[tuple[Any, ...]] | DriverRows,
        *,
        now: datetime,
    ) -> None:
        """Replace the window's rollups (tuples in `row_columns` order, or those made ready by `for_driver`),
        re-derive the hours, days and weeks it touches, and advance the watermark to its end, in one transaction."""
        fine, derive = self._window_statements(spec)
        week_end = week_start(window.end - timedelta(microseconds=1)) + WEEK
        params = {"source": source, "5m_start": window.start, "5m_end": window.end,
                  "1h_start": align_down(window.start, HOUR), "1h_end": align_up(window.end, HOUR),
                  "1d_start": align_down(window.start, DAY), "1d_end": align_up(window.end, DAY),
                  "1w_start": week_start(window.start), "1w_end": week_end}
        with self.engine.begin() as conn:
            conn.execute(fine, params)
            if len(rows):
                self._insert_many(conn, self.table(spec, "5m"), row_columns(spec), rows)
            for statement in derive:
                conn.execute(statement, params)
            self._advance_watermark(conn, source, spec.name, window.end)
            self._record_status(conn, source, spec.name, now, success=True)

    def _window_statements(self, spec: RollupSpec) -> tuple[sa.Delete, list[sa.Executable]]:
        """The statements `replace_window` runs for `spec`, built once (building them costs SQLAlchemy more than
        SQLite takes to run them), with parameters `source` and `<tier>_start` / `<tier>_end`: the delete of the
        fine tier's window, then the delete and derivation of each coarser tier's buckets it touches."""
        found = self._statements.get(spec.name)
        if found is None:
            def bounds(tier: str) -> tuple[Any, Any, Any]:
                return sa.bindparam("source"), sa.bindparam(f"{tier}_start"), sa.bindparam(f"{tier}_end")

            fine = self.table(spec, "5m")
            derive: list[sa.Executable] = []
            for finer, coarser in itertools.pairwise(TIERS):
                table = self.table(spec, coarser)
                derive += [sa.delete(table).where(*self._range(table, *bounds(coarser))),
                           self._derive(spec, finer, coarser, *bounds(coarser))]
                if spec is LATENCY and coarser == "1d":
                    derive += self._account_latency_statements(*bounds("1d"))
            found = self._statements[spec.name] = (sa.delete(fine).where(*self._range(fine, *bounds("5m"))), derive)
        return found

    def for_driver(self, rows: Sequence[tuple[Any, ...]]) -> DriverRows:
        """Rollup rows (tuples in `row_columns` order) as this database's driver takes them: bucket starts (column
        1) converted as UtcDateTime would, once per distinct value. Thread-safe: it reads only the dialect."""
        dialect = self.engine.dialect
        bind = UtcDateTime().process_bind_param
        converted: dict[datetime, Any] = {}
        params = []
        for row in rows:
            bucket = converted.get(row[1])
            if bucket is None:
                value = bind(row[1], dialect)
                bucket = converted[row[1]] = (
                    value.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect.name == "sqlite" and value else value
                )
            params.append((row[0], bucket, *row[2:]))
        return DriverRows(dialect.name, params)

    def insert_plain(self, conn: Connection, table: sa.Table, columns: Sequence[str], rows: Iterable[tuple[Any, ...]],
                     times: Sequence[int] = ()) -> int:
        """Bulk insert of rows (tuples in `columns` order) straight through the driver; the datetimes at positions
        `times` are converted as UtcDateTime would (once per distinct value). Returns the rows written."""
        dialect = conn.dialect
        bind = UtcDateTime().process_bind_param
        converted: dict[datetime, Any] = {}

        def driver(value: datetime) -> Any:
            found = converted.get(value)
            if found is None:
                plain = bind(value, dialect)
                found = converted[value] = (plain.strftime("%Y-%m-%d %H:%M:%S.%f")
                                            if dialect.name == "sqlite" and plain else plain)
            return found

        params: list[tuple[Any, ...]] = []
        for row in rows:
            if times:
                values = list(row)
                for i in times:
                    values[i] = driver(values[i])
                row = tuple(values)
            params.append(row)
        if params:
            self._insert_many(conn, table, list(columns), DriverRows(dialect.name, params))
        return len(params)

    def _insert_many(
        self, conn: Connection, table: sa.Table, columns: list[str], rows: Sequence[tuple[Any, ...]] | DriverRows
    ) -> None:
        """Bulk insert straight through the driver: SQLAlchemy's per-row parameter processing costs more than the
        database does here."""
        dialect = conn.dialect
        if not isinstance(rows, DriverRows):
            rows = self.for_driver(rows)
        elif rows.dialect != dialect.name:  # pragma: no cover - a programming error, not a user's
            raise TypeError(f"rows made ready for {rows.dialect} cannot be written to {dialect.name}")
        params = rows.params
        quote = dialect.identifier_preparer.quote
        marks = ", ".join(["?" if dialect.paramstyle == "qmark" else "%s"] * len(columns))
        sql = f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) VALUES ({marks})"
        conn.exec_driver_sql(sql, params)

    def rederive(self, spec: RollupSpec, source: str, coarser: str, start: datetime, end: datetime) -> None:
        """Derive the `coarser` tier's buckets in [start, end) (whole buckets of it) again from the tier below, as
        `replace_window` does for the buckets a window touches: for rows loaded into a tier directly."""
        finer = TIERS[TIERS.index(coarser) - 1]
        with self.engine.begin() as conn:
            table = self.table(spec, coarser)
            conn.execute(sa.delete(table).where(*self._range(table, source, start, end)))
            conn.execute(self._derive(spec, finer, coarser, source, start, end))
            if spec is LATENCY and coarser == "1d":
                self._derive_account_latency(conn, source, start, end)

    def rederive_account_latency(self, source: str, start: datetime, end: datetime) -> None:
        """Derive the accounts' daily latency of [start, end) (whole days) again from the daily tier: for daily rows
        loaded directly."""
        with self.engine.begin() as conn:
            self._derive_account_latency(conn, source, start, end)

    def _derive_account_latency(self, conn: Connection, source: str, start: datetime, end: datetime) -> None:
        for statement in self._account_latency_statements(source, start, end):
            conn.execute(statement)

    def _account_latency_statements(self, source: Any, start: Any, end: Any) -> list[sa.Executable]:
        """Delete the accounts' daily latency of [start, end) and derive it again from the daily tier."""
        daily, accounts = self.table(LATENCY, "1d"), self.tables[ACCOUNT_LATENCY]
        keys = [daily.c.source, daily.c.bucket_start, daily.c.account, daily.c.le_bucket]
        select = (sa.select(*keys, *(sa.func.sum(daily.c[m.store]) for m in LATENCY.measures))
                  .where(*self._range(daily, source, start, end)).group_by(*keys))
        return [sa.delete(accounts).where(*self._range(accounts, source, start, end)),
                sa.insert(accounts).from_select([c.name for c in accounts.columns], select)]

    def _derive(self, spec: RollupSpec, finer: str, coarser: str, source: Any, start: Any, end: Any) -> sa.Insert:
        """INSERT ... SELECT that re-aggregates the `finer` tier's rows of [start, end) into `coarser` buckets."""
        fine, coarse = self.table(spec, finer), self.table(spec, coarser)
        floor = {"1h": hour_floor, "1d": day_floor, "1w": week_floor}[coarser]
        bucket: sa.ColumnElement[datetime] = floor(fine.c.bucket_start)
        keys = [fine.c[k.store] for k in spec.keys]
        measures = [_aggregate(m.aggregation, fine.c[m.store]) for m in spec.measures]
        select = (
            sa.select(fine.c.source, bucket, *keys, *measures)
            .where(*self._range(fine, source, start, end))
            .group_by(fine.c.source, bucket, *keys)
        )
        return sa.insert(coarse).from_select([c.name for c in coarse.columns], select)

    def record_failure(self, source: str, job: str, window: Window, error: str, *, now: datetime) -> None:
        with self.engine.begin() as conn:
            self._record_status(conn, source, job, now, success=False, error=error, window=window)

    @staticmethod
    def _range(table: sa.Table, source: Any, start: Any, end: Any) -> list[sa.ColumnElement[bool]]:
        """Rows of `source` with bucket starts in [start, end): values, or bind parameters."""
        return [table.c.source == source, table.c.bucket_start >= start, table.c.bucket_start < end]

    def _advance_watermark(self, conn: Connection, source: str, job: str, end: datetime) -> None:
        table = self.tables["watermarks"]
        where = (table.c.source == source, table.c.job == job)
        current = conn.execute(sa.select(table.c.watermark).where(*where)).scalar_one_or_none()
        if current is None:
            conn.execute(sa.insert(table).values(source=source, job=job, watermark=end))
        elif end > current:
            conn.execute(sa.update(table).where(*where).values(watermark=end))

    def _record_status(
        self,
        conn: Connection,
        source: str,
        job: str,
        now: datetime,
        *,
        success: bool,
        error: str = "",
        window: Window | None = None,
    ) -> None:
        table = self.tables["job_status"]
        where = (table.c.source == source, table.c.job == job)
        values: dict[str, Any] = {"last_attempt_at": now}
        if success:
            values.update(last_success_at=now, last_error="", failed_window_start=None, failed_window_end=None)
        else:
            assert window is not None
            values.update(last_error=error, failed_window_start=window.start, failed_window_end=window.end)
        if conn.execute(sa.update(table).where(*where).values(**values)).rowcount == 0:
            conn.execute(sa.insert(table).values(source=source, job=job, **values))

    def apply_retention(self, now: datetime, *, five_minute_days: int, hourly_days: int,
                        daily_days: int | None = None) -> dict[str, int]:
        """Delete rollups older than the retention of their tier; returns rows deleted per table. The daily and
        weekly tiers are kept `daily_days` (None: forever); a week goes once all its days have gone."""
        deleted: dict[str, int] = {}
        limits = {"5m": now - timedelta(days=five_minute_days), "1h": now - timedelta(days=hourly_days)}
        if daily_days is not None:
            limits["1d"] = now - timedelta(days=daily_days)
            limits["1w"] = limits["1d"]  # weeks before the one the cut falls in
        with self.engine.begin() as conn:
            tables = [(self.table(spec, tier), tier) for spec in ROLLUPS for tier in limits]
            if "1d" in limits:
                tables.append((self.tables[ACCOUNT_LATENCY], "1d"))
            for table, tier in tables:
                limit = limits[tier]
                cut = week_start(limit) if tier == "1w" else align_down(limit, DAY if tier == "1d" else HOUR)
                result = conn.execute(sa.delete(table).where(table.c.bucket_start < cut))
                deleted[table.name] = result.rowcount
        return deleted

    # -- attributed cost per day ---------------------------------------------------------------------------

    def replace_cost_days(self, start: datetime, end: datetime, rows: Sequence[Mapping[str, Any]],
                          fingerprint: str, now: datetime,
                          ledger: Sequence[Mapping[str, Any]] | None = None) -> None:
        """Replace the days [start, end) of the estimate (`cost_estimate_daily`) with `rows` and of what the cost
        surfaces read (`cost_daily`) with `ledger` (by default the estimate itself, basis `estimate`), and mark each
        day as priced by `fingerprint`, in one transaction."""
        estimate, days = self.tables["cost_estimate_daily"], self.tables["cost_days"]
        day_starts = []
        at = start
        while at < end:
            day_starts.append(at)
            at += timedelta(days=1)
        with self.engine.begin() as conn:
            conn.execute(sa.delete(estimate).where(estimate.c.day >= start, estimate.c.day < end))
            if rows:
                conn.execute(sa.insert(estimate), [dict(r) for r in rows])
            self._replace_ledger(conn, start, end, ledger if ledger is not None else
                                 [{**r, "basis": ESTIMATE} for r in rows])
            conn.execute(sa.delete(days).where(days.c.day >= start, days.c.day < end))
            if day_starts:
                conn.execute(sa.insert(days), [{"day": d, "fingerprint": fingerprint, "refreshed_at": now}
                                               for d in day_starts])

    def replace_ledger_days(self, start: datetime, end: datetime, ledger: Sequence[Mapping[str, Any]],
                            now: datetime) -> None:
        """Replace the days [start, end) of `cost_daily` (after a bill was imported); the estimate stays, and the
        days' refresh time moves so that what is cached on the table is read again."""
        days = self.tables["cost_days"]
        with self.engine.begin() as conn:
            self._replace_ledger(conn, start, end, ledger)
            conn.execute(sa.update(days).where(days.c.day >= start, days.c.day < end).values(refreshed_at=now))

    def _replace_ledger(self, conn: Connection, start: datetime, end: datetime,
                        ledger: Sequence[Mapping[str, Any]]) -> None:
        table = self.tables["cost_daily"]
        conn.execute(sa.delete(table).where(table.c.day >= start, table.c.day < end))
        if ledger:
            conn.execute(sa.insert(table), [dict(r) for r in ledger])

    def cost_day_fingerprints(self, start: datetime, end: datetime) -> dict[datetime, str]:
        """Day -> the fingerprint of the cost model that priced it, for the days of [start, end) priced at all."""
        days = self.tables["cost_days"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(days.c.day, days.c.fingerprint).where(days.c.day >= start,
                                                                                 days.c.day < end))
            return {r.day: r.fingerprint for r in rows}

    def first_usage_bucket(self) -> datetime | None:
        """The earliest hour any cost input (usage, callers, platform metrics) was collected for."""
        found = []
        with self.engine.connect() as conn:
            for name in ("usage_tokens_1h", "caller_requests_1h", "platform_metrics_1h"):
                table = self.tables[name]
                value = conn.execute(sa.select(sa.func.min(table.c.bucket_start))).scalar_one_or_none()
                if value is not None:
                    found.append(value)
        return min(found) if found else None

    def read_cost_daily(self, start: datetime, end: datetime, by: Sequence[str] = ("day", "team"),
                        where: Mapping[str, Sequence[str]] | None = None, *,
                        estimate: bool = False) -> list[dict[str, Any]]:
        """`cost_daily` (with `estimate`, `cost_estimate_daily`) summed in the database per `by` (any of its key
        columns) over the days of [start, end), optionally restricted to values per key column; `cost_micro_usd`
        is exact (integers)."""
        table = self.tables["cost_estimate_daily" if estimate else "cost_daily"]
        keys = [table.c[k] for k in by]
        query = (
            sa.select(*keys, *(sa.func.sum(table.c[m]).label(m) for m in (
                "requests", "prompt_tokens", "cached_tokens", "completion_tokens", "cost_micro_usd")),
                sa.func.max(table.c.unpriced).label("unpriced"))
            .where(table.c.day >= start, table.c.day < end)
            .group_by(*keys)
            .order_by(*keys)
        )
        for column, values in (where or {}).items():
            query = query.where(table.c[column].in_(list(values)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    # -- budget notifications --------------------------------------------------------------------------------

    def notified_thresholds(self, budget_id: str, period_start: datetime) -> set[int]:
        """Thresholds of a budget already notified in the period starting at `period_start`."""
        table = self.tables["budget_notifications"]
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.threshold).where(
                table.c.budget_id == budget_id, table.c.period_start == period_start))
            return {int(r.threshold) for r in rows}

    def record_notification(self, budget_id: str, period_start: datetime, threshold: int, now: datetime) -> None:
        """Remember that a threshold was notified; recording it again keeps the first time."""
        table = self.tables["budget_notifications"]
        values = {"budget_id": budget_id, "period_start": period_start, "threshold": threshold, "notified_at": now}
        key = ["budget_id", "period_start", "threshold"]
        statement: sa.Insert
        if self.engine.dialect.name == "sqlite":
            statement = sqlite_insert(table).values(**values).on_conflict_do_nothing(index_elements=key)
        else:
            statement = postgresql_insert(table).values(**values).on_conflict_do_nothing(index_elements=key)
        with self.engine.begin() as conn:
            conn.execute(statement)

    # -- reading ---------------------------------------------------------------------------------------------

    def watermark(self, source: str, job: str) -> datetime | None:
        table = self.tables["watermarks"]
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(table.c.watermark).where(table.c.source == source, table.c.job == job)
            ).scalar_one_or_none()
        return value

    def job_statuses(self) -> list[JobStatus]:
        wm, st = self.tables["watermarks"], self.tables["job_status"]
        with self.engine.connect() as conn:
            marks = {(r.source, r.job): r.watermark for r in conn.execute(sa.select(wm))}
            status = {(r.source, r.job): r for r in conn.execute(sa.select(st))}
        statuses = []
        for key in sorted(set(marks) | set(status)):
            row = status.get(key)
            failed = None
            if row is not None and row.failed_window_start is not None and row.failed_window_end is not None:
                failed = Window(row.failed_window_start, row.failed_window_end)
            statuses.append(
                JobStatus(
                    source=key[0],
                    job=key[1],
                    watermark=marks.get(key),
                    last_attempt_at=row.last_attempt_at if row is not None else None,
                    last_success_at=row.last_success_at if row is not None else None,
                    last_error=row.last_error if row is not None else "",
                    failed_window=failed,
                )
            )
        return statuses

    def read(
        self,
        spec: RollupSpec,
        tier: str = "5m",
        *,
        source: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Rollup rows of one tier, in key order."""
        table = self.table(spec, tier)
        query = sa.select(table)
        if source is not None:
            query = query.where(table.c.source == source)
        if start is not None:
            query = query.where(table.c.bucket_start >= start)
        if end is not None:
            query = query.where(table.c.bucket_start < end)
        query = query.order_by(*(table.c[k] for k in key_columns(spec)))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def iter_dump(self) -> Iterator[tuple[str, list[tuple[Any, ...]]]]:
        """Every rollup table and the watermarks, rows in key order: what "the same store" means in tests."""
        with self.engine.connect() as conn:
            for name in sorted(self.tables):
                if name in ("job_status", "cost_daily", "cost_estimate_daily", "cost_days", "budget_notifications"):
                    continue  # derived from the rollups, or the collector's own bookkeeping
                table = self.tables[name]
                order = [c for c in table.primary_key.columns]
                yield name, [tuple(r) for r in conn.execute(sa.select(table).order_by(*order))]

    # -- monthly report aggregates ---------------------------------------------------------------------------

    def read_throttled_hours(self, start: datetime, end: datetime, *, min_throttled: int,
                             min_percent: int) -> list[dict[str, Any]]:
        """Hours of [start, end) in which a deployment's 429s, summed over sources, number at least `min_throttled`
        and are at least `min_percent` % of its requests: `bucket_start`, `account`, `deployment`, `requests`,
        `requests_429`, in that order. Filtered in the database: a month of 300 deployments is 220,000 hours."""
        table = self.table(REQUESTS, "1h")
        requests, throttled = sa.func.sum(table.c.requests), sa.func.sum(table.c.requests_429)
        query = (
            sa.select(table.c.bucket_start, table.c.account, table.c.deployment, requests.label("requests"),
                      throttled.label("requests_429"))
            .where(table.c.bucket_start >= start, table.c.bucket_start < end)
            .group_by(table.c.bucket_start, table.c.account, table.c.deployment)
            .having(throttled >= min_throttled, throttled * 100 >= requests * min_percent)
            .order_by(table.c.account, table.c.deployment, table.c.bucket_start)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def read_metric_daily(self, metric: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """A platform metric's `total` per UTC day, account and deployment over the daily rollups of the days of
        [start, end), summed over sources and status codes in the database: `day`, `account`, `deployment`,
        `total`."""
        table = self.table(PLATFORM_METRICS, "1d")
        start, end = align_down(start, DAY), align_up(end, DAY)
        day = table.c.bucket_start.label("day")
        query = (
            sa.select(day, table.c.account, table.c.deployment, sa.func.sum(table.c.total).label("total"))
            .where(table.c.metric == metric, table.c.bucket_start >= start, table.c.bucket_start < end)
            .group_by(day, table.c.account, table.c.deployment)
            .order_by(table.c.account, table.c.deployment, day)
        )
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]


def _aggregate(aggregation: Aggregation, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    if aggregation is Aggregation.SUM:
        return sa.func.sum(column)
    if aggregation is Aggregation.MIN:
        return sa.func.min(column)
    return sa.func.max(column)
