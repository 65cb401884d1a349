"""The dashboards in a real headless browser (Debian's chromium through its chromedriver), over two days of demo
traffic collected into SQLite and attributed with the demo's teams, prices and budgets: no console errors, filters
change the figures, figures total what the store holds, and a URL reproduces its view. Screenshots go to
test-output/screenshots/ for a reviewer.

Skips with the reason on a machine without chromium and chromedriver; fails instead under CI=true.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.parse import quote
from urllib.request import urlopen

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import BaseWSGIServer, make_server

from collector.collection.run import Timing, backfill
from collector.config import load_settings
from collector.cost.inventory import demo_inventory
from collector.cost.model import load_cost_model
from collector.cost.table import refresh_costs
from collector.rollups.specs import REQUESTS, ROLLUPS
from collector.store.database import Store
from collector.workspace.demo import DEMO_ORG
from collector.workspace.engine import Workspace
from collector.workspace.generate import generate
from collector.workspace.source import WorkspaceSource
from dashboards import reconciliation as rc
from dashboards.app import create_app
from dashboards.cost_figures import money
from tests.conftest import unavailable
from tests.dashboards.conftest import HOSTILE_TEAM, Billed

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM = Path(os.environ.get("AOAI_OBS_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("AOAI_OBS_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
# The demo traffic ends here: a Tuesday evening, so the last 24 hours hold the demo's weekly 429 storm on gpt-4o.
END = datetime(2025, 3, 4, 18, tzinfo=UTC)
NOW = END + timedelta(minutes=10)  # the dashboards' clock: the newest data is 10 minutes old
TIMING = Timing(grain=timedelta(minutes=5), lag=timedelta(minutes=10), lookback=timedelta(hours=1),
                max_window=timedelta(days=1))
ZONE = "Europe/Paris"
WAIT = 30.0
EXAMPLES = REPO / "examples"
SETTINGS = {"AOAI_OBS_DASHBOARDS__TIMEZONE": ZONE, "AOAI_OBS_TEAMS__RULES": str(EXAMPLES / "demo-teams.yaml"),
            "AOAI_OBS_PRICES__BOOK": str(EXAMPLES / "demo-prices.yaml"),
            "AOAI_OBS_BUDGETS__FILE": str(EXAMPLES / "budgets.yaml")}
DAY = timedelta(days=1)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    folder = tmp_path_factory.mktemp("browser")
    workspace = Workspace(folder / "workspace.duckdb")
    workspace.create()
    generate(workspace, start=END - timedelta(days=2), end=END, seed=7)
    store = Store.open(f"sqlite:///{folder / 'store.sqlite'}")
    summary = backfill(store, [WorkspaceSource("demo", workspace.path)], ROLLUPS, TIMING, END - timedelta(days=2),
                       END, NOW)
    assert summary.ok
    model = load_cost_model(load_settings(None, SETTINGS), demo_inventory().deployments())
    refresh_costs(store, model, END - timedelta(days=3), NOW, NOW)  # what the collector's cost job does
    yield store
    store.close()


@pytest.fixture(scope="module")
def base_url(demo_store: Store) -> Iterator[str]:
    """One app server per module, on a free port, in a thread."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the test report
    settings = load_settings(None, SETTINGS)
    app = create_app(settings, demo_store, inventory=demo_inventory(), now=lambda: NOW)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    if not CHROMIUM.is_file() or not CHROMEDRIVER.is_file():
        unavailable(f"headless browser tests need {CHROMIUM} and {CHROMEDRIVER} (Debian: apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1440,1000", "--hide-scrollbars"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    downloads = tmp_path_factory.mktemp("downloads")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    try:
        driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    except WebDriverException as e:
        unavailable(f"chromium did not start through {CHROMEDRIVER}: {e.msg}")
    driver.downloads = downloads  # type: ignore[attr-defined]
    yield driver
    driver.quit()


# -- helpers -----------------------------------------------------------------------------------------------------


def wait_until(driver: WebDriver, condition: Callable[[], Any], what: str) -> Any:
    last: list[Any] = []

    def check(_: WebDriver) -> Any:
        try:
            value = condition()
        except WebDriverException as e:
            value = e
        last[:] = [value]
        return value if value and not isinstance(value, Exception) else False

    try:
        return WebDriverWait(driver, WAIT, poll_frequency=0.1).until(check)
    except TimeoutException:
        pytest.fail(f"waited {WAIT:.0f}s for {what}; last seen: {last[0] if last else None!r}")


def figure(driver: WebDriver, graph: str) -> dict[str, Any] | None:
    """The figure plotly drew in a dcc.Graph: its traces' names and values, and its title."""
    script = """
        const gd = document.querySelector(`#${arguments[0]} .js-plotly-plot`);
        if (!gd || !gd.data || !gd.layout) return null;
        return JSON.stringify({title: (gd.layout.title || {}).text || '',
                               traces: gd.data.map(t => ({name: t.name, type: t.type, x: t.x, y: t.y}))});"""
    raw = driver.execute_script(script, graph)
    return json.loads(raw) if raw else None


def requests_total(driver: WebDriver) -> float | None:
    drawn = figure(driver, "ops-requests")
    if drawn is None or drawn["title"] != "Requests by status class":
        return None
    return sum(v for t in drawn["traces"] for v in t["y"] if v is not None)


def store_requests(store: Store, start: datetime, end: datetime, deployments: tuple[str, ...] = ()) -> int:
    """The store's own sum (Store.read, summed here: not the dashboards' SQL)."""
    rows = store.read(REQUESTS, "5m", start=start, end=end)
    return sum(r["requests"] for r in rows if not deployments or r["deployment"] in deployments)


def console_errors(driver: WebDriver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def open_page(driver: WebDriver, url: str) -> None:
    driver.get(url)
    wait_until(driver, lambda: driver.find_elements(By.CSS_SELECTOR, "#ops-requests .js-plotly-plot")
               and requests_total(driver) is not None, f"the operations page at {url}")
    wait_until(driver, lambda: "Data up to" in driver.find_element(By.ID, "freshness").text, "the freshness banner")


def pick(driver: WebDriver, dropdown: str, option: str) -> None:
    driver.find_element(By.ID, dropdown).click()
    choice = wait_until(driver, lambda: next((e for e in driver.find_elements(By.CSS_SELECTOR, "[role=option]")
                                               if e.text == option), None), f"option {option!r} of {dropdown}")
    choice.click()
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)


def screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, beyond the window (Chrome DevTools' full-page capture)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    path = SCREENSHOTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@dataclass(frozen=True)
class Drawn:
    url: str
    figures: dict[str, Any]


def everything_drawn(driver: WebDriver) -> Drawn:
    graphs = ("ops-requests", "ops-error-rate", "ops-latency", "ops-time-to-token", "ops-throttling", "ops-blocks",
              "ops-ptu", "ops-capacity")
    return Drawn(driver.current_url, {g: figure(driver, g) for g in graphs})


# -- tests -------------------------------------------------------------------------------------------------------


def test_the_page_loads_without_console_errors_and_totals_match_the_store(
        browser: WebDriver, base_url: str, demo_store: Store) -> None:
    open_page(browser, f"{base_url}/operations")
    expected = store_requests(demo_store, NOW - timedelta(hours=24), NOW)
    assert expected > 1000
    wait_until(browser, lambda: requests_total(browser) == expected, f"the requests figure to total {expected}")
    kpi = browser.find_element(By.CSS_SELECTOR, "#ops-kpis .kpi .kpi-value").text
    assert kpi == f"{expected:,}"
    assert "Data up to 2025-03-04 19:00 (Europe/Paris), 10 min ago." in browser.find_element(By.ID, "freshness").text
    rows = browser.find_elements(By.CSS_SELECTOR, "#operations-deployments tbody tr")
    assert len(rows) == len(DEMO_ORG.deployments)
    assert screenshot(browser, "operations").stat().st_size > 50_000
    assert browser.find_element(By.ID, "filter-team").is_enabled()  # the deployments a team used
    assert console_errors(browser) == []


def test_the_team_filter_shows_the_deployments_the_team_used(
        browser: WebDriver, base_url: str, demo_store: Store) -> None:
    used = {(r["account"], r["deployment"]) for r in demo_store.read_cost_daily(
        *days_of(timedelta(hours=24)), by=("account", "deployment"), where={"team": ("marketing",)})}
    assert 0 < len(used) < len(DEMO_ORG.deployments)
    deployments = tuple(sorted({d for _, d in used}))
    expected = store_requests(demo_store, NOW - timedelta(hours=24), NOW, deployments)
    open_page(browser, f"{base_url}/operations?team=marketing")
    wait_until(browser, lambda: requests_total(browser) == expected, f"the requests figure to total {expected}")
    rows = browser.find_elements(By.CSS_SELECTOR, "#operations-deployments tbody tr")
    assert sorted(row.find_elements(By.TAG_NAME, "td")[1].text for row in rows) == sorted(d for _, d in used)
    assert console_errors(browser) == []


def test_changing_the_deployment_filter_changes_the_figures(
        browser: WebDriver, base_url: str, demo_store: Store) -> None:
    open_page(browser, f"{base_url}/operations")
    before = everything_drawn(browser)
    pick(browser, "filter-deployment", "gpt-4o")
    expected = store_requests(demo_store, NOW - timedelta(hours=24), NOW, ("gpt-4o",))
    wait_until(browser, lambda: "deployment=gpt-4o" in browser.current_url, "the URL to carry the filter")
    wait_until(browser, lambda: requests_total(browser) == expected, f"the requests figure to total {expected}")
    after = everything_drawn(browser)
    assert after.figures["ops-requests"] != before.figures["ops-requests"]
    assert [t["y"] for t in after.figures["ops-throttling"]["traces"]] == [["gpt-4o · contoso-aoai-eus"]]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#operations-deployments tbody tr")) == 1
    assert console_errors(browser) == []


def test_a_url_with_filters_reproduces_the_view(browser: WebDriver, base_url: str, demo_store: Store) -> None:
    open_page(browser, f"{base_url}/operations")
    pick(browser, "filter-range", "Last 2 days")
    pick(browser, "filter-deployment", "gpt-4o-mini")
    pick(browser, "filter-deployment", "gpt-4o-ptu")
    deployments = ("gpt-4o-mini", "gpt-4o-ptu")
    expected = store_requests(demo_store, NOW - timedelta(days=2), NOW, deployments)
    wait_until(browser, lambda: requests_total(browser) == expected, f"the requests figure to total {expected}")
    built = everything_drawn(browser)
    assert "range=2d" in built.url and "deployment=gpt-4o-mini&deployment=gpt-4o-ptu" in built.url

    browser.get("about:blank")
    open_page(browser, built.url)
    wait_until(browser, lambda: requests_total(browser) == expected, "the reopened view")
    assert everything_drawn(browser) == built
    chosen = browser.find_element(By.ID, "filter-deployment").text
    assert "gpt-4o-mini" in chosen or "2 selected" in chosen.lower() or "gpt-4o-ptu" in chosen
    screenshot(browser, "operations-filtered")

    browser.find_element(By.CSS_SELECTOR, ".csv-button").click()
    csv_file = browser.downloads / "operations-deployments.csv"  # type: ignore[attr-defined]
    wait_until(browser, csv_file.is_file, f"the CSV download {csv_file}")
    lines = wait_until(browser, lambda: csv_file.read_text(encoding="utf-8").splitlines(), "the CSV's contents")
    assert lines[0].startswith("Account,Deployment,Model,Requests,")
    assert sum(int(line.split(",")[3]) for line in lines[1:]) == expected
    assert console_errors(browser) == []


def test_an_unknown_page_says_so(browser: WebDriver, base_url: str) -> None:
    browser.get(f"{base_url}/no-such-page?range=7d")
    wait_until(browser, lambda: "No such page" in browser.find_element(By.ID, "page").text, "the not-found page")
    assert browser.find_element(By.ID, "filter-range").text == "Last 7 days"
    assert console_errors(browser) == []


# -- the cost page -----------------------------------------------------------------------------------------------

COST_GRAPHS = ("cost-daily", "cost-daily-tokens", "cost-breakdown", "cost-unit-team", "cost-unit-model",
               "cost-movers-team", "cost-movers-deployment", "cost-budget-burn")


def cost_total(driver: WebDriver) -> float | None:
    """The cost per day figure's total, in USD (None until drawn): its bars (not the markers of each day's basis)."""
    drawn = figure(driver, "cost-daily")
    if drawn is None or not drawn["title"].startswith("Cost (USD) per UTC day"):
        return None
    return sum(v for t in drawn["traces"] if t["type"] == "bar" for v in t["y"] if v is not None)


def store_cost(store: Store, start: datetime, end: datetime, teams: tuple[str, ...] = ()) -> int:
    """The daily cost table's own sum (micro-USD) over the UTC days [start, end)."""
    rows = store.read_cost_daily(start, end, by=("team",), where={"team": teams} if teams else None)
    return sum(int(r["cost_micro_usd"]) for r in rows)


def days_of(span: timedelta) -> tuple[datetime, datetime]:
    """The whole UTC days the cost page reads for the last `span` before NOW."""
    start = NOW - span
    return start.replace(hour=0, minute=0), NOW.replace(hour=0, minute=0) + DAY


def open_cost(driver: WebDriver, url: str) -> None:
    driver.get(url)
    wait_until(driver, lambda: cost_total(driver) is not None, f"the cost page at {url}")
    wait_until(driver, lambda: all(figure(driver, g) for g in COST_GRAPHS)
               and "Loading" not in driver.find_element(By.ID, "cost-note").text, "every cost figure")


def cost_drawn(driver: WebDriver) -> Drawn:
    return Drawn(driver.current_url, {g: figure(driver, g) for g in COST_GRAPHS})


def cost_settled(driver: WebDriver) -> Drawn:
    """The view once every figure has stopped changing (callbacks redraw figures one after another): two reads half
    a second apart that agree."""
    def steady() -> Drawn | None:
        before = cost_drawn(driver)
        time.sleep(0.5)
        return before if cost_drawn(driver) == before else None

    drawn: Drawn = wait_until(driver, steady, "the cost figures to settle")
    return drawn


def matches(total: float | None, micro: int) -> bool:
    return total is not None and abs(total - micro / 1e6) < 1e-6


def test_the_cost_page_loads_without_console_errors_and_totals_match_the_store(
        browser: WebDriver, base_url: str, demo_store: Store) -> None:
    open_cost(browser, f"{base_url}/cost")
    expected = store_cost(demo_store, *days_of(timedelta(hours=24)))
    assert expected > 1_000_000_000  # a day of the demo's PTU alone is over $1,000
    wait_until(browser, lambda: matches(cost_total(browser), expected), f"the cost figure to total {expected}")
    assert browser.find_element(By.CSS_SELECTOR, "#cost-kpis .kpi .kpi-value").text == money(expected)
    assert "2 whole UTC day(s)" in browser.find_element(By.ID, "cost-note").text
    breakdown = figure(browser, "cost-breakdown")
    assert breakdown is not None and "idle" in breakdown["traces"][0]["y"]
    assert "Attribution method:" in browser.find_element(By.ID, "cost-daily").text
    teams = browser.find_elements(By.CSS_SELECTOR, "#cost-teams tbody tr")
    assert {row.text.split()[0] for row in teams} == {"idle", "support-bot", "marketing", "search", "data-science",
                                                       "platform"}
    assert len(browser.find_elements(By.CSS_SELECTOR, "#cost-budgets tbody tr")) == 6
    assert screenshot(browser, "cost").stat().st_size > 50_000
    assert console_errors(browser) == []


def test_changing_the_team_filter_changes_the_cost_figures(
        browser: WebDriver, base_url: str, demo_store: Store) -> None:
    open_cost(browser, f"{base_url}/cost")
    before = cost_drawn(browser)
    pick(browser, "filter-team", "marketing")
    expected = store_cost(demo_store, *days_of(timedelta(hours=24)), ("marketing",))
    wait_until(browser, lambda: "team=marketing" in browser.current_url, "the URL to carry the team")
    wait_until(browser, lambda: matches(cost_total(browser), expected), f"the cost figure to total {expected}")
    wait_until(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "#cost-budgets tbody tr")) == 1,
               "the budgets to follow the team")
    after = cost_drawn(browser)
    assert all(after.figures[g] != before.figures[g] for g in ("cost-daily", "cost-breakdown", "cost-unit-team",
                                                               "cost-budget-burn"))
    bars = [t for t in after.figures["cost-breakdown"]["traces"] if t["y"] and t["y"][0] is not None]
    assert {label for t in bars for label in t["y"]} == {"marketing"}
    assert [row.text.split()[0] for row in browser.find_elements(By.CSS_SELECTOR, "#cost-teams tbody tr")] == [
        "marketing"]
    assert console_errors(browser) == []


