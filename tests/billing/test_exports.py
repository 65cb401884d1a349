"""Reading Cost Management exports from a folder: formats, schemas, runs, the Azure OpenAI filter, located problems."""

from __future__ import annotations

import gzip
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from collector.billing.exports import BilledLine, ReadStats, counts_blocks_of, discover, read_lines
from collector.billing.folders import FolderSource
from collector.errors import InputError
from tests.billing.export_files import (
    Usage,
    account_ids,
    columns_for,
    csv_bytes,
    focus_rows,
    legacy_rows,
    usages,
    write_run,
)

JAN = [date(2025, 1, 1) + timedelta(days=i) for i in range(5)]
T0 = datetime(2025, 1, 6, 8, 0, tzinfo=UTC)


def _import(root: Path, stats: ReadStats | None = None) -> list[BilledLine]:
    return list(read_lines(discover(FolderSource(root).files()).runs, stats=stats))


def _truth(items: list[Usage]) -> dict[tuple[date, str, str], tuple[int, Decimal]]:
    return {(u.day, u.account_id.lower(), u.meter.meter_id): (u.quantity, u.cost) for u in items}


def _seen(lines: list[BilledLine]) -> dict[tuple[date, str, str], tuple[int, Decimal]]:
    out: dict[tuple[date, str, str], tuple[int, Decimal]] = {}
    for line in lines:
        key = (line.day, line.resource_id, line.meter_id)
        assert key not in out, f"{key} twice"
        out[key] = (int(line.quantity), line.billed_cost)
    return out


@pytest.mark.parametrize(("fmt", "version"), [("csv", "1.0"), ("csv.gz", "1.0r2"), ("parquet", "1.0"),
                                             ("csv", "1.2-preview")])
def test_focus_exports_give_each_openai_line_once_with_tokens_and_exact_cost(tmp_path: Path, fmt: str,
                                                                            version: str) -> None:
    items = usages(account_ids(4), JAN, meters_per_account=5)
    write_run(tmp_path, list(focus_rows(items, version, others=2)), version=version, start=JAN[0], end=JAN[-1],
              run_id="r1", submitted=T0, fmt=fmt, parts=3)
    stats = ReadStats()
    lines = _import(tmp_path, stats)
    assert _seen(lines) == _truth(items)
    assert stats.not_openai == 2 * len(items) and stats.lines == len(items)
    assert {line.account for line in lines} == {a.rsplit("/", 1)[-1].lower() for a in account_ids(4)}
    assert all(line.currency == "USD" and line.charge_type == "Usage" and line.export == "aoai-focus" for line in lines)


@pytest.mark.parametrize(("flavor", "amortized", "counts"), [("ea", False, "blocks"), ("ea", True, "tokens"),
                                                             ("mca", False, "tokens"), ("mca", True, "blocks")])
def test_legacy_exports_detect_whether_quantity_counts_blocks_or_tokens(tmp_path: Path, flavor: str, amortized: bool,
                                                                       counts: str) -> None:
    items = usages(account_ids(3), JAN, meters_per_account=4, seed=3)
    write_run(tmp_path, list(legacy_rows(items, flavor, amortized, counts)), export="legacy",
              dataset="AmortizedCost" if amortized else "ActualCost", version="2024-08-01", start=JAN[0],
              end=JAN[-1], run_id="r1", submitted=T0, fmt="csv.gz", flavor=flavor)
    lines = _import(tmp_path)
    assert _seen(lines) == _truth(items)
    assert all((line.effective_cost is not None) == amortized for line in lines)
    assert all(line.currency == "EUR" for line in lines)
    # Account ids come lower-cased from mixed-case legacy files, so they meet FOCUS ids.
    assert all(line.resource_id == line.resource_id.lower() for line in lines)


def test_quantity_rule_tells_blocks_from_tokens_and_abstains_when_it_cannot() -> None:
    k = Decimal(1000)
    assert counts_blocks_of(Decimal("12.5"), k, Decimal("0.03125"), Decimal("0.0025")) is True
    assert counts_blocks_of(Decimal(12500), k, Decimal("0.03125"), Decimal("0.0025")) is False
    assert counts_blocks_of(Decimal(12500), k, Decimal("0.03"), Decimal("0.0025")) is False  # rounded cost
    assert counts_blocks_of(Decimal(12500), k, Decimal(0), Decimal("0.0025")) is None
    assert counts_blocks_of(Decimal(24), Decimal(1), Decimal(24), Decimal(1)) is True


