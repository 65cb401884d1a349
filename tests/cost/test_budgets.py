"""Budgets: the file (every problem at its line), month-to-date evaluation, the run-rate forecast, and thresholds
notified once per period whatever the sequence of passes and receiver failures."""

from __future__ import annotations

import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.cost.attribution import CostLine
from collector.cost.budget_alerts import notify_budgets
from collector.cost.budgets import (
    DEFAULT_THRESHOLDS,
    Alert,
    Budget,
    Budgets,
    evaluate,
    forecast_month_end,
    load_budgets,
    newly_due,
    render_alert,
    spend_by_scope,
)
from collector.errors import InputError, TransientError
from collector.rollups.months import Period, month_of, previous_month
from collector.workspace.demo import DEMO_ORG

D = Decimal
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "budgets.yaml"
APRIL = Period(datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC))  # 30 days
MARKETING = Budget("team", "marketing", D(1200), (50, 80, 100))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "budgets.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# -- the file ----------------------------------------------------------------------------------------------------


def test_a_budgets_file_loads(tmp_path: Path) -> None:
    path = write(tmp_path, """
        thresholds: [100, 50, 80]
        budgets:
          - team: marketing
            monthly_usd: 1200
          - deployment: gpt-4o-ptu
            account: Contoso-AOAI-EUS
            monthly_usd: 5000.50
            thresholds: [100, 90]
          - deployment: gpt-4o
            monthly_usd: '0.10'
    """)
    assert load_budgets(path) == Budgets((
        Budget("team", "marketing", D("1200"), (50, 80, 100)),
        Budget("deployment", "gpt-4o-ptu", D("5000.5"), (90, 100), "contoso-aoai-eus"),
        Budget("deployment", "gpt-4o", D("0.10"), (50, 80, 100)),
    ), (50, 80, 100))
    budgets = load_budgets(path).budgets
    assert [b.id for b in budgets] == ["team:marketing", "deployment:contoso-aoai-eus/gpt-4o-ptu",
                                      "deployment:gpt-4o"]
    assert [b.key for b in budgets] == [("team", "marketing"), ("deployment", "contoso-aoai-eus", "gpt-4o-ptu"),
                                       ("deployment", "", "gpt-4o")]
    assert all(isinstance(b.monthly_usd, Decimal) for b in budgets)


def test_without_thresholds_the_default_is_50_80_100(tmp_path: Path) -> None:
    loaded = load_budgets(write(tmp_path, "budgets:\n  - team: a\n    monthly_usd: 1\n"))
    assert loaded.thresholds == DEFAULT_THRESHOLDS == (50, 80, 100)
    assert loaded.budgets[0].thresholds == (50, 80, 100)


