"""Metrics API queries per collection cycle, for the demo organisation and one with ten times the deployments.

    python -m benchmarks.queries_per_cycle [--hours 3]

Generates demo traffic (7 deployments over 2 accounts), then a copy with 63 more deployments on each account
(70 in all), and runs one scheduled collection cycle of the platform-metrics job through MetricsSource (the real
azure-mgmt-monitor client) against the HTTPS Metrics API emulator of each. It prints the requests the emulator saw:
they depend on accounts x splits x windows, not on deployments.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from azure.core.credentials import AccessToken

from collector.collection.metrics import MetricsSource, plan_calls
from collector.collection.run import Timing, collect_once
from collector.config import MetricsSourceSettings
from collector.rollups.specs import PLATFORM_METRICS
from collector.store.database import Store
from collector.workspace.demo import DEMO_ORG
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from tests.emulators.metrics_api import MetricsEmulator, add_deployments

END = datetime(2026, 1, 7, tzinfo=UTC)
TIMING = Timing(grain=timedelta(minutes=5), lag=timedelta(minutes=10), lookback=timedelta(hours=1),
                max_window=timedelta(hours=1))


class _Token:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("benchmark", int(time.time()) + 3600)


def _cycle(workspace: Path, directory: Path, label: str) -> tuple[int, int, int]:
    """(requests, deployments seen, rows stored) for one collection cycle."""
    with MetricsEmulator(workspace, directory) as emulator:
        settings = MetricsSourceSettings(
            name="azure-metrics", kind="metrics", accounts=[a.resource_id for a in DEMO_ORG.accounts],
            endpoint=emulator.endpoint, audience="https://management.azure.com", ca_bundle=emulator.ca_bundle)
        source = MetricsSource(settings, _Token())
        store = Store.open(f"sqlite:///{directory / f'{label}.sqlite'}")
        summary = collect_once(store, [source], [PLATFORM_METRICS], TIMING, END + TIMING.lag)
        source.close()
        if not summary.ok:
            raise SystemExit(summary.line())
        rows = store.read(PLATFORM_METRICS)
        store.close()
        return len(emulator.metric_requests()), len({r["deployment"] for r in rows}), len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=int, default=3, help="hours of demo traffic to generate (default 3)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        demo = directory / "demo.duckdb"
        workspace = Workspace(demo)
        workspace.create()
        generate(workspace, start=END - timedelta(hours=args.hours), end=END, seed=1)
        workspace.close()
        large = directory / "large.duckdb"
        shutil.copy(demo, large)
        add_deployments(Workspace(large), 63, END - TIMING.lookback, END)

        windows = TIMING.lookback // TIMING.max_window
        per_window = len(DEMO_ORG.accounts) * len(plan_calls())
        print(f"one cycle: {windows} window(s) x {len(DEMO_ORG.accounts)} account(s) x {len(plan_calls())} "
              f"call(s) per account = {windows * per_window} expected")
        print(f"{'deployments':>11}  {'queries/cycle':>13}  {'rows stored':>11}")
        for label, path in (("demo", demo), ("large", large)):
            queries, deployments, rows = _cycle(path, directory, label)
            print(f"{deployments:>11}  {queries:>13}  {rows:>11}")


if __name__ == "__main__":
    main()