def test_the_newest_run_of_a_period_supersedes_older_ones(tmp_path: Path) -> None:
    accounts = account_ids(2)
    early = usages(accounts, JAN[:3], seed=1)
    late = usages(accounts, JAN, seed=2)
    write_run(tmp_path, list(focus_rows(early)), start=JAN[0], end=JAN[2], run_id="older", submitted=T0)
    write_run(tmp_path, list(focus_rows(late)), start=JAN[0], end=JAN[4], run_id="newer",
              submitted=T0 + timedelta(days=2))
    found = discover(FolderSource(tmp_path).files())
    assert [r.manifest.run_id for r in found.runs] == ["newer"]
    assert [m.run_id for m in found.superseded] == ["older"]
    lines = list(read_lines(found.runs))
    assert _seen(lines) == _truth(late)
    assert {line.run_id for line in lines} == {"newer"}


def test_importing_the_same_files_twice_gives_the_same_lines(tmp_path: Path) -> None:
    items = usages(account_ids(3), JAN)
    write_run(tmp_path, list(focus_rows(items)), start=JAN[0], end=JAN[-1], run_id="r1", submitted=T0, fmt="csv.gz")
    first, second = _import(tmp_path), _import(tmp_path)
    assert first == second and len(first) == len(items)


def test_only_azure_openai_lines_on_an_account_are_kept(tmp_path: Path) -> None:
    items = usages(account_ids(2), JAN[:1], meters_per_account=3)
    rows = list(focus_rows(items, others=3))
    # A Speech line on a Cognitive Services account, and an OpenAI reservation bought at billing scope (no account).
    rows.append({**rows[0], "x_SkuMeterCategory": "Cognitive Services", "x_SkuMeterSubcategory": "Speech",
                 "ChargeDescription": "Speech"})
    rows.append({**rows[0], "ResourceId": "", "ChargeCategory": "Purchase"})
    rows.append({**rows[0], "x_SkuMeterCategory": " AZURE OPENAI ", "x_SkuMeterId": "extra-meter"})
    write_run(tmp_path, rows, start=JAN[0], end=JAN[0], run_id="r1", submitted=T0)
    stats = ReadStats()
    lines = _import(tmp_path, stats)
    assert len(lines) == len(items) + 1 and "extra-meter" in {line.meter_id for line in lines}
    assert stats.openai_without_account == 1 and stats.not_openai == 3 * len(items) + 1


def test_column_names_and_resource_ids_match_in_any_case(tmp_path: Path) -> None:
    items = usages(account_ids(2), JAN[:2])
    rows = [{k.upper(): v for k, v in r.items()} for r in focus_rows(items)]
    run = write_run(tmp_path, rows, start=JAN[0], end=JAN[1], run_id="r1", submitted=T0, parts=1)
    part = next(run.parent.glob("part_*"))
    upper = [c.upper() for c in columns_for("FocusCost")]
    part.write_bytes(csv_bytes([{**r, "RESOURCEID": r["RESOURCEID"].upper()} for r in rows], upper))
    assert _seen(_import(tmp_path)) == _truth(items)


