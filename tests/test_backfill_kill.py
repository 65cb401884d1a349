"""A collector killed with SIGKILL in the middle of a backfill, then restarted, ends with exactly the rollups of an
uninterrupted run: every window commits its rollups and watermark together, and re-collecting replaces."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.collection.run import Timing, backfill
from collector.rollups.specs import ROLLUPS
from collector.store.database import Store
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.source import WorkspaceSource

START = datetime(2025, 6, 2, tzinfo=UTC)
END = START + timedelta(days=1)
CLI = [sys.executable, "-m", "collector.cli.main"]


def write_config(folder: Path, store_name: str) -> Path:
    config = folder / f"{store_name}.yaml"
    config.write_text(
        "sources:\n  - name: demo\n    kind: workspace\n    path: ws.duckdb\n"
        f"store:\n  url: sqlite:///{store_name}.sqlite\n"
        "collector:\n  max_window: 1h\n",
        encoding="utf-8",
    )
    return config


def backfill_command(config: Path) -> list[str]:
    return [*CLI, "--config", str(config), "collect", "backfill", "--since", START.isoformat(),
            "--until", END.isoformat()]


def committed_rows(store_file: Path) -> int:
    if not store_file.exists():
        return 0
    try:
        with sqlite3.connect(store_file, timeout=1) as con:
            return int(con.execute("SELECT count(*) FROM requests_5m").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0


@pytest.mark.slow
def test_sigkill_mid_backfill_then_restart_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path / "ws.duckdb")
    workspace.create()
    generate(workspace, start=START, end=END, seed=11)
    config = write_config(tmp_path, "killed")

    process = subprocess.Popen(backfill_command(config), cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while committed_rows(tmp_path / "killed.sqlite") < 300 and process.poll() is None:
        assert time.monotonic() < deadline, "the backfill never got going"
        time.sleep(0.02)
    assert process.poll() is None, "the backfill finished before it could be killed; make it longer"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()

    killed = Store.open(f"sqlite:///{tmp_path / 'killed.sqlite'}")
    partial = killed.watermark("demo", "requests_by_status")
    assert partial is None or partial < END, "the kill came too late to prove anything"

    restarted = subprocess.run(backfill_command(config), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert restarted.returncode == 0, restarted.stderr

    reference = Store.open(f"sqlite:///{tmp_path / 'reference.sqlite'}")
    timing = Timing(grain=timedelta(minutes=5), lag=timedelta(minutes=10), lookback=timedelta(hours=1),
                    max_window=timedelta(hours=1))
    summary = backfill(reference, [WorkspaceSource("demo", tmp_path / "ws.duckdb")], ROLLUPS, timing, START, END,
                       datetime.now(UTC))
    assert summary.ok

    expected = list(reference.iter_dump())
    assert list(killed.iter_dump()) == expected
    assert sum(len(rows) for _, rows in expected) > 1000