def test_a_cost_url_with_filters_reproduces_the_view(browser: WebDriver, base_url: str, demo_store: Store) -> None:
    open_cost(browser, f"{base_url}/cost")
    pick(browser, "filter-range", "Last 2 days")
    pick(browser, "filter-team", "support-bot")
    pick(browser, "filter-team", "search")
    browser.find_element(By.ID, "cost-by-model").click()
    teams = ("support-bot", "search")
    expected = store_cost(demo_store, *days_of(timedelta(days=2)), teams)
    wait_until(browser, lambda: browser.current_url.endswith("#by=model"), "the URL to carry the breakdown")
    wait_until(browser, lambda: matches(cost_total(browser), expected), f"the cost figure to total {expected}")
    wait_until(browser, lambda: (figure(browser, "cost-daily") or {}).get("title", "").endswith("by model"),
               "the breakdown by model")
    built = cost_settled(browser)
    assert "range=2d" in built.url and "team=support-bot&team=search" in built.url

    browser.get("about:blank")
    open_cost(browser, built.url)
    wait_until(browser, lambda: cost_drawn(browser) == built, "the reopened view")
    assert "support-bot" in browser.find_element(By.ID, "filter-team").text or \
        "2 selected" in browser.find_element(By.ID, "filter-team").text.lower()
    screenshot(browser, "cost-filtered")

    button = next(b for b in browser.find_elements(By.CSS_SELECTOR, ".csv-button")
                  if "cost-teams" in (b.get_attribute("id") or ""))
    button.click()
    csv_file = browser.downloads / "cost-teams.csv"  # type: ignore[attr-defined]
    wait_until(browser, csv_file.is_file, f"the CSV download {csv_file}")
    lines = wait_until(browser, lambda: csv_file.read_text(encoding="utf-8").splitlines(), "the CSV's contents")
    assert lines[0].startswith("Team,Cost USD,Share %,Requests,")
    assert {line.split(",")[0] for line in lines[1:]} == set(teams)
    assert round(sum(float(line.split(",")[1]) for line in lines[1:]) * 1_000_000) == expected
    assert console_errors(browser) == []


