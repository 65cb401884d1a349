"""The KQL engine adapter: the only importer of duckdb_kql; runs KQL and metric questions over a workspace file.

Azure semantics kept here: results in UTC, no null strings, and the request's timespan applied as an extra filter on
`TimeGenerated` of every table, as the Log Analytics query API does.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import duckdb_kql

from collector.errors import QueryError, TerminalError
from collector.workspace.kql_errors import kql_message
from collector.workspace.kql_rewrite import rewrite
from collector.workspace.schema import INFO_TABLE, LOG_TABLES, METRICS_TABLE, create_statements

log = logging.getLogger(__name__)

#: DuckDB result type -> KQL column type, for the contract with Azure's result tables.
_KQL_TYPES = {
    "BOOLEAN": "bool",
    "TINYINT": "int",
    "SMALLINT": "int",
    "INTEGER": "int",
    "BIGINT": "long",
    "HUGEINT": "long",
    "UBIGINT": "long",
    "UINTEGER": "long",
    "FLOAT": "real",
    "DOUBLE": "real",
    "VARCHAR": "string",
    "UUID": "guid",
    "JSON": "dynamic",
    "TIMESTAMP": "datetime",
    "TIMESTAMP WITH TIME ZONE": "datetime",
    "DATE": "datetime",
    "INTERVAL": "timespan",
}


@dataclass(frozen=True)
class Column:
    """A result column: its name and KQL type."""

    name: str
    type: str


@dataclass(frozen=True)
class ResultTable:
    """A KQL result as Log Analytics returns it: typed columns and rows of plain Python values."""

    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]

    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class MetricsRequest:
    """A Metrics-API-shaped question about one resource."""

    resource_id: str
    metric_names: tuple[str, ...]
    start: datetime
    end: datetime
    interval: timedelta
    split_by: tuple[str, ...] = ()
    #: dimension -> allowed values; a dimension in split_by with no filter means "all values" (Azure's `eq '*'`).
    filters: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricPoint:
    timestamp: datetime
    total: float
    count: float
    minimum: float
    maximum: float

    @property
    def average(self) -> float:
        return self.total / self.count if self.count else 0.0


@dataclass(frozen=True)
class MetricSeries:
    """One time series of one metric: the values of the split-by dimensions and its points."""

    metric: str
    dimensions: tuple[tuple[str, str], ...]
    points: tuple[MetricPoint, ...]


#: What a new connection's timespan views are set to: nothing yet, so the first query creates them.
_NO_SPAN = (datetime.min, datetime.min)


def kql_type(duckdb_type: str) -> str:
    """Map a DuckDB type name to the KQL type Log Analytics would report."""
    if duckdb_type.startswith("DECIMAL"):
        return "decimal"
    try:
        return _KQL_TYPES[duckdb_type]
    except KeyError as e:
        raise QueryError(f"the query returns a column of DuckDB type {duckdb_type}, which has no KQL type") from e


def _as_azure(column: Column) -> str:
    quoted = '"' + column.name.replace('"', '""') + '"'
    if column.type == "datetime":  # naive UTC here (the session zone); made aware by `_utc_rows`
        return f"{quoted}::TIMESTAMP AS {quoted}"
    if column.type == "string":
        return f"coalesce({quoted}, '') AS {quoted}"
    return quoted


class Workspace:
    """An embedded workspace stored in one DuckDB file.

    Reads share one cached database (opening DuckDB costs more than a small query), with a connection per thread
    (each holds its own timespan views), so several threads can read at once; `writer()` closes them first, since
    DuckDB will not hold one file open read-only and read-write in the same process.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader_con: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        #: translated SQL -> its result columns and the SQL that also applies Azure's conventions to them.
        self._shaped: dict[str, tuple[tuple[Column, ...], str]] = {}

    def exists(self) -> bool:
        return self.path.exists()

    def create(self) -> None:
        """Create the file and every table, if missing."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.writer() as con:
            for statement in create_statements():
                con.execute(statement)

    def close(self) -> None:
        """Release the cached read connections (the next read opens new ones)."""
        with self._lock:
            for cursor in self._cursors:
                cursor.close()
            self._cursors.clear()
            self._shaped.clear()
            self._local = threading.local()
            if self._reader_con is not None:
                self._reader_con.close()
                self._reader_con = None

    @contextmanager
    def writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-write connection; callers wrap their writes in one transaction so nothing is half-written."""
        self.close()
        con = duckdb.connect(str(self.path))
        try:
            con.execute("SET TimeZone='UTC'")
            yield con
        finally:
            con.close()

    def _connection(self) -> duckdb.DuckDBPyConnection:
        """This thread's read connection (the metrics store and the info table need no timespan views)."""
        con: duckdb.DuckDBPyConnection | None = getattr(self._local, "con", None)
        if con is None:
            with self._lock:
                if self._reader_con is None:
                    if not self.path.exists():
                        raise TerminalError(
                            f"no embedded workspace at {self.path}; create one with `aoai-obs workspace generate` "
                            "or `aoai-obs workspace import`"
                        )
                    base = duckdb_kql.connect()
                    base.execute(f"ATTACH '{_sql_literal(str(self.path))}' AS ws (READ_ONLY)")
                    self._reader_con = base
                con = self._reader_con.cursor()  # this thread's connection to the same database
                con.execute("SET TimeZone='UTC'")
                self._cursors.append(con)
            self._local.con = con
            self._local.span = _NO_SPAN
        return con

    @contextmanager
    def _reader(self, start: datetime | None, end: datetime | None) -> Iterator[duckdb.DuckDBPyConnection]:
        """This thread's connection with the log tables seen through the request's timespan."""
        con = self._connection()
        if self._local.span != (start, end):  # consecutive queries of one window share their views
            for table in LOG_TABLES:
                where = ""
                if start is not None and end is not None:
                    # Log Analytics applies the request timespan to TimeGenerated of every table it reads.
                    where = (
                        f" WHERE \"TimeGenerated\" >= TIMESTAMPTZ '{start.isoformat()}'"
                        f" AND \"TimeGenerated\" <= TIMESTAMPTZ '{end.isoformat()}'"
                    )
                con.execute(f'CREATE OR REPLACE TEMP VIEW "{table}" AS SELECT * FROM ws.main."{table}"{where}')
            self._local.span = (start, end)
        yield con

    def query(
        self,
        kql: str,
        timespan: tuple[datetime, datetime] | None = None,
        parameters: Mapping[str, datetime | timedelta] | None = None,
    ) -> ResultTable:
        """Run `kql` as Log Analytics would, with `timespan` (inclusive bounds) as an extra filter.

        `parameters` bind names the text uses but does not define (the collector's WindowStart, WindowEnd, Grain):
        the translation is then cached by text, since only the bound values change from window to window.
        """
        start, end = timespan if timespan is not None else (None, None)
        with self._reader(start, end) as con:
            try:
                return self._run(con, kql, parameters)
            except duckdb_kql.KqlError as e:
                raise QueryError(f"the KQL query was refused: {e}") from e
            except duckdb.Error as e:  # at planning or while rows are produced (a failed cast, say)
                raise QueryError(kql_message(str(e), kql)) from e

    def _run(self, con: duckdb.DuckDBPyConnection, kql: str,
             parameters: Mapping[str, datetime | timedelta] | None) -> ResultTable:
        if parameters:
            sql, bound = _translate_cached(kql, tuple((n, _param_type(v)) for n, v in parameters.items()))
            values = {slot: _param_value(parameters[name]) for name, slot in bound}
            shaped = self._shaped.get(sql)
            if shaped is not None:  # the same text again (the next window): bound and planned once
                columns, azure_sql = shaped
                rows = con.execute(azure_sql, values).fetchall() if columns else []
                return ResultTable(columns, _utc_rows(rows, _datetimes(columns)))
            relation = con.sql(sql, params=values)
        else:
            # The static schema, not the connection's: the timespan views are temporary, and the
            # translator needs the tables' columns under their own names for join's renaming.
            translated = duckdb_kql.to_sql(rewrite(kql, LOG_TABLES), schema=_SCHEMA)
            if translated.unbound:
                missing = ", ".join(translated.unbound)
                raise QueryError(f"the query declares parameters with no value: {missing}")
            relation = con.sql(str(translated), params=translated.parameters or None)
        if relation is None:
            return ResultTable((), [])
        types = [kql_type(str(t)) for t in relation.types]
        columns = tuple(Column(n, t) for n, t in zip(relation.columns, types, strict=True))
        # Azure's conventions: a null string is the empty string (applied by DuckDB), datetimes come back
        # timezone-aware in UTC (DuckDB returns them naive in UTC, the session zone; see `_utc_rows`).
        select = ", ".join(_as_azure(c) for c in columns)
        rows = _utc_rows(relation.project(select).fetchall(), _datetimes(columns)) if columns else []
        if parameters:
            # A parameterised text's columns do not depend on the values bound: later windows run the
            # conventions and the query as one statement.
            self._shaped[sql] = (columns, f"SELECT {select} FROM ({sql})")
        return ResultTable(columns, rows)

    def metrics(self, requests: Sequence[MetricsRequest]) -> list[MetricSeries]:
        """Answer Metrics-API-shaped questions from the dimensional metrics store, on one connection."""
        return [s for request, rows in zip(requests, self.metric_rows(requests), strict=True)
                for s in _metric_series(request, rows)]

    def metric_rows(self, requests: Sequence[MetricsRequest]) -> list[list[tuple[Any, ...]]]:
        """The same answers flat, per request: (metric, bucket start, split-by values..., total, count, minimum,
        maximum). What collection uses, skipping an object per point."""
        con = self._connection()
        return [_metric_rows(con, request) for request in requests]

    def metric_resources(self) -> list[str]:
        """The resource ids the metrics store holds, sorted."""
        rows = self._connection().execute(
            f'SELECT DISTINCT "ResourceId" FROM ws.main."{METRICS_TABLE}" ORDER BY 1').fetchall()
        return [str(r[0]) for r in rows]

    def info(self) -> dict[str, str]:
        """What the workspace says about itself (time range, generator, seed)."""
        rows = self._connection().execute(f'SELECT "Key", "Value" FROM ws.main."{INFO_TABLE}"').fetchall()
        return {str(k): str(v) for k, v in rows}


