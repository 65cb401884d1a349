"""Cost Management exports: their manifests and runs, and the Azure OpenAI lines of their CSV and Parquet files.

Pure: no Azure SDK. A source (a local folder, a blob container) hands over `ExportFile`s; this module finds the runs by
their `manifest.json`, keeps the newest run of each (export, period), and streams the Azure OpenAI lines of its files
as `BilledLine`s, batch by batch, so memory does not grow with the size of the export.

Facts and their sources (all Microsoft's):
- Layout and manifest: finops-toolkit `docs-mslearn/toolkit/hubs/data-processing.md` ("Export manifests can change with
  API versions", example for 2023-07-01-preview: `exportConfig.exportName/resourceId/dataVersion/type`,
  `runInfo.submittedTime/runId/startDate/endDate`, `blobs[].blobName/byteCount`); blob names are paths under the
  container. Runs are found by their manifest, never by folder names (the documents disagree on the folder order).
- FOCUS columns: finops-toolkit `src/open-data/dataset-metadata/FocusCost_1.0.json` and `FocusCost_1.2-preview.json`
  (1.0r2 is 1.0 with seconds in dates: finops-toolkit `docs-mslearn/toolkit/changelog.md`).
- Legacy columns: azure-docs `articles/cost-management-billing/dataset-schema/cost-usage-details-ea.md` (EA, PascalCase:
  `Date`, `MeterId`, `Quantity`, `UnitOfMeasure`, `CostInBillingCurrency`, `BillingCurrencyCode`, ...) and
  `cost-usage-details-mca.md` (MCA, camelCase: `date`, `meterId`, `quantity`, `costInBillingCurrency`,
  `paygCostInBillingCurrency`, `billingCurrency`, ...). Names are matched case-insensitively.
- Legacy to FOCUS: finops-toolkit `docs-mslearn/focus/mapping.md` (Date -> ChargePeriodStart, MeterId -> x_SkuMeterId,
  MeterName -> SkuMeter, MeterCategory -> x_SkuMeterCategory, CostInBillingCurrency -> BilledCost for actual cost and
  EffectiveCost otherwise, PaygCostInBillingCurrency -> ListCost, UnitPrice -> ContractedUnitPrice, Quantity ->
  ConsumedQuantity or PricingQuantity "after accounting for pricing block size").
- Block sizes: finops-toolkit `src/open-data/PricingUnits.csv` (`1K` -> 1000, `1M` -> 1000000, `100 Hours` -> 100).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from pathlib import Path
from typing import IO, Any, Protocol, cast

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from collector.errors import InputError, Problem

MAX_PROBLEMS = 20
BATCH_ROWS = 65_536
CSV_BLOCK_BYTES = 4 << 20
HEADER_PEEK_BYTES = 1 << 20
AZURE_OPENAI = "azure openai"
_ACCOUNT_ID = re.compile(
    r"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.cognitiveservices/accounts/([^/]+))", re.I)


class ExportFile(Protocol):
    """One stored file of a source: its name under the source's root and a way to read its bytes from the start."""

    @property
    def name(self) -> str:
        """The '/'-separated path under the source's root (a blob name for a container)."""
        ...

    @property
    def where(self) -> Path:
        """Where a person finds the file, for messages."""
        ...

    def open(self) -> IO[bytes]:
        """A fresh binary stream of the file as stored (still gzip-compressed if it is); seekable for Parquet."""
        ...


class Dataset(Enum):
    FOCUS = "focus"
    ACTUAL = "actual"
    AMORTIZED = "amortized"


@dataclass(frozen=True)
class ManifestBlob:
    name: str
    byte_count: int | None = None


@dataclass(frozen=True)
class ExportManifest:
    """A run's `manifest.json`: which export wrote it, for which period, when, and which files it holds."""

    file: str
    export_name: str
    export_id: str
    dataset_type: str
    data_version: str
    run_id: str
    submitted: datetime | None
    period_start: date
    period_end: date | None
    blobs: tuple[ManifestBlob, ...]
    row_count: int | None = None

    @property
    def key(self) -> tuple[str, date]:
        """A later run with the same key supersedes this one (a month-to-date run is re-written every day)."""
        return (self.export_id, self.period_start)


@dataclass(frozen=True)
class ExportRun:
    manifest: ExportManifest
    files: tuple[ExportFile, ...]


@dataclass(frozen=True)
class Discovery:
    """The runs to read (newest of each export and period), the runs they supersede, and files no manifest lists."""

    runs: tuple[ExportRun, ...]
    superseded: tuple[ExportManifest, ...]
    unlisted: tuple[str, ...]