# -- the reports page ----------------------------------------------------------------------------------------------


def report_text(driver: WebDriver) -> str:
    return str(driver.find_element(By.ID, "report-frame").get_attribute("srcdoc") or "")


def test_the_reports_page_previews_the_month_and_downloads_it(browser: WebDriver, base_url: str,
                                                              demo_store: Store) -> None:
    browser.get(f"{base_url}/reports")
    wait_until(browser, lambda: "Azure OpenAI usage and cost: March 2025" in report_text(browser),
               "the March 2025 report in the preview")
    organisation = report_text(browser)
    assert "All teams" in browser.find_element(By.ID, "report-note").text
    month_total = store_cost(demo_store, datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC))
    assert money(month_total) in organisation  # the report's total is the store's, to the cent
    assert "<script" not in organisation.lower()
    screenshot(browser, "reports")

    browser.get(f"{base_url}/reports?team=search#month=2025-03")  # a link reproduces a team's report
    wait_until(browser, lambda: "Team search" in browser.find_element(By.ID, "report-note").text,
               "the search team's report")
    wait_until(browser, lambda: report_text(browser) and report_text(browser) != organisation, "a different report")
    browser.find_element(By.ID, "report-get-csv").click()
    csv_file = browser.downloads / "aoai-report-2025-03-search.csv"  # type: ignore[attr-defined]
    wait_until(browser, csv_file.is_file, f"the CSV download {csv_file}")
    assert console_errors(browser) == []