def _metric_rows(con: duckdb.DuckDBPyConnection, request: MetricsRequest) -> list[tuple[Any, ...]]:
    """(metric, bucket start, split-by values..., total, count, minimum, maximum), ordered by series then time."""
    seconds = int(request.interval.total_seconds())
    if seconds <= 0 or seconds % 60:
        raise QueryError(f"metric interval must be a positive whole number of minutes, not {request.interval}")
    dims = list(request.split_by)
    dim_exprs = [f"coalesce(json_extract_string(\"Dimensions\", '$.{_json_key(d)}'), '')" for d in dims]
    params: list[Any] = [request.resource_id, list(request.metric_names), request.start, request.end]
    filters = []
    for dim, values in sorted(request.filters.items()):
        filters.append(f"coalesce(json_extract_string(\"Dimensions\", '$.{_json_key(dim)}'), '') IN ?")
        params.append(list(values))
    filter_sql = "".join(f" AND {f}" for f in filters)
    dim_select = "".join(f", {e} AS d{i}" for i, e in enumerate(dim_exprs))
    dim_group = "".join(f", d{i}" for i in range(len(dims)))
    sql = f"""
        SELECT "MetricName",
               to_timestamp(floor(epoch("TimeGenerated") / {seconds}) * {seconds})::TIMESTAMP AS ts{dim_select},
               sum("Total")::DOUBLE, sum("Count")::DOUBLE, min("Minimum")::DOUBLE, max("Maximum")::DOUBLE
        FROM ws.main."{METRICS_TABLE}"
        WHERE upper("ResourceId") = upper(?) AND "MetricName" IN ?
          AND "TimeGenerated" >= ? AND "TimeGenerated" < ?{filter_sql}
        GROUP BY "MetricName", ts{dim_group}
        ORDER BY "MetricName"{dim_group}, ts
    """
    # The bucket starts come back naive in the session's zone (UTC) and are made aware once per distinct value.
    return _utc_rows(con.execute(sql, params).fetchall(), (1,))