def test_every_problem_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        thresholds: [50, 80, 80, 0]
        budgets:
          - team: marketing
            monthly_usd: -5
          - deployment: gpt-4o
            team: platform
            monthly_usd: 10
          - team: search
            account: contoso-aoai-eus
            monthly_usd: 100
          - team: data-science
            monthly_us: 100
          - team: marketing
            monthly_usd: 0
          - team: support-bot
            monthly_usd: abc
            thresholds: [50, "80%"]
          - team: platform
            monthly_usd: 100
          - team: platform
            monthly_usd: 200
          - teams: search
            monthly_usd: 1
    """)
    with pytest.raises(InputError) as caught:
        load_budgets(path)
    found = [(p.path, p.line, p.message, p.hint) for p in caught.value.problems]
    assert found == [
        (path, 1, "thresholds[2]: 80 is given twice", "keep one of them"),
        (path, 1, "thresholds[3]: 0 is not a percent from 1 to 1000", ""),
        (path, 4, "budgets[0].monthly_usd: -5 must be a number of at least 0", ""),
        (path, 5, "budgets[1]: a budget is for exactly one team or one deployment; found team and deployment",
         "write `team: <name>` or `deployment: <name>`"),
        (path, 9, "budgets[2].account: only a deployment budget takes an account", ""),
        (path, 11, "budgets[3]: 'monthly_usd' is required", ""),
        (path, 12, "budgets[3].monthly_us: unknown key", "did you mean 'monthly_usd'?"),
        (path, 14, "budgets[4].monthly_usd: 0 must be more than 0", ""),
        (path, 16, "budgets[5].monthly_usd: 'abc' is not a number", ""),
        (path, 17, "budgets[5].thresholds[1]: '80%' is not a whole percent", "write 80"),
        (path, 20, "budgets[7]: the budget team:platform is given twice (first at line 18)", "keep one of them"),
        (path, 22, "budgets[8].teams: unknown key", "did you mean 'team'?"),
        (path, 22, "budgets[8]: a budget is for exactly one team or one deployment; found neither",
         "write `team: <name>` or `deployment: <name>`"),
    ]
    assert str(caught.value).startswith(f"13 problem(s) in the budgets file ({path})")
    assert f"{path}:20: budgets[7]" in str(caught.value)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("budgets: {team: a}\n", 1, "budgets: must be a list of budgets"),
    ("- team: a\n", 1, "must be a mapping"),
    ("budgets:\n  - team: a\n    monthly_usd: 1\n    thresholds: []\n", 4,
     "budgets[0].thresholds: must be a non-empty list of percents"),
    ("budgets:\n  - team: a\n    monthly_usd: 1\n    thresholds: [50.5]\n", 4,
     "budgets[0].thresholds[0]: 50.5 is not a whole percent"),
    ("budgets:\n  - team: ''\n    monthly_usd: 1\n", 2, "budgets[0].team: must be non-empty text"),
    ("budgets:\n  - team: a\n    monthly_usd: .nan\n", 3, "budgets[0].monthly_usd: nan must be a number"),
    ("budgets:\n  - team: a\n    team: b\n    monthly_usd: 1\n", 3, "budgets[0].team is given twice"),
])
def test_single_mistakes(tmp_path: Path, text: str, line: int, message: str) -> None:
    with pytest.raises(InputError) as caught:
        load_budgets(write(tmp_path, text))
    (problem,) = caught.value.problems
    assert problem.line == line
    assert problem.message.startswith(message)


def test_the_demo_budgets_name_demo_teams_and_deployments() -> None:
    loaded = load_budgets(EXAMPLE)
    teams = {t.name for t in DEMO_ORG.teams}
    deployments = {(d.account, d.name) for d in DEMO_ORG.deployments}
    assert {b.name for b in loaded.budgets if b.scope == "team"} == teams
    for budget in loaded.budgets:
        if budget.scope == "deployment":
            assert (budget.account, budget.name) in deployments
    from collector.config import load_settings

    settings_ = load_settings(EXAMPLE.with_name("demo.yaml"), {})
    assert settings_.budgets.file in (None, EXAMPLE)  # the demo settings may point at it


# -- evaluation --------------------------------------------------------------------------------------------------


def test_ten_days_into_a_thirty_day_month() -> None:
    status = evaluate(MARKETING, APRIL, D("700.00"), datetime(2025, 4, 11, tzinfo=UTC))
    # 700 / 1200 = 58.33 %; run-rate 700 / 10 days x 30 days = 2100.00 = 175.00 %
    assert (status.percent_used, status.crossed, status.forecast, status.forecast_percent) == (
        D("58.33"), (50,), D("2100.00"), D("175.00"))
    assert newly_due(status, set()) == (50,)
    assert newly_due(status, {50}) == ()


@pytest.mark.parametrize(("spent", "as_of", "percent", "crossed", "forecast"), [
    (D("380"), datetime(2025, 4, 10, 12, tzinfo=UTC), D("31.67"), (), D("1200.00")),  # 380 / 9.5 d x 30 d
    (D("600"), datetime(2025, 4, 16, tzinfo=UTC), D("50.00"), (50,), D("1200.00")),  # exactly 50 % crosses 50
    (D("599.99"), datetime(2025, 4, 16, tzinfo=UTC), D("50.00"), (), D("1199.98")),  # rounds to 50.00, not crossed
    (D("1300"), datetime(2025, 4, 30, tzinfo=UTC), D("108.33"), (50, 80, 100), D("1344.83")),  # 1300 x 30 / 29
    (D("0"), datetime(2025, 4, 20, tzinfo=UTC), D("0.00"), (), D("0.00")),
])
def test_evaluation_golden(spent: Decimal, as_of: datetime, percent: Decimal, crossed: tuple[int, ...],
                           forecast: Decimal) -> None:
    status = evaluate(MARKETING, APRIL, spent, as_of)
    assert (status.percent_used, status.crossed, status.forecast) == (percent, crossed, forecast)


def test_no_forecast_in_the_first_day_and_the_actual_after_month_end() -> None:
    first_hours = evaluate(MARKETING, APRIL, D("30"), datetime(2025, 4, 1, 6, tzinfo=UTC))
    assert (first_hours.forecast, first_hours.forecast_percent) == (None, None)
    assert forecast_month_end(APRIL, D("40"), datetime(2025, 4, 2, tzinfo=UTC)) == D("1200.00")  # one day: 40 x 30
    assert forecast_month_end(APRIL, D("40"), APRIL.start) is None
    later = evaluate(MARKETING, APRIL, D("1250"), datetime(2025, 5, 3, tzinfo=UTC))
    assert (later.as_of, later.forecast, later.forecast_percent) == (APRIL.end, D("1250"), D("104.17"))
    with pytest.raises(ValueError, match="before the period"):
        evaluate(MARKETING, APRIL, D("1"), datetime(2025, 3, 31, tzinfo=UTC))
    with pytest.raises(ValueError, match="naive"):
        evaluate(MARKETING, APRIL, D("1"), datetime(2025, 4, 3))


@pytest.mark.parametrize(("instant", "start", "end"), [
    (datetime(2025, 4, 11, 9, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 5, 1, tzinfo=UTC)),
    (datetime(2025, 12, 31, 23, 59, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)),
    (datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
    # 2025-03-01 00:30 in UTC+2 is still February in UTC
    (datetime(2025, 3, 1, 0, 30, tzinfo=UTC) + timedelta(hours=-2), datetime(2025, 2, 1, tzinfo=UTC),
     datetime(2025, 3, 1, tzinfo=UTC)),
])
def test_month_of(instant: datetime, start: datetime, end: datetime) -> None:
    assert month_of(instant) == Period(start, end)


def test_previous_month_crosses_the_year() -> None:
    assert previous_month(month_of(datetime(2026, 1, 5, tzinfo=UTC))).label == "2025-12"


def test_spend_by_scope_sums_teams_and_deployments() -> None:
    def line(team: str, account: str, deployment: str, cost: str) -> CostLine:
        return CostLine(APRIL.start, account, deployment, team, "direct", 0, 0, 0, 0, D(cost), None, False)

    spend = spend_by_scope([line("marketing", "Acct-A", "gpt-4o", "1.5"), line("search", "acct-a", "gpt-4o", "2"),
                            line("marketing", "acct-b", "gpt-4o", "0.25"), line("idle", "acct-b", "ptu", "7")])
    assert spend == {("team", "marketing"): D("1.75"), ("team", "search"): D("2"), ("team", "idle"): D("7"),
                     ("deployment", "acct-a", "gpt-4o"): D("3.5"), ("deployment", "acct-b", "gpt-4o"): D("0.25"),
                     ("deployment", "", "gpt-4o"): D("3.75"), ("deployment", "acct-b", "ptu"): D("7"),
                     ("deployment", "", "ptu"): D("7")}


def test_the_alert_says_what_was_crossed() -> None:
    ptu = Budget("deployment", "gpt-4o-ptu", D(5000), (90, 100), "contoso-aoai-eus")
    status = evaluate(ptu, APRIL, D("4600"), datetime(2025, 4, 25, 12, tzinfo=UTC))
    alert = render_alert(status, (90,))
    assert alert == Alert(
        "deployment:contoso-aoai-eus/gpt-4o-ptu", APRIL.start, (90,),
        "Budget deployment:contoso-aoai-eus/gpt-4o-ptu: 92.00 % used in 2025-04",
        "The monthly budget of deployment gpt-4o-ptu on contoso-aoai-eus passed 90 %: $4,600.00 of $5,000.00 spent "
        "by 2025-04-25 12:00 UTC.",
        (("Budget", "deployment:contoso-aoai-eus/gpt-4o-ptu"), ("Month", "2025-04"), ("Spent", "$4,600.00"),
         ("Monthly budget", "$5,000.00"), ("Used", "92.00 %"), ("Thresholds passed", "90 %"),
         ("Month-end forecast", "$5,632.65 (112.65 %)"), ("As of", "2025-04-25 12:00 UTC")))


# -- once per threshold per period -------------------------------------------------------------------------------


class MemoryLog:
    """The notification log in memory, optionally failing to record once (a crash between send and record)."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, datetime, int], datetime] = {}
        self.fail_next_record = False

    def notified_thresholds(self, budget_id: str, period_start: datetime) -> set[int]:
        return {t for (b, p, t) in self.records if (b, p) == (budget_id, period_start)}

    def record_notification(self, budget_id: str, period_start: datetime, threshold: int, now: datetime) -> None:
        if self.fail_next_record:
            self.fail_next_record = False
            raise RuntimeError("the store went away")
        self.records.setdefault((budget_id, period_start, threshold), now)