# -- the cost page over an imported bill ---------------------------------------------------------------------------

BILLED_SEARCH = "?from=2026-03-02T00:00Z&to=2026-03-07T00:00Z"  # the billed demo's five days


@pytest.fixture(scope="module")
def billed_url(billed: Billed) -> Iterator[str]:
    """The dashboards over the demo store with a bill and its planted discrepancies (tests/billing/billed_store.py)."""
    store = Store.open(billed.demo.url, migrate_schema=False)
    app = create_app(billed.settings(), store, inventory=billed.inventory(), now=billed.now)
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()
    store.close()


def basis_drawn(driver: WebDriver) -> dict[str, Any] | None:
    """The daily cost chart's basis markers and its bars' opacities, as plotly drew them."""
    script = """
        const gd = document.querySelector('#cost-daily .js-plotly-plot');
        if (!gd || !gd.data) return null;
        const marks = gd.data.find(t => t.name === 'basis');
        const bars = gd.data.filter(t => t.type === 'bar' && t.legend !== 'legend2');
        return marks ? JSON.stringify({symbols: marks.marker.symbol, text: marks.customdata,
                                       opacity: bars.map(t => t.marker.opacity)}) : null;"""
    raw = driver.execute_script(script)
    return json.loads(raw) if raw else None


def test_the_cost_page_shows_the_basis_split_and_the_reconciliation_with_its_causes(
        browser: WebDriver, billed_url: str) -> None:
    open_cost(browser, f"{billed_url}/cost{BILLED_SEARCH}")
    basis = wait_until(browser, lambda: browser.find_element(By.ID, "cost-basis").text, "the basis line")
    assert "billed (from the Cost Management export, days 2026-03-02..2026-03-03, 2026-03-05..2026-03-06)" in basis
    assert "estimated from telemetry and the price book (days 2026-03-04, 2026-03-06" in basis
    kpi = browser.find_element(By.CSS_SELECTOR, "#cost-kpis .kpi .kpi-label").text
    assert kpi.lower() == "cost (billed + estimate)"
    drawn = wait_until(browser, lambda: basis_drawn(browser), "the basis markers")
    assert drawn["symbols"] == ["circle", "circle", "circle-open", "circle", "circle-open-dot"]
    assert drawn["text"][2] == "estimate (telemetry × price book)"
    assert all(o == [1, 1, 0.45, 1, 0.75] for o in drawn["opacity"])
    # The team whose name is markup shows as text, in the table and on the chart's axis, and runs nothing.
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#cost-teams tbody td:first-child")]
    assert HOSTILE_TEAM in cells
    ticks = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#cost-breakdown .ytick text")]
    assert HOSTILE_TEAM in ticks
    assert browser.find_elements(By.CSS_SELECTOR, "img[src='x']") == []

    # The reconciliation of the month the range ends in, every planted cause with its explanation and fix.
    headings = wait_until(browser, lambda: [h.text for h in browser.find_elements(
        By.CSS_SELECTOR, "#cost-reconciliation h3")] or None, "the reconciliation's gaps")
    assert [h.split(" gaps:")[0] for h in headings] == ["EXPORT", "QUANTITY", "PRICE"]
    section = browser.find_element(By.ID, "cost-reconciliation").text
    for reason in ("day missing from the export", "account sends no telemetry", "telemetry with no billed line",
                   "billed below the book"):
        assert reason in section
    overrides = browser.find_element(By.ID, rc.OVERRIDES).text
    assert "rates on gpt-4o-mini GlobalStandard for account contoso-aoai-eus: output 0.54 per 1M" in overrides
    cards = browser.find_element(By.ID, rc.CARDS).text
    assert "Gross gap" in cards and "EXCEEDED" in cards
    screenshot(browser, "cost-billed")

    button = next(b for b in browser.find_elements(By.CSS_SELECTOR, ".csv-button")
                  if rc.TABLE in (b.get_attribute("id") or ""))
    browser.execute_script("arguments[0].scrollIntoView()", button)
    button.click()
    csv_file = browser.downloads / f"{rc.TABLE}.csv"  # type: ignore[attr-defined]
    wait_until(browser, csv_file.is_file, f"the CSV download {csv_file}")
    lines = wait_until(browser, lambda: csv_file.read_text(encoding="utf-8").splitlines(), "the CSV's contents")
    assert lines[0].startswith("Cause,Day,Account,Meter,")
    assert {line.split(",")[0] for line in lines[1:]} >= {"export", "quantity", "price", "none"}

    # Another month, by the URL's hash: only the section changes, and it says there is no bill.
    assert browser.find_element(By.ID, "cost-reconcile-2026-03").get_attribute("href").endswith(
        f"/cost{BILLED_SEARCH}#month=2026-03")
    daily = figure(browser, "cost-daily")
    browser.execute_script("window.location.hash = 'month=2026-02'")
    wait_until(browser, lambda: "No imported bill covers 2026-02" in browser.find_element(By.ID, rc.NOTE).text,
               "the month without a bill")
    assert "aoai-obs bill import SOURCE" in browser.find_element(By.ID, rc.NOTE).text
    assert figure(browser, "cost-daily") == daily
    assert console_errors(browser) == []

    open_cost(browser, f"{billed_url}/cost{BILLED_SEARCH}&team=search#month=2026-03")
    wait_until(browser, lambda: "team filter does not apply" in browser.find_element(By.ID, rc.NOTE).text,
               "the note that the team filter does not apply")
    wait_until(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#cost-reconciliation h3"),
               "the reconciliation under a team filter")
    screenshot(browser, "cost-reconciliation-team-filter")
    assert console_errors(browser) == []


