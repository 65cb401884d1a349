"""Bill import throughput and memory: `aoai-obs bill import` (and its reader alone) against plain pyarrow reading the
same CSV-gzip files.

    python -m benchmarks.bill_import [--accounts 60] [--meters 10] [--months 12] [--runs 3] [--memory-months 6,12]

Generates a daily FOCUS 1.0 export (one newest run per month, CSV gzip in 4 parts, as many other services' lines as
Azure OpenAI lines) for 300 deployments on 60 accounts (about 10 meter lines per account and day: input, cached input
and output of each model family deployed). Times the whole import into a new SQLite store (`import_bill`: discovery,
reading, meter mapping, summing per day, account and meter, writing) and `read_lines` alone, against
`pyarrow.csv.read_csv` of the same files plus a vectorised count of the Azure OpenAI rows (the baseline); each side
runs `--runs` times, interleaved, best of each compared. Then imports two export sizes in child processes and prints
each peak RSS: flat memory means the larger export does not need more.
"""

from __future__ import annotations

import argparse
import calendar
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.csv as pacsv

from collector.billing.exports import ReadStats, discover, read_lines
from collector.billing.folders import FolderSource
from collector.cost.bill_import import import_bill
from collector.store.database import Store
from tests.billing.export_files import account_ids, focus_rows, usages, write_run


def generate(root: Path, months: int, accounts: int, meters: int) -> int:
    ids = account_ids(accounts)
    rows = 0
    for m in range(months):
        start = date(2025, 1 + m, 1)
        days = [start + timedelta(days=d) for d in range(calendar.monthrange(start.year, start.month)[1])]
        month_rows = list(focus_rows(usages(ids, days, meters_per_account=meters, seed=m), "1.0", others=1))
        write_run(root, month_rows, start=days[0], end=days[-1], run_id=f"run-{start:%Y%m}",
                  submitted=datetime(start.year, start.month, 28, tzinfo=UTC), fmt="csv.gz", parts=4)
        rows += len(month_rows)
    return rows


def ours(root: Path) -> tuple[float, int]:
    begin = time.perf_counter()
    stats = ReadStats()
    count = sum(1 for _ in read_lines(discover(FolderSource(root).files()).runs, stats=stats))
    return time.perf_counter() - begin, count


def imported(root: Path, store_path: Path) -> tuple[float, int]:
    """The whole import into a new SQLite store; returns the time and the Azure OpenAI lines read."""
    store_path.unlink(missing_ok=True)
    store = Store.open(f"sqlite:///{store_path}")
    try:
        begin = time.perf_counter()
        summary = import_bill(store, FolderSource(root).files(), str(root), datetime.now(UTC))
        return time.perf_counter() - begin, summary.stats.lines
    finally:
        store.close()


def baseline(root: Path) -> tuple[float, int]:
    begin = time.perf_counter()
    count = 0
    for part in sorted(root.rglob("*.csv.gz")):
        table = pacsv.read_csv(part)
        count += int(pc.sum(pc.equal(table.column("x_SkuMeterCategory"), "Azure OpenAI")).as_py() or 0)
    return time.perf_counter() - begin, count


def child(root: Path) -> None:
    _, count = imported(root, root.parent / f"{root.name}.sqlite")
    print(f"{count} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=60)
    parser.add_argument("--meters", type=int, default=10)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--memory-months", default="6,12")
    parser.add_argument("--child", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / f"m{args.months}"
        rows = generate(root, args.months, args.accounts, args.meters)
        size = sum(p.stat().st_size for p in root.rglob("*.csv.gz"))
        print(f"export: {args.months} months, {rows} rows, {size / 1e6:.1f} MB gzip")
        best_import, best_ours, best_base = float("inf"), float("inf"), float("inf")
        for _ in range(args.runs):
            t, n_import = imported(root, Path(tmp) / "store.sqlite")
            best_import = min(best_import, t)
            t, n_ours = ours(root)
            best_ours = min(best_ours, t)
            t, n_base = baseline(root)
            best_base = min(best_base, t)
        assert n_ours == n_base == n_import, (n_ours, n_base, n_import)
        print(f"import:   {best_import:.2f} s for {n_import} Azure OpenAI lines into SQLite "
              f"({rows / best_import:,.0f} rows/s)")
        print(f"reader:   {best_ours:.2f} s ({rows / best_ours:,.0f} rows/s)")
        print(f"baseline: {best_base:.2f} s (pyarrow read_csv of every column + a vectorised filter)")
        print(f"speed ratio import/baseline: {best_base / best_import:.2f} (target >= 0.33); "
              f"reader/baseline: {best_base / best_ours:.2f}")
        for months in [int(m) for m in args.memory_months.split(",")]:
            folder = Path(tmp) / f"mem{months}"
            generate(folder, months, args.accounts, args.meters)
            out = subprocess.run([sys.executable, "-m", "benchmarks.bill_import", "--child", str(folder)],
                                 check=True, capture_output=True, text=True).stdout.split()
            print(f"peak RSS importing {months} months: {out[1]} MB ({out[0]} lines)")


if __name__ == "__main__":
    main()