@dataclass(frozen=True)
class BilledLine:
    """One Azure OpenAI line of the bill: an account's meter on a day.

    `quantity` is in base units (tokens, hours): FOCUS `ConsumedQuantity`; legacy `Quantity` times the block size when
    the line counts blocks (see `base_quantity`). `unit_price` is per pricing block of `block_size` base units, as in
    the file. `line` is the record number in the file counting the header as 1 (the line number unless a quoted field
    spans lines; problems are located by physical line); Parquet rows count from 1.
    """

    day: date
    resource_id: str
    account: str
    meter_id: str
    meter_name: str
    unit: str
    quantity: Decimal
    block_size: Decimal
    billed_cost: Decimal
    effective_cost: Decimal | None
    list_cost: Decimal | None
    unit_price: Decimal | None
    currency: str
    charge_type: str
    pricing_model: str
    export: str
    run_id: str
    file: str
    line: int


@dataclass
class ReadStats:
    """Counts for the summary line of an import."""

    files: int = 0
    rows: int = 0
    lines: int = 0
    not_openai: int = 0
    openai_without_account: int = 0
    quantity_assumed_blocks: int = 0


# Lower-case column names per field, first match wins; sources in the module docstring.
FOCUS_COLUMNS: dict[str, tuple[str, ...]] = {
    "day": ("chargeperiodstart",),
    "resource_id": ("resourceid",),
    "meter_id": ("x_skumeterid",),
    "meter_name": ("x_skumetername", "skumeter"),
    "category": ("x_skumetercategory",),
    "subcategory": ("x_skumetersubcategory",),
    "product": ("chargedescription",),
    "quantity": ("consumedquantity",),
    "unit": ("consumedunit",),
    "pricing_quantity": ("pricingquantity",),
    "block_size": ("x_pricingblocksize",),
    "unit_description": ("x_pricingunitdescription", "pricingunit"),
    "billed": ("billedcost",),
    "effective": ("effectivecost",),
    "list": ("listcost",),
    "unit_price": ("contractedunitprice",),
    "currency": ("billingcurrency",),
    "charge_type": ("chargecategory",),
    "pricing_model": ("pricingcategory",),
}
FOCUS_REQUIRED = ("day", "resource_id", "meter_id", "meter_name", "category", "quantity", "billed", "currency",
                  "charge_type")
LEGACY_COLUMNS: dict[str, tuple[str, ...]] = {
    "day": ("date", "usagedatetime"),
    "resource_id": ("resourceid", "instanceid", "instancename"),
    "meter_id": ("meterid",),
    "meter_name": ("metername",),
    "category": ("metercategory",),
    "subcategory": ("metersubcategory",),
    "product": ("productname", "product"),
    "quantity": ("quantity", "usagequantity"),
    "unit": ("unitofmeasure",),
    "cost": ("costinbillingcurrency", "cost", "pretaxcost"),
    "list": ("paygcostinbillingcurrency",),
    "unit_price": ("unitprice",),
    "effective_price": ("effectiveprice",),
    "currency": ("billingcurrencycode", "billingcurrency", "currency"),
    "charge_type": ("chargetype",),
    "pricing_model": ("pricingmodel",),
}
LEGACY_REQUIRED = ("day", "resource_id", "meter_id", "meter_name", "category", "quantity", "unit", "cost", "currency")


# --- manifests and runs -------------------------------------------------------------------------------------------


def parse_manifest(data: bytes, name: str, where: Path) -> ExportManifest:
    """Read one `manifest.json`; every missing or malformed field is a located problem."""
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError([Problem(where, getattr(e, "lineno", None), f"not a JSON manifest: {e}")]) from e
    problems: list[Problem] = []

    def section(key: str) -> dict[str, Any]:
        value = _get(doc, key) if isinstance(doc, dict) else None
        if not isinstance(value, dict):
            problems.append(Problem(where, None, f"manifest has no '{key}' object"))
            return {}
        return value

    config, run = section("exportConfig"), section("runInfo")
    blobs_doc = _get(doc, "blobs") if isinstance(doc, dict) else None
    blobs: list[ManifestBlob] = []
    if not isinstance(blobs_doc, list):
        problems.append(Problem(where, None, "manifest has no 'blobs' list"))
    else:
        for item in blobs_doc:
            blob_name = _get(item, "blobName") if isinstance(item, dict) else None
            if not isinstance(blob_name, str) or not blob_name:
                problems.append(Problem(where, None, f"a 'blobs' entry has no blobName: {item!r}"))
                continue
            size = _get(item, "byteCount")
            blobs.append(ManifestBlob(blob_name, size if isinstance(size, int) else None))
    export_name = str(_get(config, "exportName") or "")
    if not export_name:
        problems.append(Problem(where, None, "manifest has no exportConfig.exportName"))
    start = _manifest_date(_get(run, "startDate"), "runInfo.startDate", where, problems)
    end_raw = _get(run, "endDate")
    end = _manifest_date(end_raw, "runInfo.endDate", where, problems) if end_raw else None
    submitted_raw = _get(run, "submittedTime")
    submitted = _manifest_time(submitted_raw, where, problems) if submitted_raw else None
    if problems:
        raise InputError(problems, f"{where}: this manifest.json cannot be used")
    assert start is not None
    rows = _get(doc, "dataRowCount")
    return ExportManifest(
        file=name, export_name=export_name,
        export_id=str(_get(config, "resourceId") or export_name).lower(),
        dataset_type=str(_get(config, "type") or ""), data_version=str(_get(config, "dataVersion") or ""),
        run_id=str(_get(run, "runId") or name), submitted=submitted, period_start=start, period_end=end,
        blobs=tuple(blobs), row_count=rows if isinstance(rows, int) else None)


