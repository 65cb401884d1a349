"""Imports Azure diagnostic logs archived to a storage account (insights-logs-*/.../PT1H.json) into a workspace.

Each record becomes one `AzureDiagnostics` row, mapped the way Log Analytics maps resource logs:

- `time` -> TimeGenerated (Azure writes 7 fractional digits; DuckDB keeps microseconds, so the 7th is dropped);
  a time without an offset is taken as UTC.
- `resourceId` -> ResourceId (upper-case) and _ResourceId (lower-case); SubscriptionId, ResourceGroup,
  ResourceProvider, ResourceType and Resource are parsed from it, upper-case, as Log Analytics shows them.
- `properties` (an object, or a string holding JSON) -> properties_s as compact JSON text.
- the common-schema fields (`operationName`, `operationVersion`, `category`, `resultType`, `resultSignature`,
  `resultDescription`, `durationMs`, `callerIpAddress`, `correlationId`, `level`) -> their columns, and
  `location`, `event`, `Tenant` -> the suffix columns location_s, event_s, Tenant_s. Keys match in any case,
  as Azure's own records vary (`callerIpAddress` / `callerIPAddress`).
- any other top-level field (e.g. `identity`, `tenantId`) has no column in the table: Log Analytics would make a
  suffix column such as `identity_s`, which this workspace does not have, so the field is kept in the
  AdditionalFields dynamic column under its own name instead of being dropped.
- TenantId (the Log Analytics workspace id) stays '', and strings are never NULL, as KQL has no null strings.

The files are parsed here with the json module: DuckDB's `read_json` over the tree would take the `resourceId=`
folder for a hive partition and blank every record's own resourceId.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import duckdb
import pandas as pd

from collector.errors import InputError, Problem, TerminalError
from collector.workspace.engine import Workspace, set_info
from collector.workspace.schema import INFO_TABLE

log = logging.getLogger(__name__)

TABLE: Final = "AzureDiagnostics"
BLOB_NAME: Final = "PT1H.json"
CONTAINER_PREFIX: Final = "insights-logs-"
#: Prefix of the `_WorkspaceInfo` keys that record imported files.
IMPORT_KEY_PREFIX: Final = "import:"

#: Lower-cased record key -> string column.
_STRING_FIELDS: Final[dict[str, str]] = {
    "operationname": "OperationName",
    "operationversion": "OperationVersion",
    "category": "Category",
    "resulttype": "ResultType",
    "resultsignature": "ResultSignature",
    "resultdescription": "ResultDescription",
    "calleripaddress": "CallerIPAddress",
    "correlationid": "CorrelationId",
    "level": "Level",
    "location": "location_s",
    "event": "event_s",
    "tenant": "Tenant_s",
}
#: Record keys mapped by code of their own rather than through _STRING_FIELDS.
_SPECIAL_FIELDS: Final = frozenset({"time", "resourceid", "durationms", "properties"})
_REQUIRED: Final = ("time", "resourceId", "category")

_RESOURCE_COLUMNS: Final = (
    "ResourceId", "_ResourceId", "SubscriptionId", "ResourceGroup", "ResourceProvider", "ResourceType", "Resource",
)
#: Every column an imported row fills; the rest of the table takes its defaults.
COLUMNS: Final[tuple[str, ...]] = (
    "TenantId", "TimeGenerated", "SourceSystem", "Type", *_RESOURCE_COLUMNS, *dict.fromkeys(_STRING_FIELDS.values()),
    "DurationMs", "properties_s", "AdditionalFields",
)
_STRING_COLUMNS: Final = tuple(c for c in COLUMNS if c not in {"TimeGenerated", "DurationMs", "AdditionalFields"})

_TIME_HINT: Final = "Azure writes ISO-8601 UTC times such as 2024-05-24T12:23:02.4350000Z"
_LINE_HINT: Final = "each line of a PT1H.json holds one JSON object, a resource-log record"
_LONG_MAX: Final = 2**63 - 1
_HOUR: Final = timedelta(hours=1)

Row = dict[str, Any]


@dataclass(frozen=True)
class ImportReport:
    """What one import did: files parsed and skipped, rows added per Category, and lines left out."""

    files_read: int
    files_skipped: int
    rows_imported: dict[str, int] = field(default_factory=dict)
    bad_lines: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class ImportedFile:
    """The identity of an imported file, as recorded in `_WorkspaceInfo`."""

    size: int
    sha256: str

    @classmethod
    def of(cls, data: bytes) -> ImportedFile:
        return cls(len(data), hashlib.sha256(data).hexdigest())


class BadRecord(ValueError):
    """A record that cannot become a row; the caller adds the file and line."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def import_archive(workspace: Workspace, root: Path, *, skip_bad_lines: bool = False) -> ImportReport:
    """Import every PT1H.json under `root` into `workspace` in one transaction.

    `root` is the folder holding the `insights-logs-*` containers, one container, or a single file. Files imported
    before with the same content are skipped. Any bad line raises InputError listing every bad line of every file
    and imports nothing, unless `skip_bad_lines`, which imports the good lines and reports the bad ones. A file that
    changed since it was imported always raises, as importing it again would double its rows.
    """
    files = find_archive_files(root)
    if not workspace.exists():
        raise TerminalError(f"no workspace at {workspace.path}; create it before importing into it")
    with workspace.writer() as con:
        con.begin()
        try:
            report = _import(con, root, files, skip_bad_lines)
            con.commit()
        except BaseException:
            con.rollback()
            raise
    log.info(
        "imported %d rows from %d file(s) of %s (%d already imported, %d bad line(s) skipped): %s",
        sum(report.rows_imported.values()), report.files_read, root, report.files_skipped, len(report.bad_lines),
        report.rows_imported,
    )
    return report


