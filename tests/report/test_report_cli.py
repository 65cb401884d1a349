"""`aoai-obs report` and the monthly schedule on two collected days of demo traffic (the last day of March, a
Tuesday with the demo's 429 storm, and the first of April), through the command and a real webhook receiver.

The organisation's March report of the demo is copied to test-output/report/ for a reviewer (with the PDF and a
PNG of its first page when chromium and pdftoppm are installed)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from collector.cli.main import Context, Group
from collector.cli.report import default_month, report
from collector.collection.run import Timing, backfill
from collector.config import Settings, load_settings
from collector.cost.attribution import MICRO_USD
from collector.cost.inventories import build_inventory
from collector.cost.model import load_cost_model
from collector.cost.table import bring_costs_up_to_date
from collector.report.pdf import find_chromium
from collector.report.schedule import monthly_report_due, reports_after_pass
from collector.rollups.months import month_of
from collector.rollups.specs import ROLLUPS
from collector.store.database import Store
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.source import WorkspaceSource
from tests.conftest import unavailable
from tests.report.test_report import tables_of

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
OUTPUT = REPO / "test-output" / "report"
START = datetime(2026, 3, 31, tzinfo=UTC)
END = START + timedelta(days=2)
NOW = END + timedelta(hours=1)
MARCH = month_of(START)


@dataclass(frozen=True)
class Demo:
    config: Path
    settings: Settings
    store_url: str


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("report")
    workspace = Workspace(folder / "ws.duckdb")
    workspace.create()
    generate(workspace, start=START, end=END, seed=9)
    config = folder / "aoai-obs.yaml"
    config.write_text(f"""
sources:
  - {{name: demo, kind: workspace, path: ws.duckdb}}
store: {{url: "sqlite:///store.sqlite"}}
teams: {{rules: {EXAMPLES / "demo-teams.yaml"}}}
prices: {{book: {EXAMPLES / "demo-prices.yaml"}}}
budgets: {{file: {EXAMPLES / "budgets.yaml"}}}
""", encoding="utf-8")
    settings = load_settings(config, {})
    store = Store.open(settings.store.url)
    try:
        timing = Timing(grain=timedelta(minutes=5), lag=timedelta(0), lookback=timedelta(0),
                        max_window=timedelta(days=1))
        assert backfill(store, [WorkspaceSource("demo", workspace.path)], ROLLUPS, timing, START, END, END).ok
        model = load_cost_model(settings, build_inventory(settings).deployments())
        bring_costs_up_to_date(store, model, NOW, recent=timedelta(hours=1), history=timedelta(days=30))
    finally:
        store.close()
    yield Demo(config, settings, settings.store.url)


def run(config: Path, *args: str) -> Result:
    """`aoai-obs --config CONFIG report ARGS` through the root command's error handling."""
    group = Group("aoai-obs", commands={"report": report})
    return CliRunner().invoke(group, ["report", *args], obj=Context(config, False))


def _store_total(demo: Demo, start: datetime, end: datetime) -> Decimal:
    store = Store.open(demo.store_url)
    try:
        return Decimal(sum(r["cost_micro_usd"] for r in store.read_cost_daily(start, end, by=("team",)))) * MICRO_USD
    finally:
        store.close()


def test_default_month_is_the_last_complete_one() -> None:
    assert default_month(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == "2025-12"
    assert default_month(datetime(2026, 3, 31, 23, 59, tzinfo=UTC)) == "2026-02"


def test_report_of_the_demo_as_html_and_csv(demo: Demo, tmp_path: Path) -> None:
    result = run(demo.config, "--month", "2026-03", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    html_path, csv_path = tmp_path / "out" / "aoai-report-2026-03.html", tmp_path / "out" / "aoai-report-2026-03.csv"
    assert str(html_path) in result.stdout and str(csv_path) in result.stdout
    html = html_path.read_text(encoding="utf-8")
    tables = tables_of(html)
    # The demo's weekly storm: gpt-4o on contoso-aoai-eus, Tuesdays 14:00-17:00 UTC, more than half of it 429.
    storm = tables["throttling"][1]
    assert storm[:4] == ["contoso-aoai-eus/gpt-4o", "2026-03-31 14:00", "2026-03-31 17:00", "3"]
    assert Decimal(storm[6].rstrip(" %")) > 40
    assert len(tables["throttling"]) == 2
    # Totals: the store's, the HTML's and the CSV's sums agree to the cent (the CSV's to the micro-dollar).
    total = _store_total(demo, MARCH.start, MARCH.end)
    shown = next(row for row in tables["teams"] if row[0] == "Total")[4]
    assert shown == f"${total.quantize(Decimal('0.01')):,}"
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8"))))
    for section in ("team", "model", "deployment"):
        assert sum(Decimal(r["value"]) for r in rows if r["section"] == section and r["period"] == "2026-03"
                   and r["metric"] == "cost_usd") == total
    teams = {r["team"] for r in rows if r["section"] == "team"}
    assert {"support-bot", "marketing", "search", "data-science", "platform", "idle"} <= teams
    assert "idle" in {row[0] for row in tables["teams"]}  # the PTU deployment's unused capacity, its own line
    assert [row[0] for row in tables["budgets"][1:]][-1] == "deployment:contoso-aoai-eus/gpt-4o-ptu"
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for path in (html_path, csv_path):
        shutil.copyfile(path, OUTPUT / path.name)


def test_one_team_as_csv_and_mistakes(demo: Demo, tmp_path: Path) -> None:
    out = tmp_path / "marketing.csv"
    result = run(demo.config, "--month", "2026-04", "--team", "marketing", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "not complete" in result.stderr  # April has one day collected
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert {r["scope"] for r in rows} == {"team:marketing"}
    assert {r["team"] for r in rows if r["section"] == "team"} == {"marketing"}
    assert not list(tmp_path.glob(".*")), "a temporary file was left behind"
    for args, message in (
        (("--team", "marketng"), "did you mean 'marketing'?"),
        (("--team", "idle"), "'idle' is not a team"),
        (("--month", "2026-13"), "is not a month"),
        (("--month", "2026-06"), "nothing is collected for 2026-06 yet"),
        (("--out", str(tmp_path / "x.txt")), "'.txt' is not a report format"),
    ):
        result = run(demo.config, *(("--month", "2026-04") if "--month" not in args else ()), *args,
                     *(("--out", str(tmp_path / "r.html")) if "--out" not in args else ()))
        assert result.exit_code == 2 and message in result.stderr, (args, result.output)


def test_report_as_pdf(demo: Demo, tmp_path: Path) -> None:
    chromium = find_chromium()
    if chromium is None:
        unavailable("the PDF report needs chromium (/usr/bin/chromium, chromium or chromium-browser on the PATH; "
                    "Debian: apt-get install chromium)")
    out = tmp_path / "march.pdf"
    result = run(demo.config, "--month", "2026-03", "--out", str(out))
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 20_000
    OUTPUT.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(out, OUTPUT / "aoai-report-2026-03.pdf")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", "-layout", str(out), "-"], capture_output=True, text=True,
                              check=True).stdout
        assert "Estimate from telemetry and the price book, not the invoice." in " ".join(text.split())
        assert "contoso-aoai-eus/gpt-4o" in text
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(out),
                        str(OUTPUT / "aoai-report-2026-03-page")], check=True, timeout=60)