def test_bom_quoted_fields_spanning_lines_and_empty_parts_are_read(tmp_path: Path) -> None:
    items = usages(account_ids(2), JAN[:2])
    rows = [{**r, "Tags": '{"note":"line one\nline two, \"quoted\""}'} for r in focus_rows(items, others=0)]
    run = write_run(tmp_path, rows, start=JAN[0], end=JAN[1], run_id="r1", submitted=T0, parts=2)
    for part in run.parent.glob("part_0_*"):
        part.write_bytes(csv_bytes(rows[: len(rows) // 2 + 1], columns_for("FocusCost"), bom=True))
    for part in run.parent.glob("part_1_*"):
        part.write_bytes(csv_bytes(rows[len(rows) // 2 + 1:], columns_for("FocusCost")))
    (run.parent / "empty.csv").write_bytes(b"")
    lines = _import(tmp_path)
    assert _seen(lines) == _truth(items)


def _bad_export(tmp_path: Path, mutate: dict[int, dict[str, str]], gz: bool = False) -> Path:
    items = usages(account_ids(2), JAN[:2], meters_per_account=3)
    rows = list(focus_rows(items, others=0))
    rows[0] = {**rows[0], "Tags": '{"a":"b\nc"}'}  # a quoted field spanning two lines before the bad ones
    for index, change in mutate.items():
        rows[index] = {**rows[index], **change}
    run = write_run(tmp_path, rows, start=JAN[0], end=JAN[1], run_id="r1", submitted=T0, parts=1,
                    fmt="csv.gz" if gz else "csv")
    return next(run.parent.glob("part_*"))


@pytest.mark.parametrize("gz", [False, True])
def test_bad_lines_are_named_by_file_and_physical_line_and_nothing_is_yielded_after(tmp_path: Path, gz: bool) -> None:
    part = _bad_export(tmp_path, {3: {"BilledCost": "12,5"}, 5: {"ChargePeriodStart": "yesterday"},
                                  6: {"x_SkuMeterId": ""}}, gz)
    got: list[BilledLine] = []
    with pytest.raises(InputError) as caught:
        got.extend(read_lines(discover(FolderSource(tmp_path).files()).runs))
    problems = caught.value.problems
    # Header on line 1, row 0 on lines 2-3 (its Tags span two lines), so row i starts on line i + 3.
    assert [(p.path, p.line) for p in problems] == [(part, 6), (part, 8), (part, 9)]
    assert "BilledCost is not a number: '12,5'" in problems[0].message
    assert "ChargePeriodStart is not a date" in problems[1].message and "x_SkuMeterId is empty" in problems[2].message
    assert len(got) == 3  # the lines before the first problem; the caller rolls back its transaction
    assert f"{part}:6" in str(caught.value)


def test_problems_stop_at_the_limit(tmp_path: Path) -> None:
    _bad_export(tmp_path, {i: {"BilledCost": "n/a"} for i in range(1, 12)})
    with pytest.raises(InputError) as caught:
        list(read_lines(discover(FolderSource(tmp_path).files()).runs, max_problems=4))
    assert len(caught.value.problems) == 4 and "stopped after 4" in str(caught.value)


def test_a_row_with_too_few_fields_is_located(tmp_path: Path) -> None:
    part = _bad_export(tmp_path, {})
    lines = part.read_bytes().split(b"\n")
    lines[5] = b"only,three,fields"
    part.write_bytes(b"\n".join(lines))
    with pytest.raises(InputError) as caught:
        _import(tmp_path)
    assert [(p.path, p.line) for p in caught.value.problems] == [(part, 6)]
    assert "has 3 field(s)" in caught.value.problems[0].message


def test_a_file_without_the_needed_columns_is_named_with_what_is_missing(tmp_path: Path) -> None:
    run = write_run(tmp_path, list(focus_rows(usages(account_ids(1), JAN[:1]))), start=JAN[0], end=JAN[0],
                    run_id="r1", submitted=T0, parts=1)
    part = next(run.parent.glob("part_*"))
    part.write_bytes(b"ChargePeriodStart,BilledCost,ResourceId\n2025-01-01T00:00Z,1,/x\n")
    with pytest.raises(InputError) as caught:
        _import(tmp_path)
    (problem,) = caught.value.problems
    assert problem.path == part and problem.line == 1 and "x_skumeterid" in problem.message


def test_a_folder_without_manifest_or_with_a_missing_part_is_refused(tmp_path: Path) -> None:
    (tmp_path / "loose.csv").write_bytes(gzip.compress(b"a,b\n1,2\n"))
    with pytest.raises(InputError, match=r"no manifest\.json"):
        discover(FolderSource(tmp_path).files())
    run = write_run(tmp_path, list(focus_rows(usages(account_ids(1), JAN[:1]))), start=JAN[0], end=JAN[0],
                    run_id="r1", submitted=T0, parts=2)
    next(run.parent.glob("part_1_*")).unlink()
    with pytest.raises(InputError) as caught:
        discover(FolderSource(tmp_path).files())
    assert caught.value.problems[0].path == run and "part_1_0001.csv" in caught.value.problems[0].message


def test_a_broken_manifest_is_located(tmp_path: Path) -> None:
    run = write_run(tmp_path, [], start=JAN[0], end=JAN[0], run_id="r1", submitted=T0, parts=1)
    run.write_text('{"exportConfig": {"exportName": "x"}, "runInfo": {"startDate": "soon"}, "blobs": []}')
    with pytest.raises(InputError) as caught:
        discover(FolderSource(tmp_path).files())
    assert [p.path for p in caught.value.problems] == [run]
    assert "runInfo.startDate is not a date" in caught.value.problems[0].message


def test_sums_per_account_meter_and_day_match_the_truth_across_runs_and_formats(tmp_path: Path) -> None:
    accounts = account_ids(3)
    jan, feb = usages(accounts, JAN, seed=5), usages(accounts, [date(2025, 2, 1)], seed=6)
    write_run(tmp_path, list(focus_rows(jan)), start=JAN[0], end=JAN[-1], run_id="jan", submitted=T0, fmt="parquet")
    write_run(tmp_path, list(focus_rows(feb)), start=date(2025, 2, 1), end=date(2025, 2, 1), run_id="feb",
              submitted=T0 + timedelta(days=30), fmt="csv.gz")
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for line in _import(tmp_path):
        totals[line.account] += line.billed_cost
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for u in jan + feb:
        expected[u.account_id.rsplit("/", 1)[-1].lower()] += u.cost
    assert totals == expected