def find_archive_files(root: Path) -> list[Path]:
    """The PT1H.json files under `root` (or `root` itself, if it is a file), in path order."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputError([Problem(root, None, "no such file or folder", "pass the archive folder or a PT1H.json")],
                         "nothing to import")
    files = sorted(p for p in root.rglob(BLOB_NAME) if p.is_file())
    if not files:
        raise InputError(
            [Problem(root, None, f"no {BLOB_NAME} file under this folder",
                     "pass the folder holding the insights-logs-* containers, one container, or one PT1H.json")],
            "nothing to import",
        )
    return files


def archive_key(root: Path, path: Path) -> str:
    """The name an imported file is recorded under.

    Inside an `insights-logs-*` container this is the blob's own path from the container on, so importing through
    the archive folder, the container or the file itself names the file the same way; elsewhere it is the path
    relative to `root`.
    """
    parts = path.resolve().parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower().startswith(CONTAINER_PREFIX):
            return "/".join(parts[i:])
    if path == root:
        return path.name
    return path.relative_to(root).as_posix()


def parse_archive_file(path: Path, data: bytes) -> tuple[list[Row], list[Problem]]:
    """Rows of one PT1H.json's bytes, and a Problem for each bad line (blank lines are ignored)."""
    rows: list[Row] = []
    problems: list[Problem] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(path, number, f"not UTF-8 text (byte {e.start + 1} of the line)", _LINE_HINT))
            continue
        if not text.strip():
            continue
        try:
            rows.extend(parse_line(text))
        except BadRecord as e:
            problems.append(Problem(path, number, e.message, e.hint))
    return rows, problems