BUDGETS = Budgets((MARKETING, Budget("deployment", "gpt-4o", D(300), (50, 80, 100, 150)),
                   Budget("team", "search", D(50), (100,))))


@settings(max_examples=150, deadline=None)
@given(passes=st.lists(st.tuples(st.lists(st.decimals(0, 2000, places=2), min_size=3, max_size=3),
                                 st.integers(0, 27)),
                       min_size=1, max_size=10),
       data=st.data())
def test_no_threshold_is_notified_twice(passes: list[tuple[list[Decimal], int]], data: st.DataObject) -> None:
    log, delivered = MemoryLog(), Counter[tuple[str, datetime, int]]()

    def send(alert: Alert) -> None:
        if data.draw(st.booleans(), label="receiver fails"):
            raise TransientError("HTTP 500")
        delivered.update((alert.budget_id, alert.period_start, t) for t in alert.thresholds)

    for amounts, day in passes:  # spend may go down too: corrections and re-pricing happen
        spend = {("team", "marketing"): amounts[0], ("deployment", "", "gpt-4o"): amounts[1],
                 ("team", "search"): amounts[2]}
        as_of = APRIL.start + timedelta(days=day + 1)
        notify_budgets(log, BUDGETS, APRIL, spend, as_of, send, now=as_of)
    assert all(count == 1 for count in delivered.values()), delivered
    assert set(delivered) == set(log.records)
    # a last pass with a healthy receiver delivers exactly what is crossed and not yet sent
    final = notify_budgets(log, BUDGETS, APRIL, spend, as_of, lambda a: delivered.update(
        (a.budget_id, a.period_start, t) for t in a.thresholds), now=as_of)
    assert all(count == 1 for count in delivered.values())
    for status in final.statuses:
        assert set(status.crossed) <= log.notified_thresholds(status.budget.id, APRIL.start)