class _Receiver:
    """A webhook receiver that answers each POST with the next of `statuses` (then 200) and keeps the 2xx ones."""

    def __init__(self, statuses: tuple[int, ...] = ()) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.statuses = list(statuses)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                if status < 300:
                    receiver.bodies.append(body)
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/secret"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_schedule_writes_last_month_once_and_posts_its_summary_once(demo: Demo, tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    receiver = _Receiver(statuses=(503,))
    try:
        environ = {"AOAI_OBS_REPORTS__FOLDER": str(folder), "AOAI_OBS_REPORTS__POST_TO_WEBHOOK": "true",
                   "AOAI_OBS_BUDGETS__WEBHOOK_URL": receiver.url,
                   "AOAI_OBS_BUDGETS__WEBHOOK_ALLOW_HTTP": "true"}  # the test's receiver is local
        settings = load_settings(demo.config, environ)
        store = Store.open(settings.store.url)
        try:
            assert monthly_report_due(store, folder) == MARCH  # the data has passed March's end
            line = reports_after_pass(settings, store, NOW)
            assert "report 2026-03: wrote" in line and "summary not posted" in line and "503" in line
            assert (folder / "aoai-report-2026-03.html").is_file() and (folder / "aoai-report-2026-03.csv").is_file()
            assert (folder / "aoai-report-2026-03.pdf").is_file() == (find_chromium() is not None)
            assert monthly_report_due(store, folder) is None
            assert reports_after_pass(settings, store, NOW + timedelta(minutes=5)) == "report 2026-03: summary posted"
            assert reports_after_pass(settings, store, NOW + timedelta(minutes=10)) == ""
            assert len(receiver.bodies) == 1
            text = receiver.bodies[0]["text"]
            assert "March 2026" in text and "aoai-report-2026-03.html" in text and "not the invoice" in text
            assert "secret" not in line
            # Without reports.folder the schedule does nothing.
            assert reports_after_pass(load_settings(demo.config, {}), store, NOW) == ""
        finally:
            store.close()
    finally:
        receiver.close()


def test_no_report_is_due_for_a_month_before_the_store_began(tmp_path: Path) -> None:
    class Fake:
        def __init__(self, watermark: datetime | None, first: datetime | None) -> None:
            self.watermark, self.first = watermark, first

        def job_statuses(self) -> list[Any]:
            from collector.store.database import JobStatus

            return [JobStatus("s", job, self.watermark, None, None, "", None)
                    for job in ("usage_tokens", "caller_requests", "platform_metrics")]

        def first_usage_bucket(self) -> datetime | None:
            return self.first

    april = datetime(2026, 4, 1, tzinfo=UTC)
    assert monthly_report_due(Fake(april, START), tmp_path) == MARCH  # exactly at the month's end: due
    # The data still in March: February's report is the one due, and a store begun on March 31st has none.
    assert monthly_report_due(Fake(april - timedelta(minutes=5), START), tmp_path) is None
    assert monthly_report_due(Fake(april - timedelta(minutes=5), START - timedelta(days=40)), tmp_path) == month_of(
        datetime(2026, 2, 1, tzinfo=UTC))
    assert monthly_report_due(Fake(april, april), tmp_path) is None  # the store began after March
    assert monthly_report_due(Fake(None, None), tmp_path) is None