# -- output safety -----------------------------------------------------------------------------------------------


def test_a_team_named_with_markup_shows_as_text_on_the_operations_and_cost_pages(browser: WebDriver,
                                                                                  billed_url: str) -> None:
    team = quote(HOSTILE_TEAM, safe="")
    open_page(browser, f"{billed_url}/operations{BILLED_SEARCH}&team={team}")
    assert HOSTILE_TEAM in wait_until(browser, lambda: browser.find_element(By.ID, "ops-note").text, "the note")
    chosen = wait_until(browser, lambda: browser.find_element(By.ID, "filter-team-label").text, "the Team filter")
    assert HOSTILE_TEAM in chosen  # the filter shows the name, not an image
    ticks = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#ops-throttling .ytick text")]
    assert ticks and all("&lt;" not in t and "&amp;" not in t for t in ticks)  # labels drawn as text, unescaped once
    assert browser.find_elements(By.CSS_SELECTOR, "img[src='x']") == []
    assert console_errors(browser) == []

    open_cost(browser, f"{billed_url}/cost{BILLED_SEARCH}")
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#cost-teams tbody td:first-child")]
    assert HOSTILE_TEAM in cells
    ticks = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#cost-breakdown .ytick text")]
    assert HOSTILE_TEAM in ticks
    legend = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#cost-daily .legendtext")]
    assert any(HOSTILE_TEAM in t for t in legend)  # the daily chart's legend names it, as text
    assert browser.find_elements(By.CSS_SELECTOR, "img[src='x'], #cost-breakdown a, #cost-daily a") == []
    assert console_errors(browser) == []