def _get(doc: dict[str, Any], key: str) -> Any:
    """A manifest key, matched case-insensitively (manifests change with API versions)."""
    if key in doc:
        return doc[key]
    lowered = key.lower()
    return next((v for k, v in doc.items() if k.lower() == lowered), None)


def _manifest_date(value: object, key: str, where: Path, problems: list[Problem]) -> date | None:
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}", value):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            pass
    problems.append(Problem(where, None, f"manifest {key} is not a date: {value!r}"))
    return None


def _manifest_time(value: object, where: Path, problems: list[Problem]) -> datetime | None:
    if isinstance(value, str):
        # submittedTime carries 7 fractional digits ("2024-02-03T18:33:03.1032074Z"): keep microseconds.
        text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            parsed = None
        if parsed is not None:
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    problems.append(Problem(where, None, f"manifest runInfo.submittedTime is not a time: {value!r}"))
    return None


def discover(files: Iterable[ExportFile], read: Callable[[ExportFile], bytes] | None = None) -> Discovery:
    """Find every run by its manifest, match its blobs to files, keep the newest run per export and period."""
    listed = list(files)
    by_name = {f.name.strip("/"): f for f in listed}
    manifests = [f for f in listed if f.name.rsplit("/", 1)[-1].lower() == "manifest.json"]
    if not manifests:
        raise InputError([Problem(None, None, f"no manifest.json among {len(listed)} file(s)",
                                  "point SOURCE at the storage container or folder that a Cost Management export "
                                  "writes to; each export run leaves a manifest.json beside its data files")])
    problems: list[Problem] = []
    runs: list[ExportRun] = []
    claimed: set[str] = set()
    for mf in manifests:
        try:
            manifest = parse_manifest(read(mf) if read else _read_all(mf), mf.name, mf.where)
        except InputError as e:
            problems.extend(e.problems)
            continue
        run_files: list[ExportFile] = []
        for blob in manifest.blobs:
            found = _match_blob(blob.name, mf.name, by_name)
            if found is None:
                problems.append(Problem(mf.where, None, f"manifest lists {blob.name}, which is not in the source",
                                        "the run may still be being written, or files were moved: re-run the export"))
            else:
                run_files.append(found)
                claimed.add(found.name.strip("/"))
        claimed.add(mf.name.strip("/"))
        runs.append(ExportRun(manifest, tuple(run_files)))
    if problems:
        raise InputError(problems, "the export's manifests do not match its files")
    kept, superseded = newest_runs(runs)
    unlisted = tuple(sorted(n for n in by_name if n not in claimed))
    return Discovery(kept, superseded, unlisted)


def newest_runs(runs: Sequence[ExportRun]) -> tuple[tuple[ExportRun, ...], tuple[ExportManifest, ...]]:
    """The newest run of each (export, period start) and the older ones it supersedes; summing runs double-counts."""
    best: dict[tuple[str, date], ExportRun] = {}
    for run in runs:
        current = best.get(run.manifest.key)
        if current is None or _run_order(run.manifest) > _run_order(current.manifest):
            best[run.manifest.key] = run
    kept = tuple(sorted(best.values(), key=lambda r: (r.manifest.export_id, r.manifest.period_start)))
    chosen = {id(r) for r in kept}
    superseded = tuple(r.manifest for r in runs if id(r) not in chosen)
    return kept, superseded


def _run_order(m: ExportManifest) -> tuple[datetime, date, str]:
    submitted = m.submitted or datetime.min.replace(tzinfo=UTC)
    return (submitted, m.period_end or m.period_start, m.run_id)


def _match_blob(blob: str, manifest_name: str, by_name: dict[str, ExportFile]) -> ExportFile | None:
    """The manifest's blob names are container paths; the source may be rooted at the container or below it."""
    blob = blob.strip("/")
    if blob in by_name:
        return by_name[blob]
    folder = manifest_name.strip("/").rpartition("/")[0]
    beside = f"{folder}/{blob.rsplit('/', 1)[-1]}" if folder else blob.rsplit("/", 1)[-1]
    if beside in by_name:
        return by_name[beside]
    return next((f for n, f in by_name.items() if blob.endswith("/" + n) or n.endswith("/" + blob)), None)