def _datetimes(columns: Sequence[Column]) -> list[int]:
    return [i for i, column in enumerate(columns) if column.type == "datetime"]


def _utc_rows(rows: list[tuple[Any, ...]], positions: Sequence[int]) -> list[tuple[Any, ...]]:
    """`rows` with the naive UTC datetimes at `positions` made timezone-aware.

    Once per distinct value, not once per row: DuckDB's own conversion of a TIMESTAMPTZ to Python costs about a
    microsecond per value, six times a naive one, and a rollup result repeats a few hundred bucket starts over
    thousands of rows.
    """
    for i in positions if rows else ():
        aware: dict[Any, Any] = {v: v.replace(tzinfo=UTC) for v in {row[i] for row in rows} if v is not None}
        aware[None] = None
        if i == 0:
            rows = [(aware[row[0]], *row[1:]) for row in rows]
        else:
            rows = [(*row[:i], aware[row[i]], *row[i + 1:]) for row in rows]
    return rows


def _metric_series(request: MetricsRequest, rows: list[tuple[Any, ...]]) -> list[MetricSeries]:
    """Group `_metric_rows` output into the Metrics API's shape: one series per metric and split-by values."""
    width = len(request.split_by)
    grouped: dict[tuple[str, tuple[tuple[str, str], ...]], list[MetricPoint]] = {}
    for row in rows:
        dim_values = tuple(zip(request.split_by, (str(v) for v in row[2 : 2 + width]), strict=True))
        total, count, minimum, maximum = row[2 + width :]
        grouped.setdefault((row[0], dim_values), []).append(MetricPoint(row[1], total, count, minimum, maximum))
    return [MetricSeries(m, d, tuple(points)) for (m, d), points in grouped.items()]