def test_every_response_carries_the_security_headers_and_the_report_preview_is_sandboxed(
        browser: WebDriver, base_url: str) -> None:
    for path in ("/operations", "/_dash-layout", "/_dash-dependencies", "/assets/does-not-exist.css"):
        try:
            response = urlopen(f"{base_url}{path}")
        except HTTPError as e:  # a 404 carries them too
            response = e
        headers = response.headers
        policy = headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "object-src 'none'" in policy, path
        script = next(d for d in policy.split("; ") if d.startswith("script-src "))
        assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
        assert (headers["X-Frame-Options"], headers["X-Content-Type-Options"], headers["Referrer-Policy"]) == (
            "DENY", "nosniff", "same-origin"), path
        response.close()

    browser.get(f"{base_url}/reports")
    wait_until(browser, lambda: "Azure OpenAI usage and cost" in report_text(browser), "the report in the preview")
    frame = browser.find_element(By.ID, "report-frame")
    assert frame.get_attribute("sandbox") == ""  # no scripts, forms, navigation or same origin in the preview
    browser.switch_to.frame(frame)
    try:  # the report draws, with its own styles, under the page's policy
        assert "Azure OpenAI usage and cost" in browser.find_element(By.TAG_NAME, "h1").text
        font = browser.execute_script("return window.getComputedStyle(document.body).fontFamily")
        assert font.startswith("system-ui")  # the report's inline <style> applied
    finally:
        browser.switch_to.default_content()
    assert console_errors(browser) == []