def _read_all(file: ExportFile) -> bytes:
    with file.open() as stream:
        return stream.read()


# --- reading lines ------------------------------------------------------------------------------------------------


class _Problems:
    """Problems of one import: collected up to a limit, then the import stops."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.items: list[Problem] = []

    def add(self, problem: Problem) -> None:
        self.items.append(problem)
        if len(self.items) >= self.limit:
            raise InputError(self.items, f"stopped after {len(self.items)} problems in the export; nothing imported")


def read_lines(runs: Sequence[ExportRun], *, max_problems: int = MAX_PROBLEMS,
               stats: ReadStats | None = None) -> Iterator[BilledLine]:
    """Stream the Azure OpenAI lines of the runs' files.

    Once a problem is found no more lines are yielded; the rest of the export is still checked (up to `max_problems`)
    and then `InputError` names every problem with its file and line. The caller writes what it received in one
    transaction and rolls it back on that error, so nothing is half-imported.
    """
    stats = stats if stats is not None else ReadStats()
    problems = _Problems(max_problems)
    for run in runs:
        for file in run.files:
            stats.files += 1
            for line in _read_file(file, run.manifest, problems, stats):
                if not problems.items:
                    stats.lines += 1
                    yield line
    if problems.items:
        raise InputError(problems.items, f"{len(problems.items)} problem(s) in the export; nothing imported")


def _read_file(file: ExportFile, manifest: ExportManifest, problems: _Problems,
               stats: ReadStats) -> Iterator[BilledLine]:
    if file.name.lower().endswith(".parquet"):
        yield from _read_parquet(file, manifest, problems, stats)
    else:
        yield from _read_csv(file, manifest, problems, stats)


@dataclass
class _Layout:
    """Where each field is in one file's batches, and which dataset the file holds."""

    dataset: Dataset
    columns: dict[str, str]
    record_base: int
    unit_blocks: dict[str, Decimal] = field(default_factory=dict)
    last_decision: bool | None = None


def layout_for(names: Sequence[str], dataset_type: str) -> tuple[Dataset, dict[str, str], list[str]]:
    """Detect FOCUS vs legacy by the columns (any case), map fields to the file's column names, list what's missing.

    Legacy actual and amortized files have the same columns: the manifest's `type` tells them apart.
    """
    lowered: dict[str, str] = {}
    for name in names:
        lowered.setdefault(name.strip().lower(), name)
    if "billedcost" in lowered or "chargeperiodstart" in lowered:
        dataset, spec, required = Dataset.FOCUS, FOCUS_COLUMNS, FOCUS_REQUIRED
    else:
        amortized = "amortized" in dataset_type.lower()
        dataset, spec, required = (Dataset.AMORTIZED if amortized else Dataset.ACTUAL), LEGACY_COLUMNS, LEGACY_REQUIRED
    columns: dict[str, str] = {}
    for key, candidates in spec.items():
        found = next((lowered[c] for c in candidates if c in lowered), None)
        if found is not None:
            columns[key] = found
    missing = [spec[k][0] for k in required if k not in columns]
    return dataset, columns, missing


def _missing_problem(where: Path, names: Sequence[str], missing: list[str], dataset: Dataset,
                     line: int | None) -> Problem:
    kind = "FOCUS" if dataset is Dataset.FOCUS else "legacy (EA/MCA) cost"
    hint = ("export the FocusCost dataset (1.0, 1.0r2 or 1.2-preview) or the legacy actual/amortized cost dataset; "
            f"the file has {len(names)} column(s): {', '.join(list(names)[:8])}{', ...' if len(names) > 8 else ''}")
    return Problem(where, line, f"{kind} file lacks column(s) {', '.join(missing)} (names match in any case)", hint)


def _read_csv(file: ExportFile, manifest: ExportManifest, problems: _Problems,
              stats: ReadStats) -> Iterator[BilledLine]:
    stream = _decompressed(file)
    try:
        yield from _read_csv_stream(stream, file, manifest, problems, stats)
    finally:
        stream.close()