def _param_type(value: datetime | timedelta) -> str:
    return "datetime" if isinstance(value, datetime) else "timespan"


def _param_value(value: datetime | timedelta) -> datetime | timedelta:
    # The translated SQL compares against naive UTC timestamps, as duckdb_kql binds datetimes itself.
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise QueryError("naive datetime given as a query parameter; times are timezone-aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


@functools.lru_cache(maxsize=256)
def _translate_cached(kql: str, declared: tuple[tuple[str, str], ...]) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Translate once per (text, parameter names and types); returns the SQL and which slot each name binds."""
    declaration = ", ".join(f"{name}:{kql_type}" for name, kql_type in declared)
    text = f"declare query_parameters({declaration});\n{rewrite(kql, LOG_TABLES)}"
    probe = {name: _probe_value(kql_type, i) for i, (name, kql_type) in enumerate(declared)}
    translated = duckdb_kql.to_sql(text, schema=_SCHEMA, parameters=probe)
    slots: list[tuple[str, str]] = []
    for name, _ in declared:
        expected = _param_value(probe[name])
        matches = [slot for slot, value in translated.parameters.items() if value == expected]
        if len(matches) == 1:
            slots.append((name, matches[0]))
        elif matches:  # pragma: no cover - the probe values are distinct by construction
            raise QueryError(f"cannot tell which placeholder binds {name}")
    return str(translated), tuple(slots)


def _probe_value(kql_type: str, index: int) -> datetime | timedelta:
    if kql_type == "datetime":
        return datetime(2001, 1, 1, tzinfo=UTC) + timedelta(days=index)
    return timedelta(seconds=7 + index)


#: Table -> column names, which the translator needs for join's column renaming.
_SCHEMA: dict[str, list[str]] = {table: list(columns) for table, columns in LOG_TABLES.items()}


def set_info(con: duckdb.DuckDBPyConnection, values: dict[str, str]) -> None:
    """Record facts about the workspace (inside the writer's transaction)."""
    for key, value in values.items():
        con.execute(f'INSERT OR REPLACE INTO "{INFO_TABLE}" VALUES (?, ?)', [key, value])


def insert_rows(
    con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Append rows to a workspace table, naming the columns given (the rest take their defaults)."""
    if not rows:
        return
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    con.executemany(f'INSERT INTO "{table}" ({names}) VALUES ({marks})', [list(r) for r in rows])


def _sql_literal(text: str) -> str:
    return text.replace("'", "''")


def _json_key(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise QueryError(f"invalid metric dimension name {name!r}")
    return name


def dumps_dynamic(value: Any) -> str:
    """A dynamic value as the JSON text Log Analytics returns for it."""
    return json.dumps(value, separators=(",", ":"))
