"""Backfill throughput and memory: the collector against a plain DuckDB GROUP BY over the same raw rows.

    python -m benchmarks.backfill [--days 7] [--runs 3] [--memory-days 3,12]

Generates N days of demo traffic, backfills every job into a fresh SQLite store, and times a hand-written DuckDB
GROUP BY that computes the same aggregates straight from the raw tables (the baseline); each side runs `--runs`
times, interleaved, and the best run of each is compared. Then it runs the backfill in child processes for two
different numbers of days and prints each one's peak RSS: flat memory means the second is not larger in proportion
to its days.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from collector.collection.run import Timing, backfill
from collector.rollups.specs import ROLLUPS
from collector.store.database import Store
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.source import WorkspaceSource

TIMING = Timing(grain=timedelta(minutes=5), lag=timedelta(minutes=10), lookback=timedelta(hours=1),
                max_window=timedelta(days=1))
END = datetime(2026, 1, 1, tzinfo=UTC)

# The same aggregates the five queries and the metrics job compute, written directly in DuckDB SQL.
BASELINE = [
    """SELECT time_bucket(INTERVAL 5 MINUTE, "TimeGenerated") AS b, "Resource",
              json_extract_string(properties_s, '$.modelDeploymentName') AS d, count(*),
              count(*) FILTER (WHERE "ResultSignature" LIKE '2%'), count(*) FILTER (WHERE "ResultSignature" = '429'),
              sum("DurationMs")
       FROM ws."AzureDiagnostics" WHERE "Category" = 'RequestResponse' GROUP BY ALL""",
    """SELECT time_bucket(INTERVAL 5 MINUTE, "TimeGenerated") AS b, "Resource",
              json_extract_string(properties_s, '$.modelDeploymentName') AS d,
              floor(log2(greatest("DurationMs", 1)) * 4)::INT AS h, count(*), sum("DurationMs")
       FROM ws."AzureDiagnostics" WHERE "Category" = 'RequestResponse' AND "ResultSignature" LIKE '2%' GROUP BY ALL""",
    """SELECT time_bucket(INTERVAL 5 MINUTE, "TimeGenerated") AS b, "Resource",
              json_extract_string(properties_s, '$.modelDeploymentName') AS d,
              json_extract_string(properties_s, '$.objectId') AS c, count(*),
              sum(json_extract(properties_s, '$.requestLength')::BIGINT),
              sum(json_extract(properties_s, '$.responseLength')::BIGINT)
       FROM ws."AzureDiagnostics" WHERE "Category" = 'RequestResponse' GROUP BY ALL""",
    """SELECT time_bucket(INTERVAL 5 MINUTE, l."TimeGenerated") AS b, g."ApimSubscriptionId", l."DeploymentName",
              l."ModelName", count(*), sum(l."PromptTokens"), sum(l."CompletionTokens"), sum(l."TotalTokens")
       FROM ws."ApiManagementGatewayLlmLog" l LEFT JOIN ws."ApiManagementGatewayLogs" g USING ("CorrelationId")
       WHERE l."DeploymentName" <> '' GROUP BY ALL""",
    """SELECT time_bucket(INTERVAL 5 MINUTE, u."TimeGenerated") AS b, u."Resource",
              json_extract_string(r.properties_s, '$.modelDeploymentName') AS d, count(*),
              sum(coalesce(json_extract(u.properties_s, '$.promptTokens[0]'),
                           json_extract(u.properties_s, '$.promptTokens'))::BIGINT),
              sum(coalesce(json_extract(u.properties_s, '$.generatedTokens[0]'),
                           json_extract(u.properties_s, '$.completionTokens'))::BIGINT)
       FROM ws."AzureDiagnostics" u
            LEFT JOIN (SELECT * FROM ws."AzureDiagnostics" WHERE "Category" = 'RequestResponse') r
            USING ("CorrelationId")
       WHERE u."Category" = 'AzureOpenAIRequestUsage' GROUP BY ALL""",
    """SELECT time_bucket(INTERVAL 5 MINUTE, "TimeGenerated") AS b, "ResourceId", "MetricName",
              json_extract_string("Dimensions", '$.ModelDeploymentName'), sum("Total"), sum("Count"),
              min("Minimum"), max("Maximum")
       FROM ws."_PlatformMetrics" GROUP BY ALL""",
]


def raw_rows(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = ["AzureDiagnostics", "ApiManagementGatewayLlmLog", "ApiManagementGatewayLogs", "_PlatformMetrics"]
        return sum(int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in tables)  # type: ignore[index]
    finally:
        con.close()


def baseline_seconds(path: Path) -> float:
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.execute(f"ATTACH '{path}' AS ws (READ_ONLY)")
    started = time.perf_counter()
    for sql in BASELINE:
        con.execute(sql).fetchall()
    elapsed = time.perf_counter() - started
    con.close()
    return elapsed


def run_backfill(workspace: Path, store_path: Path, days: int) -> tuple[float, int]:
    store = Store.open(f"sqlite:///{store_path}")
    source = WorkspaceSource("bench", workspace)
    started = time.perf_counter()
    summary = backfill(store, [source], ROLLUPS, TIMING, END - timedelta(days=days), END, END + timedelta(hours=1))
    elapsed = time.perf_counter() - started
    if not summary.ok:
        raise SystemExit(f"backfill failed: {summary.line()}")
    return elapsed, sum(o.rows for o in summary.outcomes)


def make_workspace(folder: Path, days: int) -> Path:
    path = folder / f"ws-{days}.duckdb"
    workspace = Workspace(path)
    workspace.create()
    generate(workspace, start=END - timedelta(days=days), end=END, seed=7)
    return path


def child(workspace: Path, days: int) -> None:
    """Run in a fresh process: backfill an existing workspace and report the peak resident memory."""
    with tempfile.TemporaryDirectory() as tmp:
        elapsed, rows = run_backfill(workspace, Path(tmp) / "store.sqlite", days)
        peak = peak_rss_kib()
    print(json.dumps({"days": days, "seconds": elapsed, "rows": rows, "peak_kib": peak}))


def peak_rss_kib() -> int:
    """This process's peak resident memory. Not getrusage's ru_maxrss: that survives exec, so a child started by a
    large parent reports the parent's peak; /proc's VmHWM belongs to the new address space."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _runs(seconds: list[float]) -> str:
    return " ".join(f"{s:.2f}" for s in seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--memory-days", default="3,12", help="two day counts for the peak-memory comparison")
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each side; the best of each is compared")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.days)
        return

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        path = make_workspace(folder, args.days)
        generated = time.perf_counter() - started
        rows = raw_rows(path)
        # Both sides measured alike on a shared machine: runs interleaved, the best of each counted. The collector's
        # first run also translates the KQL files (once per process), so it is printed apart.
        base_runs: list[float] = []
        collector_runs: list[float] = []
        for run in range(args.runs):
            base_runs.append(baseline_seconds(path))
            elapsed, rollup_rows = run_backfill(path, folder / f"store-{run}.sqlite", args.days)
            collector_runs.append(elapsed)
        base, collector = min(base_runs), min(collector_runs)
        peaks = []
        for days in (int(d) for d in args.memory_days.split(",")):
            workspace = make_workspace(folder, days)
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.backfill", "--child", str(workspace), "--days", str(days)],
                check=True, capture_output=True, text=True,
            ).stdout
            peaks.append(json.loads(out.strip().splitlines()[-1]))
    print(f"demo traffic: {args.days} days, {rows:,} raw rows, generated in {generated:.1f} s")
    print(f"baseline  (plain DuckDB GROUP BY, same aggregates): {base:8.2f} s  {rows / base:12,.0f} raw rows/s"
          f"  (best of {len(base_runs)}: {_runs(base_runs)})")
    print(f"collector (KQL -> rollups -> SQLite, four tiers):   {collector:8.2f} s  "
          f"{rows / collector:12,.0f} raw rows/s  ({rollup_rows:,} rollup rows; best of {len(collector_runs)}: "
          f"{_runs(collector_runs)}, the first translating the queries)")
    ratio = collector / base
    print(f"ratio collector/baseline: {ratio:.2f}x  (target <= 3x: {'met' if ratio <= 3 else 'NOT met'})")

    for p in peaks:
        print(f"peak RSS backfilling {p['days']:3d} days: {p['peak_kib'] / 1024:8.1f} MiB "
              f"({p['rows']:,} rollup rows in {p['seconds']:.1f} s)")
    growth = peaks[-1]["peak_kib"] / peaks[0]["peak_kib"]
    day_ratio = peaks[-1]["days"] / peaks[0]["days"]
    print(f"memory ratio {growth:.2f}x for {day_ratio:.1f}x the days (flat means close to 1.0x)")


if __name__ == "__main__":
    main()
