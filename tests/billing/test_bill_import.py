"""`aoai-obs bill import`: export runs into the store (SQLite and PostgreSQL), re-runs replacing their period, the
same files twice changing nothing, a bad line leaving the store as it was; from a folder and from Azurite."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.billing.folders import FolderSource
from collector.cli.main import main
from collector.cost.bill_import import import_bill, period_days
from collector.errors import InputError
from collector.store import bills
from collector.store.database import Store
from tests.billing.azurite import container_url, upload_folder
from tests.billing.export_files import Usage, account_ids, focus_rows, legacy_rows, usages, write_run

DAYS = [date(2025, 3, 1) + timedelta(days=i) for i in range(5)]
NOW = datetime(2025, 3, 7, 8, 0, tzinfo=UTC)
MARCH = (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))


def _truth(items: list[Usage]) -> dict[tuple[datetime, str, str], tuple[Decimal, Decimal]]:
    """Cost and quantity per (day, account, meter name), summed from what the export was made of."""
    sums: dict[tuple[datetime, str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for u in items:
        key = (datetime(u.day.year, u.day.month, u.day.day, tzinfo=UTC), u.account_id.rsplit("/", 1)[-1].lower(),
               u.meter.name)
        sums[key][0] += u.cost
        sums[key][1] += u.quantity
    return {k: (v[0], v[1]) for k, v in sums.items()}


def _stored(store: Store) -> dict[tuple[datetime, str, str], tuple[Decimal, Decimal]]:
    sums: dict[tuple[datetime, str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for row in bills.read_lines(store, *MARCH):
        key = (row["day"], row["account"], row["meter_name"])
        sums[key][0] += Decimal(row["billed_cost"])
        sums[key][1] += Decimal(row["quantity"])
    return {k: (v[0], v[1]) for k, v in sums.items()}


def _run(root: Path, items: list[Usage], run_id: str, submitted: datetime, **kwargs: object) -> None:
    write_run(root, list(focus_rows(items)), start=date(2025, 3, 1), end=date(2025, 3, 31), run_id=run_id,
              submitted=submitted, **kwargs)  # type: ignore[arg-type]


def test_an_export_is_stored_exactly_and_a_second_import_changes_nothing(store: Store, tmp_path: Path) -> None:
    items = usages(account_ids(4), DAYS, meters_per_account=5)
    _run(tmp_path, items, "run-1", NOW - timedelta(days=1), fmt="csv.gz")
    first = import_bill(store, FolderSource(tmp_path).files(), str(tmp_path), NOW)
    assert [r.run_id for r in first.runs_imported] == ["run-1"]
    assert _stored(store) == _truth(items)
    dump = sorted(map(repr, bills.read_lines(store, *MARCH)))
    again = import_bill(store, FolderSource(tmp_path).files(), str(tmp_path), NOW + timedelta(hours=1))
    assert (again.runs_imported, again.runs_unchanged) == ([], 1)
    assert sorted(map(repr, bills.read_lines(store, *MARCH))) == dump
    assert [(r.run_id, r.first_day, r.last_day) for r in bills.bill_runs(store)] == [
        ("run-1", datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 31, tzinfo=UTC))]


def test_a_rerun_of_the_period_replaces_the_old_run_without_double_counting(store: Store, tmp_path: Path) -> None:
    accounts = account_ids(3)
    old = usages(accounts, DAYS[:3], seed=1)
    new = usages(accounts, DAYS, seed=2)  # the month-to-date run of a later day: more days, other figures
    _run(tmp_path / "a", old, "run-1", NOW - timedelta(days=2))
    import_bill(store, FolderSource(tmp_path / "a").files(), "a", NOW)
    _run(tmp_path / "b", new, "run-2", NOW - timedelta(days=1))
    summary = import_bill(store, FolderSource(tmp_path / "b").files(), "b", NOW)
    assert [r.run_id for r in summary.runs_imported] == ["run-2"]
    assert _stored(store) == _truth(new)
    assert [r.run_id for r in bills.bill_runs(store)] == ["run-2"]


def test_an_older_run_imported_after_a_newer_one_changes_nothing(store: Store, tmp_path: Path) -> None:
    accounts = account_ids(2)
    newer = usages(accounts, DAYS, seed=6)
    _run(tmp_path / "new", newer, "run-new", NOW - timedelta(days=1))
    import_bill(store, FolderSource(tmp_path / "new").files(), "new", NOW)
    _run(tmp_path / "old", usages(accounts, DAYS[:2], seed=5), "run-old", NOW - timedelta(days=4))
    summary = import_bill(store, FolderSource(tmp_path / "old").files(), "old", NOW)
    assert (summary.runs_imported, summary.runs_unchanged) == ([], 1)
    assert _stored(store) == _truth(newer)
    assert [r.run_id for r in bills.bill_runs(store)] == ["run-new"]


def test_the_newest_of_two_runs_in_one_source_wins(store: Store, tmp_path: Path) -> None:
    accounts = account_ids(2)
    newer = usages(accounts, DAYS, seed=4)
    _run(tmp_path, usages(accounts, DAYS, seed=3), "run-old", NOW - timedelta(days=3))
    _run(tmp_path, newer, "run-new", NOW - timedelta(days=1))
    summary = import_bill(store, FolderSource(tmp_path).files(), "x", NOW)
    assert summary.superseded == 1
    assert _stored(store) == _truth(newer)


def test_a_bad_line_imports_nothing_and_keeps_what_was_there(store: Store, tmp_path: Path) -> None:
    items = usages(account_ids(2), DAYS)
    _run(tmp_path / "good", items, "run-1", NOW - timedelta(days=2))
    import_bill(store, FolderSource(tmp_path / "good").files(), "good", NOW)
    rows = list(focus_rows(usages(account_ids(2), DAYS, seed=9)))
    openai = [i for i, r in enumerate(rows) if r.get("x_SkuMeterCategory", "").lower() == "azure openai"]
    rows[openai[len(openai) // 2]]["BilledCost"] = "12,5"
    write_run(tmp_path / "bad", rows, start=date(2025, 3, 1), end=date(2025, 3, 31), run_id="run-2",
              submitted=NOW - timedelta(days=1), parts=1)
    with pytest.raises(InputError) as raised:
        import_bill(store, FolderSource(tmp_path / "bad").files(), "bad", NOW)
    assert "BilledCost is not a number: '12,5'" in str(raised.value)
    assert raised.value.problems[0].line is not None
    assert _stored(store) == _truth(items)
    assert [r.run_id for r in bills.bill_runs(store)] == ["run-1"]


def test_legacy_exports_are_stored_with_their_meters_read(store: Store, tmp_path: Path) -> None:
    items = usages(account_ids(2), DAYS, meters_per_account=12)
    write_run(tmp_path, list(legacy_rows(items, flavor="mca")), dataset="ActualCost", version="2023-12-01-preview",
              start=date(2025, 3, 1), end=date(2025, 3, 31), run_id="run-1", submitted=NOW, flavor="mca")
    summary = import_bill(store, FolderSource(tmp_path).files(), "x", NOW)
    assert _stored(store) == _truth(items)
    stored = bills.read_lines(store, *MARCH)
    read = {r["meter_name"]: (r["model"], r["deployment_type"], r["kind"]) for r in stored}
    assert read["gpt 4o 1120 cached Inp glbl Tokens"] == ("gpt-4o", "GlobalStandard", "cached_input")
    assert read["Provisioned Managed Global Unit"] == ("*", "GlobalProvisioned", "ptu_hour")
    # a meter the mapping cannot read is stored and listed, never dropped
    assert all(read[name] == ("", "", "") for name in summary.unmapped)
    assert set(summary.unmapped) <= set(read)


@pytest.mark.parametrize(("start", "end", "days"), [
    (date(2025, 3, 1), date(2025, 3, 31), (date(2025, 3, 1), date(2025, 3, 31))),
    (date(2025, 3, 1), date(2025, 4, 1), (date(2025, 3, 1), date(2025, 3, 31))),
    (date(2025, 3, 1), date(2025, 3, 6), (date(2025, 3, 1), date(2025, 3, 6))),
    (date(2025, 3, 1), None, (date(2025, 3, 1), date(2025, 3, 1))),
])
def test_the_days_a_run_covers(start: date, end: date | None, days: tuple[date, date]) -> None:
    assert period_days(start, end) == days


def _settings(tmp_path: Path) -> Path:
    path = tmp_path / "aoai-obs.yaml"
    path.write_text("store:\n  url: sqlite:///store.sqlite\n", encoding="utf-8")
    return path


def test_the_command_imports_a_folder_and_lists_its_runs(tmp_path: Path) -> None:
    items = usages(account_ids(2), DAYS)
    _run(tmp_path / "exports", items, "run-1", NOW)
    config = _settings(tmp_path)
    result = CliRunner().invoke(main, ["--config", str(config), "bill", "import", str(tmp_path / "exports")],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "2025-03-01..2025-03-31\trun run-1" in result.stdout
    assert "1 run(s) imported" in result.stderr
    listed = CliRunner().invoke(main, ["--config", str(config), "bill", "runs"], catch_exceptions=False)
    assert "aoai-focus\tFocusCost 1.0\t2025-03-01..2025-03-31" in listed.stdout
    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    try:
        assert _stored(store) == _truth(items)
    finally:
        store.close()


def test_the_command_refuses_a_source_that_is_not_there(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(_settings(tmp_path)), "bill", "import", str(tmp_path / "no")])
    assert result.exit_code == 2
    assert "neither a folder nor a blob container URL" in result.stderr


def test_a_connection_string_in_the_settings_file_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "aoai-obs.yaml"
    config.write_text("bill:\n  connection_string: DefaultEndpointsProtocol=https;AccountKey=c2VjcmV0\n")
    result = CliRunner().invoke(main, ["--config", str(config), "bill", "runs"])
    assert result.exit_code == 2
    assert f"{config}:2: bill.connection_string is a credential" in result.stderr
    assert "c2VjcmV0" not in result.stderr


def test_the_command_imports_a_blob_container(azurite: str, tmp_path: Path) -> None:
    items = usages(account_ids(3), DAYS)
    _run(tmp_path / "exports", items, "run-1", NOW, fmt="parquet")
    upload_folder(azurite, "costexports", tmp_path / "exports")
    config = _settings(tmp_path)
    url = container_url(azurite, "costexports")
    result = CliRunner().invoke(main, ["--config", str(config), "bill", "import", url],
                                env={"AOAI_OBS_BILL__CONNECTION_STRING": azurite}, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    store = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    try:
        assert _stored(store) == _truth(items)
    finally:
        store.close()