def _read_csv_stream(stream: IO[bytes], file: ExportFile, manifest: ExportManifest, problems: _Problems,
                     stats: ReadStats) -> Iterator[BilledLine]:
    head = stream.read(HEADER_PEEK_BYTES)
    if not head.strip():
        return  # an empty part: Azure writes one when a partition has no rows
    try:
        header = next(csv.reader(io.StringIO(codecs.decode(head, "utf-8-sig", errors="replace"))))
    except (csv.Error, StopIteration) as e:
        problems.add(Problem(file.where, 1, f"cannot read the CSV header: {e}"))
        return
    dataset, columns, missing = layout_for(header, manifest.dataset_type)
    if missing:
        problems.add(_missing_problem(file.where, header, missing, dataset, 1))
        return
    skipped: list[tuple[int, str]] = []

    wanted = sorted(set(columns.values()))
    try:
        reader = _open_csv(cast(IO[bytes], _Prefixed(head, stream)), wanted, skipped, threads=True)
    except pa.ArrowInvalid as e:
        problems.add(Problem(file.where, 1, f"cannot read the CSV file: {e}"))
        return
    layout = _Layout(dataset, columns, record_base=2)
    bad_rows: list[tuple[int, str]] = []
    offset = 0
    try:
        for batch in reader:
            for item in _batch_lines(batch, offset, layout, file, manifest, stats):
                if isinstance(item, BilledLine):
                    if not bad_rows and not skipped:  # after a problem the rest is only checked
                        yield item
                else:
                    bad_rows.append(item)
            offset += batch.num_rows
            if len(bad_rows) + len(skipped) + len(problems.items) >= problems.limit:
                break
    except pa.ArrowInvalid as e:
        problems.add(Problem(file.where, None, f"cannot read the CSV file: {e}", "is it a complete CSV export part?"))
    if bad_rows or skipped:
        if any(number is None for number, _ in skipped):
            skipped = _numbered_invalid_rows(file, wanted)
        _report_csv(file, bad_rows, skipped, problems)


def _open_csv(stream: IO[bytes], wanted: list[str], skipped: list[tuple[int, str]],
              threads: bool) -> pacsv.CSVStreamingReader:
    def invalid_row(row: Any) -> str:
        skipped.append((row.number, f"has {row.actual_columns} field(s), the header has {row.expected_columns}"))
        return "skip"

    return pacsv.open_csv(
        pa.PythonFile(stream, mode="r"),
        read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, use_threads=threads),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=invalid_row),
        convert_options=pacsv.ConvertOptions(
            include_columns=wanted, column_types=dict.fromkeys(wanted, pa.string()), strings_can_be_null=False,
            quoted_strings_can_be_null=False))


def _numbered_invalid_rows(file: ExportFile, wanted: list[str]) -> list[tuple[int, str]]:
    """Arrow numbers the rows it skips only when it reads on one thread: read the bad file again that way."""
    skipped: list[tuple[int, str]] = []
    with _decompressed(file) as stream:
        for _ in _open_csv(stream, wanted[:1], skipped, threads=False):
            pass
    return skipped


def _shift(record: int, skipped: list[tuple[int, str]]) -> int:
    """The record number of a row that pyarrow counted without the rows it skipped before it."""
    for number, _ in sorted(skipped):
        if number <= record:
            record += 1
    return record


def _report_csv(file: ExportFile, bad_rows: list[tuple[int, str]], skipped: list[tuple[int, str]],
                problems: _Problems) -> None:
    """Turn record numbers into physical line numbers (quoted fields may span lines) by one pass over the file."""
    records = sorted([(_shift(row + 2, skipped), message) for row, message in bad_rows] + skipped)
    lines = _physical_lines(file, [r for r, _ in records])
    for (_, message), line in zip(records, lines, strict=True):
        problems.add(Problem(file.where, line, message))


def _physical_lines(file: ExportFile, records: list[int]) -> list[int]:
    """The line on which each record (header = 1) starts."""
    wanted = iter(records)
    target = next(wanted, None)
    out: list[int] = []
    with io.TextIOWrapper(_decompressed(file), encoding="utf-8-sig", errors="replace", newline="") as text:
        reader = csv.reader(text)
        start = 1
        for number, _ in enumerate(reader, start=1):
            while target is not None and target == number:
                out.append(start)
                target = next(wanted, None)
            if target is None:
                break
            start = reader.line_num + 1
    out.extend([start] * (len(records) - len(out)))
    return out


def _read_parquet(file: ExportFile, manifest: ExportManifest, problems: _Problems,
                  stats: ReadStats) -> Iterator[BilledLine]:
    with file.open() as stream:
        try:
            parquet = pq.ParquetFile(stream)
        except (pa.ArrowInvalid, OSError) as e:
            problems.add(Problem(file.where, None, f"not a Parquet file: {e}"))
            return
        names = parquet.schema_arrow.names
        dataset, columns, missing = layout_for(names, manifest.dataset_type)
        if missing:
            problems.add(_missing_problem(file.where, names, missing, dataset, None))
            return
        layout = _Layout(dataset, columns, record_base=1)
        offset = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=sorted(set(columns.values()))):
            for item in _batch_lines(batch, offset, layout, file, manifest, stats):
                if isinstance(item, BilledLine):
                    yield item
                else:
                    problems.add(Problem(file.where, item[0] + 1, f"row {item[0] + 1}: {item[1]}"))
            offset += batch.num_rows