def parse_line(text: str) -> list[Row]:
    """The rows of one line: a record, or an Event Hubs style `{"records": [...]}` envelope of records."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadRecord(f"not JSON: {e.msg} at column {e.colno}", _LINE_HINT) from e
    if not isinstance(value, dict):
        raise BadRecord(f"a JSON {_json_kind(value)} where a record object was expected", _LINE_HINT)
    fields = _lower_keys(value)
    envelope = fields.get("records", ("records", None))[1]
    if isinstance(envelope, list) and "time" not in fields:
        rows = []
        for i, record in enumerate(envelope):
            try:
                if not isinstance(record, dict):
                    raise BadRecord(f"a JSON {_json_kind(record)} where a record object was expected", _LINE_HINT)
                rows.append(to_row(record))
            except BadRecord as e:
                raise BadRecord(f"records[{i}]: {e.message}", e.hint) from e
        return rows
    return [to_row(value)]


def to_row(record: Mapping[str, Any]) -> Row:
    """The AzureDiagnostics row of one resource-log record, as Log Analytics would store it."""
    fields = _lower_keys(record)
    missing = [name for name in _REQUIRED if _text(fields.get(name.lower(), (name, None))[1]) == ""]
    if missing:
        raise BadRecord(
            f"the record has no {', '.join(missing)}",
            "Azure resource-log records always carry time, resourceId and category; is this a diagnostic-log archive?",
        )
    row: Row = {column: "" for column in _STRING_COLUMNS}
    row["TimeGenerated"] = parse_time(fields["time"][1])
    row.update(parse_resource_id(_text(fields["resourceid"][1])))
    row["SourceSystem"] = "Azure"
    row["Type"] = TABLE
    for key, column in _STRING_FIELDS.items():
        if key in fields:
            row[column] = _text(fields[key][1])
    row["DurationMs"] = _duration(fields.get("durationms", ("durationMs", None))[1])
    row["properties_s"] = _properties(fields.get("properties", ("properties", None))[1])
    extra = {name: value for key, (name, value) in fields.items()
             if key not in _STRING_FIELDS and key not in _SPECIAL_FIELDS}
    row["AdditionalFields"] = _compact(extra) if extra else None
    return row


def parse_time(value: Any) -> datetime:
    """A record's `time` as an aware UTC datetime (7 fractional digits are cut to microseconds)."""
    if not isinstance(value, str):
        raise BadRecord(f"time {_compact(value)} is not a string", _TIME_HINT)
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as e:
        raise BadRecord(f"time {value!r} is not an ISO-8601 datetime", _TIME_HINT) from e
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_resource_id(resource_id: str) -> dict[str, str]:
    """The resource columns Log Analytics derives from an ARM id; parts the id lacks stay ''."""
    upper = resource_id.strip().upper()
    columns = dict.fromkeys(_RESOURCE_COLUMNS, "")
    columns["ResourceId"] = upper
    columns["_ResourceId"] = upper.lower()
    segments = [s for s in upper.split("/") if s]
    for i in range(0, len(segments) - 1, 2):
        key, value = segments[i], segments[i + 1]
        if key == "SUBSCRIPTIONS":
            columns["SubscriptionId"] = value
        elif key == "RESOURCEGROUPS":
            columns["ResourceGroup"] = value
        elif key == "PROVIDERS":
            columns["ResourceProvider"] = value
            # Type/name pairs follow the namespace; a nested resource is named by its last pair.
            rest = segments[i + 2 :]
            if len(rest) >= 2:
                columns["ResourceType"], columns["Resource"] = rest[-2], rest[-1]
            break
    return columns


def _import(con: duckdb.DuckDBPyConnection, root: Path, files: list[Path], skip_bad_lines: bool) -> ImportReport:
    known = _imported_files(con)
    fatal: list[Problem] = []
    bad: list[Problem] = []
    rows: list[Row] = []
    records: dict[str, str] = {}
    files_read = files_skipped = 0
    for path in files:
        key = archive_key(root, path)
        try:
            data = path.read_bytes()
        except OSError as e:
            fatal.append(Problem(path, None, f"cannot read the file: {e.strerror or e}", "check it is readable"))
            continue
        this = ImportedFile.of(data)
        earlier = known.get(key)
        if earlier is not None:
            if earlier == this:
                files_skipped += 1
            else:
                fatal.append(_changed_file(path, key, earlier, this, data))
            continue
        known[key] = this
        file_rows, file_bad = parse_archive_file(path, data)
        files_read += 1
        rows.extend(file_rows)
        bad.extend(file_bad)
        records[IMPORT_KEY_PREFIX + key] = json.dumps(
            {"size": this.size, "sha256": this.sha256, "rows": len(file_rows), "bad_lines": len(file_bad)},
            separators=(",", ":"),
        )
    if fatal or (bad and not skip_bad_lines):
        raise InputError(fatal + bad, _failure_summary(root, fatal, bad))
    _insert(con, rows)
    set_info(con, {**records, **_time_range(con, rows)})
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["Category"]] = counts.get(row["Category"], 0) + 1
    return ImportReport(files_read, files_skipped, counts, bad)


def _imported_files(con: duckdb.DuckDBPyConnection) -> dict[str, ImportedFile]:
    rows = con.execute(
        f'SELECT "Key", "Value" FROM "{INFO_TABLE}" WHERE starts_with("Key", ?)', [IMPORT_KEY_PREFIX]
    ).fetchall()
    known = {}
    for key, value in rows:
        try:
            recorded = json.loads(value)
            known[str(key)[len(IMPORT_KEY_PREFIX):]] = ImportedFile(int(recorded["size"]), str(recorded["sha256"]))
        except (ValueError, TypeError, KeyError) as e:
            raise TerminalError(f"the workspace's record of {key} is unreadable ({value!r}); the workspace is "
                                "damaged: import into a new one") from e
    return known


