"""`aoai-obs collect run` as a user runs it: a pass at once, then one every interval, one summary line per pass,
and Ctrl-C stops it cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.test_collect_golden import build_workspace


def test_collect_run_passes_on_the_interval_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    build_workspace(tmp_path / "ws.duckdb")
    config = tmp_path / "aoai-obs.yaml"
    config.write_text(
        "sources:\n  - name: golden\n    kind: workspace\n    path: ws.duckdb\n"
        "store:\n  url: sqlite:///store.sqlite\ncollector:\n  interval: 1s\n  lookback: 5m\n",
        encoding="utf-8",
    )
    process = subprocess.Popen([sys.executable, "-m", "collector.cli.main", "--config", str(config), "collect", "run"],
                               cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    summaries: list[str] = []
    deadline = time.monotonic() + 60
    while len(summaries) < 2:
        assert time.monotonic() < deadline, "fewer than two passes in a minute"
        line = process.stderr.readline()
        assert line, "the collector exited early"
        if "collected " in line:
            summaries.append(line)
    started_second = time.monotonic()
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=30)[1]

    assert process.returncode == 0, rest
    assert "collector stopped" in rest
    assert "Traceback" not in rest
    assert time.monotonic() - started_second < 30
    assert all("6 job(s)" in s for s in summaries)