def _batch_lines(batch: pa.RecordBatch, offset: int, layout: _Layout, file: ExportFile, manifest: ExportManifest,
                 stats: ReadStats) -> Iterator[BilledLine | tuple[int, str]]:
    """Filter a batch to Azure OpenAI lines in Arrow, then build the few lines that remain in Python.

    Yields a line, or (row number in the file counting from 0 at the first data row, message) for a bad row.
    """
    stats.rows += batch.num_rows
    cols = layout.columns
    mask = _openai_mask(batch, cols)
    rows = pc.indices_nonzero(mask).to_pylist()
    stats.not_openai += batch.num_rows - len(rows)
    if not rows:
        return
    picked = batch.filter(mask)
    if layout.dataset is Dataset.FOCUS and layout.record_base == 2:
        fast = _focus_lines_fast(picked, cols, rows, offset + layout.record_base, manifest, file.name, stats)
        if fast is not None:
            yield from fast
            return
    values = {key: picked.column(name).to_pylist() for key, name in cols.items()}
    build = _focus_line if layout.dataset is Dataset.FOCUS else _legacy_line
    for i, row in enumerate(rows):
        get = _Row(values, i)
        resource = _ACCOUNT_ID.match(str(get("resource_id") or "").strip())
        if resource is None:
            stats.openai_without_account += 1  # e.g. a provisioned-throughput reservation bought at billing scope
            continue
        try:
            yield build(get, layout, resource, manifest, file.name, layout.record_base + offset + row, stats)
        except _BadValue as e:
            yield (row + offset, str(e))


_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
_ACCOUNTS: dict[str, tuple[str, str] | None] = {}


def _account(resource_id: object) -> tuple[str, str] | None:
    """(lower-cased account resource id, account name) of a Cognitive Services account id, or None; cached."""
    text = str(resource_id or "")
    found = _ACCOUNTS.get(text, ())
    if found == ():
        match = _ACCOUNT_ID.match(text.strip())
        found = (match.group(1).lower(), match.group(2).lower()) if match else None
        if len(_ACCOUNTS) < 100_000:
            _ACCOUNTS[text] = found
    return found  # type: ignore[return-value]


def _focus_lines_fast(picked: pa.RecordBatch, cols: dict[str, str], rows: list[int], base: int,
                      manifest: ExportManifest, file: str, stats: ReadStats) -> list[BilledLine] | None:
    """A whole batch of FOCUS CSV text at once, checked and trimmed in Arrow; None when any value is off, and then the
    row by row path finds and names it. Same results as `_focus_line`, several times faster."""
    n = len(rows)

    def column(key: str) -> pa.Array | None:
        return pc.utf8_trim_whitespace(picked.column(cols[key])) if key in cols else None

    def numbers(key: str, required: bool) -> list[Any]:
        text = column(key)
        if text is None:
            if required:
                raise _BadValue(key)
            return [None] * n
        ok = pc.match_substring_regex(text, _NUMBER)
        if not pc.all(pc.or_(ok, pc.equal(text, "")) if not required else ok).as_py():
            raise _BadValue(key)
        return [Decimal(v) if v else None for v in text.to_pylist()]

    def texts(key: str, required: bool) -> list[Any]:
        text = column(key)
        if text is None:
            return [""] * n
        if required and pc.any(pc.equal(text, "")).as_py():
            raise _BadValue(key)
        return list(text.to_pylist())

    try:
        days = [_DATES.get(v) or _day(v, "ChargePeriodStart") for v in picked.column(cols["day"]).to_pylist()]
        quantity, billed = numbers("quantity", True), numbers("billed", True)
        effective, listed, price = numbers("effective", False), numbers("list", False), numbers("unit_price", False)
        blocks = numbers("block_size", False)
        meter_id, meter_name = texts("meter_id", True), texts("meter_name", True)
        currency, charge, model = texts("currency", True), texts("charge_type", False), texts("pricing_model", False)
        units = [u or "Units" for u in texts("unit", False)]
        descriptions = texts("unit_description", False)
    except _BadValue:
        return None
    resources = picked.column(cols["resource_id"]).to_pylist()
    lines: list[BilledLine] = []
    export, run_id = manifest.export_name, manifest.run_id
    for i, row in enumerate(rows):
        account = _account(resources[i])
        if account is None:
            stats.openai_without_account += 1
            continue
        lines.append(BilledLine(
            days[i], account[0], account[1], meter_id[i], meter_name[i], units[i], quantity[i],
            blocks[i] or _unit_block(descriptions[i])[0], billed[i], effective[i], listed[i], price[i], currency[i],
            charge[i], model[i], export, run_id, file, base + row))
    return lines