def _changed_file(path: Path, key: str, earlier: ImportedFile, now: ImportedFile, data: bytes) -> Problem:
    grown = now.size > earlier.size and ImportedFile.of(data[: earlier.size]) == earlier
    why = " (it has grown: Azure was still writing that hour when the earlier copy was taken)" if grown else ""
    return Problem(
        path, None,
        f"this file was imported before as {key} with other content ({earlier.size} bytes, sha256 "
        f"{earlier.sha256[:12]}…; now {now.size} bytes, sha256 {now.sha256[:12]}…){why}",
        "importing it again would double its rows: import the archive into a new workspace, or leave this file out",
    )


def _failure_summary(root: Path, fatal: list[Problem], bad: list[Problem]) -> str:
    parts = []
    if bad:
        files = len({p.path for p in bad})
        parts.append(f"{len(bad)} bad line(s) in {files} file(s)")
    if fatal:
        parts.append(f"{len(fatal)} file(s) that cannot be imported")
    advice = "" if fatal else "; fix them, or import the good lines with --skip-bad-lines"
    return f"cannot import {root}: {' and '.join(parts)}; nothing was imported{advice}"


def _insert(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> None:
    if not rows:
        return
    frame = _frame(rows)
    names = ", ".join(f'"{c}"' for c in COLUMNS)
    select = ", ".join('CAST("AdditionalFields" AS JSON)' if c == "AdditionalFields" else f'"{c}"' for c in COLUMNS)
    con.register("archive_rows", frame)
    try:
        con.execute(f'INSERT INTO "{TABLE}" ({names}) SELECT {select} FROM archive_rows')
    except duckdb.Error as e:
        raise TerminalError(f"could not write the imported rows into {TABLE}: {e}") from e
    finally:
        con.unregister("archive_rows")


def _frame(rows: list[Row]) -> pd.DataFrame:
    columns: dict[str, Any] = {c: [r[c] for r in rows] for c in _STRING_COLUMNS}
    columns["TimeGenerated"] = pd.to_datetime([r["TimeGenerated"] for r in rows], utc=True)
    columns["DurationMs"] = pd.array([r["DurationMs"] for r in rows], dtype="Int64")
    columns["AdditionalFields"] = pd.Series([r["AdditionalFields"] for r in rows], dtype="object")
    return pd.DataFrame(columns)[list(COLUMNS)]


def _time_range(con: duckdb.DuckDBPyConnection, rows: list[Row]) -> dict[str, str]:
    """The info keys start/end widened to whole hours covering the imported rows."""
    if not rows:
        return {}
    times = [r["TimeGenerated"] for r in rows]
    start = min(times).replace(minute=0, second=0, microsecond=0)
    end = max(times).replace(minute=0, second=0, microsecond=0) + _HOUR
    info = dict(con.execute(f'SELECT "Key", "Value" FROM "{INFO_TABLE}" WHERE "Key" IN (\'start\', \'end\')')
                .fetchall())
    if "start" in info:
        start = min(start, datetime.fromisoformat(str(info["start"])))
    if "end" in info:
        end = max(end, datetime.fromisoformat(str(info["end"])))
    return {"start": start.isoformat(), "end": end.isoformat()}


def _lower_keys(record: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """Lower-cased key -> (key as written, value); of keys differing only in case, the first one written wins."""
    fields: dict[str, tuple[str, Any]] = {}
    for name, value in record.items():
        fields.setdefault(name.lower(), (name, value))
    return fields


def _text(value: Any) -> str:
    """A value as the string Log Analytics stores for it ('' for null)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return _compact(value)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _duration(value: Any) -> int | None:
    if value is None or value == "":
        return None
    number: float | int
    if isinstance(value, bool):
        number = float("nan")
    elif isinstance(value, int | float):
        number = value
    else:
        try:
            number = float(str(value))
        except ValueError:
            number = float("nan")
    if number != number or abs(number) > _LONG_MAX:
        raise BadRecord(f"durationMs {_compact(value)} is not a number of milliseconds",
                        "Azure writes durationMs as a whole number, e.g. 1021")
    return round(number)


def _properties(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise BadRecord(f"properties is a string but not JSON text: {e.msg} (character {e.pos + 1})",
                            "properties must be a JSON object, or a string holding one") from e
    return _compact(value)


def _json_kind(value: Any) -> str:
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (list, "array"), (str, "string"), (bool, "boolean"), ((int, float), "number"),
    ]
    if value is None:
        return "null"
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)