def test_a_crash_between_send_and_record_sends_once_more() -> None:
    log, sent = MemoryLog(), list[Alert]()
    spend = {("team", "marketing"): D(700)}
    log.fail_next_record = True
    with pytest.raises(RuntimeError):
        notify_budgets(log, [MARKETING], APRIL, spend, APRIL.end, sent.append, now=APRIL.end)
    assert [a.thresholds for a in sent] == [(50,)] and not log.records
    notify_budgets(log, [MARKETING], APRIL, spend, APRIL.end, sent.append, now=APRIL.end)  # at least once
    notify_budgets(log, [MARKETING], APRIL, spend, APRIL.end, sent.append, now=APRIL.end)
    assert [a.thresholds for a in sent] == [(50,), (50,)]


def test_one_message_per_budget_lists_every_threshold_newly_crossed() -> None:
    log, sent = MemoryLog(), list[Alert]()
    result = notify_budgets(log, BUDGETS, APRIL, {("team", "marketing"): D(1500)}, APRIL.end, sent.append,
                            now=APRIL.end)
    assert [(a.budget_id, a.thresholds) for a in sent] == [("team:marketing", (50, 80, 100))]
    assert result.summary() == "budgets: 3 checked, 1 at or over 100 %, 1 notification(s) sent"
    next_month = month_of(APRIL.end)
    notify_budgets(log, BUDGETS, next_month, {("team", "marketing"): D(700)}, next_month.start + timedelta(days=3),
                   sent.append, now=next_month.start)
    assert [(a.budget_id, a.period_start, a.thresholds) for a in sent[1:]] == [
        ("team:marketing", next_month.start, (50,))]  # a new month notifies afresh