def _openai_mask(batch: pa.RecordBatch, cols: dict[str, str]) -> pa.Array:
    """Azure OpenAI lines: meter category or subcategory "Azure OpenAI", or a product name starting with it.

    The meter category is the reliable mark (azure-telemetry.md §9); FOCUS `ServiceName` is "Azure AI Services" for
    every Cognitive Services account (finops-toolkit `src/open-data/Services.csv`), so it cannot tell OpenAI from
    Speech or Vision, and neither can the resource type.
    """
    mask: pa.Array | None = None
    for key, test in (("category", "equal"), ("subcategory", "equal"), ("product", "starts_with")):
        if key not in cols:
            continue
        column = batch.column(cols[key])
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = column.cast(pa.string())
        text = pc.utf8_lower(pc.utf8_trim_whitespace(column))
        hit = pc.equal(text, AZURE_OPENAI) if test == "equal" else pc.starts_with(text, AZURE_OPENAI)
        hit = pc.fill_null(hit, False)
        mask = hit if mask is None else pc.or_(mask, hit)
    assert mask is not None  # category is a required column
    return mask


class _BadValue(ValueError):
    pass


class _Row:
    __slots__ = ("index", "values")

    def __init__(self, values: dict[str, list[Any]], index: int) -> None:
        self.values, self.index = values, index

    def __call__(self, key: str) -> Any:
        column = self.values.get(key)
        return None if column is None else column[self.index]


def _focus_line(get: _Row, layout: _Layout, resource: re.Match[str], manifest: ExportManifest, file: str, line: int,
                stats: ReadStats) -> BilledLine:
    block = _decimal(get("block_size"), "x_PricingBlockSize") or _unit_block(str(get("unit_description") or ""))[0]
    quantity = _decimal(get("quantity"), "ConsumedQuantity")
    if quantity is None:
        # Purchases and some adjustments have no consumed quantity; PricingQuantity counts blocks (FOCUS spec).
        pricing = _decimal(get("pricing_quantity"), "PricingQuantity")
        if pricing is None:
            raise _BadValue("ConsumedQuantity and PricingQuantity are both empty")
        quantity = pricing * block
    return BilledLine(
        day=_day(get("day"), "ChargePeriodStart"), resource_id=resource.group(1).lower(),
        account=resource.group(2).lower(), meter_id=_text(get("meter_id"), "x_SkuMeterId"),
        meter_name=_text(get("meter_name"), "x_SkuMeterName"), unit=str(get("unit") or "").strip() or "Units",
        quantity=quantity, block_size=block, billed_cost=_required(get("billed"), "BilledCost"),
        effective_cost=_decimal(get("effective"), "EffectiveCost"), list_cost=_decimal(get("list"), "ListCost"),
        unit_price=_decimal(get("unit_price"), "ContractedUnitPrice"),
        currency=_text(get("currency"), "BillingCurrency"), charge_type=str(get("charge_type") or "").strip(),
        pricing_model=str(get("pricing_model") or "").strip(), export=manifest.export_name, run_id=manifest.run_id,
        file=file, line=line)


def _legacy_line(get: _Row, layout: _Layout, resource: re.Match[str], manifest: ExportManifest, file: str, line: int,
                 stats: ReadStats) -> BilledLine:
    unit_text = str(get("unit") or "")
    block, unit = _unit_block(unit_text)
    quantity = _required(get("quantity"), "Quantity")
    cost = _required(get("cost"), "CostInBillingCurrency")
    unit_price = _decimal(get("unit_price"), "UnitPrice")
    price = _decimal(get("effective_price"), "EffectivePrice") or unit_price
    counts_blocks = counts_blocks_of(quantity, block, cost, price)
    if counts_blocks is None:
        counts_blocks = layout.last_decision
        if counts_blocks is None:
            counts_blocks = True  # Azure's usual meaning: Quantity is in the UnitOfMeasure, as is the unit price
            stats.quantity_assumed_blocks += 1
    else:
        layout.last_decision = counts_blocks
    amortized = layout.dataset is Dataset.AMORTIZED
    pricing_model = str(get("pricing_model") or "").strip()
    charge_type = str(get("charge_type") or "").strip() or "Usage"
    # An amortized file only has the effective cost; usage covered by a commitment was billed 0 (FOCUS BilledCost).
    covered = pricing_model.replace(" ", "").lower() in ("reservation", "savingsplan") and charge_type == "Usage"
    return BilledLine(
        day=_day(get("day"), "Date"), resource_id=resource.group(1).lower(), account=resource.group(2).lower(),
        meter_id=_text(get("meter_id"), "MeterId"), meter_name=_text(get("meter_name"), "MeterName"), unit=unit,
        quantity=quantity * block if counts_blocks else quantity, block_size=block,
        billed_cost=(Decimal(0) if covered else cost) if amortized else cost,
        effective_cost=cost if amortized else None, list_cost=_decimal(get("list"), "PaygCostInBillingCurrency"),
        unit_price=unit_price, currency=_text(get("currency"), "BillingCurrencyCode"), charge_type=charge_type,
        pricing_model=pricing_model, export=manifest.export_name, run_id=manifest.run_id, file=file, line=line)


def counts_blocks_of(quantity: Decimal, block: Decimal, cost: Decimal, price: Decimal | None) -> bool | None:
    """Whether a legacy `Quantity` counts pricing blocks (True) or base units (False), from Cost / (price x Quantity).

    Sources disagree on what `Quantity` of a `1K` meter counts (azure-telemetry.md §9). The ratio is about 1 when it
    counts blocks and about 1/block when it counts tokens; the two are `block` apart, so rounding of the cost cannot
    confuse them. None when the line cannot tell (block 1, zero cost, price or quantity).
    """
    if block == 1:
        return True
    if price is None or not price or not cost or not quantity:
        return None
    ratio = cost / (price * quantity)
    if ratio <= 0:
        return None
    return bool(ratio * ratio * block > 1)  # nearer 1 than 1/block on a log scale


_UNIT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KkMm](?![A-Za-z]))?\s*(.*?)\s*$")


def _unit_block(text: str) -> tuple[Decimal, str]:
    """`1K` -> (1000, Units), `1M` -> (1000000, Units), `1 Hour` -> (1, Hours), `100 Hours` -> (100, Hours)."""
    found = _UNIT.match(text)
    if found is None:
        return Decimal(1), text.strip() or "Units"
    size = Decimal(found.group(1)) * {"k": 1000, "m": 1_000_000}.get((found.group(2) or "").lower(), 1)
    rest = found.group(3)
    if rest.lower() in ("hour", "hours"):
        rest = "Hours"
    return size, rest or "Units"


_DATES: dict[str, date] = {}


def _day(value: object, column: str) -> date:
    """ISO dates and times (FOCUS 1.0 `2024-01-01T00:00Z`, 1.0r2 with seconds) and legacy `MM/DD/YYYY`."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    cached = _DATES.get(text)
    if cached is not None:
        return cached
    try:
        if len(text) >= 10 and text[4] == "-" and text[7] == "-":
            parsed = date.fromisoformat(text[:10])
            if len(text) > 10 and text[10] not in "T ":
                raise ValueError(text)
        elif re.fullmatch(r"\d{1,2}/\d{1,2}/\d{4}( .*)?", text):
            month, day, year = text.split(" ", 1)[0].split("/")
            parsed = date(int(year), int(month), int(day))
        else:
            raise ValueError(text)
    except ValueError:
        raise _BadValue(f"{column} is not a date: {text!r}") from None
    if len(_DATES) < 10_000:
        _DATES[text] = parsed
    return parsed


def _decimal(value: object, column: str) -> Decimal | None:
    """Money and quantities exactly as written: CSV text goes straight to Decimal.

    Parquet decimals arrive as Decimal; doubles go through their shortest repr (`0.1` stays 0.1, not the binary
    0.1000000000000000055...), which is the number the writer printed.
    """
    if value is None:
        return None
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise _BadValue(f"{column} is not a number: {value!r}")
        result = Decimal(repr(value))
    elif isinstance(value, int):
        result = Decimal(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            result = Decimal(text)
        except InvalidOperation:
            raise _BadValue(f"{column} is not a number: {text!r}") from None
    if not result.is_finite():
        raise _BadValue(f"{column} is not a number: {value!r}")
    return result


def _required(value: object, column: str) -> Decimal:
    result = _decimal(value, column)
    if result is None:
        raise _BadValue(f"{column} is empty")
    return result


def _text(value: object, column: str) -> str:
    text = str(value or "").strip()
    if not text:
        raise _BadValue(f"{column} is empty")
    return text


# --- streams ------------------------------------------------------------------------------------------------------


def _decompressed(file: ExportFile) -> IO[bytes]:
    """The file's bytes, gunzipped when it starts with the gzip magic (names are not trusted for that)."""
    raw = io.BufferedReader(cast(Any, file.open()), buffer_size=1 << 20)
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return cast(IO[bytes], pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), "gzip"))
    return raw


class _Prefixed(io.RawIOBase):
    """Bytes already read (the header peek) followed by the rest of a stream."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head, self._rest = memoryview(head), rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        target = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(target), len(self._head))
            target[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(target))
        target[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._rest.close()
        super().close()
