"""Settings: defaults, the file, environment overrides, every problem at its line, and the generated documentation."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from collector.config import (
    SOURCE_KINDS,
    CollectorSettings,
    Settings,
    WorkspaceSourceSettings,
    find_config,
    format_duration,
    iter_setting_docs,
    load_settings,
    parse_duration,
    render_settings_markdown,
)
from collector.errors import InputError, Problem

REPO = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str, name: str = "aoai-obs.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path | None, environ: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(InputError) as caught:
        load_settings(path, environ or {})
    return caught.value.problems


# -- valid settings ----------------------------------------------------------------------------------------------


def test_defaults_without_a_file() -> None:
    settings = load_settings(None, {})
    assert settings == Settings()
    assert [(s.kind, s.name, s.path) for s in settings.sources] == [
        ("workspace", "demo", Path(".demo/workspace.duckdb"))]
    assert settings.store.url == "sqlite:///.demo/aoai-obs.sqlite"
    assert (settings.store.retention.five_minute_days, settings.store.retention.hourly_days) == (35, 400)
    c = settings.collector
    assert (c.grain, c.lag, c.lookback, c.max_window, c.interval) == (
        timedelta(minutes=5), timedelta(minutes=10), timedelta(hours=1), timedelta(hours=6), timedelta(minutes=5))
    assert (c.queries, c.metrics_port) == ([], 0)
    assert (settings.demo.days, settings.demo.seed) == (90, 7)
    assert (settings.teams.rules, settings.prices.book, settings.alerts) == (None, None, {})


def test_a_full_file(tmp_path: Path) -> None:
    path = write(tmp_path, """
        sources:
          - name: prod-eastus
            kind: workspace
            path: data/prod.duckdb
          - name: dev
            kind: workspace
            path: /var/lib/aoai/dev.duckdb
        store:
          url: postgresql+psycopg://aoai@db.internal:5432/aoai
          retention:
            five_minute_days: 14
            hourly_days: 730
        collector:
          grain: 15m
          lag: PT20M
          lookback: 2h
          max_window: 1d
          interval: 1m
          queries: [requests, tokens]
          metrics_port: 9464
        demo:
          days: 7
          seed: 42
        teams:
          rules: teams.yaml
        prices:
          book: prices/book.yaml
        budgets: {}
        dashboards:
          timezone: Europe/Paris
          port: 8080
        alerts: {}
    """)
    settings = load_settings(path, {})
    assert [s.name for s in settings.sources] == ["prod-eastus", "dev"]
    assert settings.sources[0].path == tmp_path / "data" / "prod.duckdb"
    assert settings.sources[1].path == Path("/var/lib/aoai/dev.duckdb")
    assert settings.store.url == "postgresql+psycopg://aoai@db.internal:5432/aoai"
    assert settings.store.retention == settings.store.retention.model_copy(
        update={"five_minute_days": 14, "hourly_days": 730})
    c = settings.collector
    assert (c.grain, c.lag, c.lookback, c.max_window, c.interval) == (
        timedelta(minutes=15), timedelta(minutes=20), timedelta(hours=2), timedelta(days=1), timedelta(minutes=1))
    assert (c.queries, c.metrics_port) == (["requests", "tokens"], 9464)
    assert (settings.demo.days, settings.demo.seed) == (7, 42)
    assert settings.teams.rules == tmp_path / "teams.yaml"
    assert settings.prices.book == tmp_path / "prices" / "book.yaml"
    assert (settings.dashboards.timezone, settings.dashboards.host, settings.dashboards.port) == (
        "Europe/Paris", "127.0.0.1", 8080)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "---\n"])
def test_an_empty_file_means_defaults(tmp_path: Path, text: str) -> None:
    assert load_settings(write(tmp_path, text), {}) == Settings()


def test_settings_are_frozen() -> None:
    settings = load_settings(None, {})
    with pytest.raises(ValidationError):
        settings.collector.lag = timedelta(0)


@pytest.mark.parametrize("name", ["aoai-obs.yaml", "demo.yaml"])
def test_the_example_files_load(name: str) -> None:
    settings = load_settings(REPO / "examples" / name, {})
    assert isinstance(settings.sources[0], WorkspaceSourceSettings)


def test_a_control_character_is_a_located_problem_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("store:\n  url: sqlite:///x\x1f.sqlite\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_settings(bad, {})
    [problem] = caught.value.problems
    assert problem.path == bad and "invalid YAML" in problem.message


def test_the_azure_example_loads_and_builds_its_sources() -> None:
    from collector.collection.loganalytics import LogAnalyticsSource
    from collector.collection.metrics import MetricsSource
    from collector.collection.sources import build_sources

    settings = load_settings(REPO / "examples" / "azure.yaml", {})
    assert [s.kind for s in settings.sources] == ["log_analytics", "metrics"]
    sources = build_sources(settings)  # builds clients lazily: nothing is contacted
    assert [type(s) for s in sources] == [LogAnalyticsSource, MetricsSource]
    for source in sources:
        source.close()


def test_the_demo_example_points_at_the_repository_demo_folder() -> None:
    settings = load_settings(REPO / "examples" / "demo.yaml", {})
    assert [(s.name, s.kind, s.path) for s in settings.sources] == [
        ("demo", "workspace", REPO / ".demo" / "workspace.duckdb")]
    assert settings.store.url == f"sqlite:///{REPO / '.demo' / 'aoai-obs.sqlite'}"
    assert settings.collector.lag == timedelta(minutes=10)


# -- durations ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("30s", timedelta(seconds=30)),
    ("5m", timedelta(minutes=5)),
    ("1h", timedelta(hours=1)),
    ("2d", timedelta(days=2)),
    ("1h30m", timedelta(minutes=90)),
    ("0s", timedelta(0)),
    (" 10m ", timedelta(minutes=10)),
    ("PT5M", timedelta(minutes=5)),
    ("pt1h30m", timedelta(minutes=90)),
    ("P1DT2H", timedelta(days=1, hours=2)),
    ("P2D", timedelta(days=2)),
])
def test_durations_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "5", "m", "5 m", "5min", "-5m", "1.5h", "5m1h", "P", "PT", "PT5", "soon"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(InputError, match=r"is not a duration: write e\.g\. 30s, 5m, 1h, 2d or PT5M"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**7))
def test_format_duration_reads_back(seconds: int) -> None:
    value = timedelta(seconds=seconds)
    assert parse_duration(format_duration(value)) == value


# -- problems, one at a time -------------------------------------------------------------------------------------

BAD_FILES = [
    pytest.param("colector:\n  lag: 5m\n", 1, "unknown setting 'colector'", "did you mean 'collector'?",
                 id="unknown-section"),
    pytest.param("collector:\n  grain: 5m\n  lagg: 5m\n", 3, "unknown setting 'lagg' in collector",
                 "did you mean 'lag'?", id="unknown-key"),
    pytest.param("store:\n  retention:\n    hourly: 9\n", 3, "unknown setting 'hourly' in store.retention",
                 "did you mean 'hourly_days'?", id="unknown-nested-key"),
    pytest.param("sources:\n  - name: a\n    kind: workspace\n    path: a.duckdb\n    pth: a.duckdb\n", 5,
                 "unknown setting 'pth' in sources[0]", "did you mean 'path'?", id="unknown-source-key"),
    pytest.param("zzz: 1\n", 1, "unknown setting 'zzz'", "expected one of: sources, store", id="unknown-no-match"),
    pytest.param("collector:\n  lag: soon\n", 2, "collector.lag: 'soon' is not a duration", "",
                 id="bad-duration"),
    pytest.param("collector:\n  lag: 10\n", 2, "collector.lag: 10 is not a duration: write it as a string", "",
                 id="duration-as-number"),
    pytest.param("demo:\n  days: many\n", 2, "demo.days: should be a valid integer", "", id="bad-type"),
    pytest.param("demo:\n  days: yes\n", 2, "demo.days: True is not a whole number", "", id="boolean-for-number"),
    pytest.param("collector:\n", 1, "collector: must be a mapping of settings, not a null", "", id="empty-section"),
    pytest.param("collector:\n  metrics_port: 70000\n", 2, "collector.metrics_port: should be less than or equal "
                 "to 65535 (got 70000)", "", id="port-range"),
    pytest.param("store:\n  retention:\n    five_minute_days: 1\n", 3,
                 "store.retention.five_minute_days: should be greater than or equal to 2", "", id="below-minimum"),
    pytest.param("store: 5\n", 1, "store: must be a mapping of settings, not a number", "", id="section-not-mapping"),
    pytest.param("sources: {name: a}\n", 1, "sources: should be a valid list", "", id="sources-not-list"),
    pytest.param("dashboards:\n  timezone: Europe/Pari\n", 2, "dashboards.timezone: 'Europe/Pari' is not an IANA "
                 "time zone: did you mean 'Europe/Paris'?", "", id="bad-time-zone"),
    pytest.param("alerts: 5\n", 1, "alerts: this reserved section takes a mapping or a list", "",
                 id="reserved-scalar"),
    pytest.param("budgets:\n  webhook_format: msteams\n", 2, "budgets.webhook_format: should be 'slack' or 'teams'",
                 "", id="bad-webhook-format"),
    pytest.param("sources:\n  - name: a\n    kind: workspace\n    path: a.duckdb\n"
                 "  - name: a\n    kind: workspace\n    path: b.duckdb\n", 5,
                 "source name 'a' is already used by sources[0]", "", id="duplicate-source-names"),
    pytest.param("sources:\n  - name: Prod_1\n    kind: workspace\n    path: a.duckdb\n", 2,
                 "sources[0].name: 'Prod_1' is not a source name", "", id="bad-source-name"),
    pytest.param("sources:\n  - name: a\n    kind: worksapce\n    path: a.duckdb\n", 3,
                 "unknown source kind 'worksapce'", "did you mean 'workspace'?", id="unknown-kind"),
    pytest.param("sources:\n  - name: a\n    kind: kafka\n", 3, "unknown source kind 'kafka'",
                 "expected one of: workspace", id="unknown-kind-no-match"),
    pytest.param("sources:\n  - name: a\n    path: a.duckdb\n", 2, "a source needs a `kind`", "kinds: workspace",
                 id="missing-kind"),
    pytest.param("sources:\n  - name: a\n    kind: workspace\n", 2, "sources[0].path: required, but not given", "",
                 id="missing-path"),
    pytest.param("collector:\n  grain: 5m\n  lookback: 12m\n", 3,
                 "collector.lookback (12m) must be a multiple of grain (5m)", "", id="lookback-not-multiple"),
    pytest.param("collector:\n  grain: 10m\n  lookback: 5m\n", 3,
                 "collector.lookback (5m) must be a multiple of grain (10m)", "", id="lookback-below-grain"),
    pytest.param("collector:\n  max_window: 7m\n", 2, "collector.max_window (7m) must be a multiple of grain (5m)",
                 "", id="max-window-not-multiple"),
    pytest.param("collector:\n  lag: 1m\n  grain: 7m\n", 3, "collector.grain (7m) must divide 1h evenly", "",
                 id="grain-not-dividing-hour"),
    pytest.param("collector:\n  grain: 0s\n", 2, "collector.grain (0s) must divide 1h evenly", "",
                 id="zero-grain"),
    pytest.param("collector:\n  interval: 0m\n", 2, "collector.interval must be longer than 0s", "",
                 id="zero-interval"),
    pytest.param("store:\n  retention:\n    five_minute_days: 40\n    hourly_days: 30\n", 4,
                 "store.retention.hourly_days (30) must be at least five_minute_days (40)", "",
                 id="retention-order"),
    pytest.param("store:\n  retention:\n    hourly_days: 60\n    daily_days: 30\n", 4,
                 "store.retention.daily_days (30) must be 0 (forever) or at least hourly_days (60)", "",
                 id="daily-retention-order"),
    pytest.param("store:\n  url: postgresql+psycopg://aoai:hunter2@db/aoai\n", 2, "store.url contains a password",
                 "put it in AOAI_OBS_STORE__URL or use PGPASSWORD / a .pgpass file", id="password-in-url"),
    pytest.param("store:\n  url: postgresql+psycopg://aoai@db/aoai?password=hunter2\n", 2,
                 "store.url contains a password", "PGPASSWORD", id="password-in-query"),
    pytest.param("store:\n  url: mysql://db/aoai\n", 2, "store.url: 'mysql://db/aoai' is not a supported store URL",
                 "", id="unsupported-database"),
    pytest.param("demo:\n  days: 1\n  seed: 2\n  days: 3\n", 4, "demo.days is given twice (first at line 2)",
                 "keep one of them", id="duplicate-key"),
]


@pytest.mark.parametrize(("text", "line", "message", "hint"), BAD_FILES)
def test_each_mistake_is_reported_at_its_line(tmp_path: Path, text: str, line: int, message: str, hint: str) -> None:
    path = write(tmp_path, text)
    problems = problems_of(path)
    assert len(problems) == 1, problems
    (problem,) = problems
    assert (problem.path, problem.line) == (path, line)
    assert message in problem.message
    assert hint in problem.hint
    assert f"{path}:{line}: " in str(problem)


def test_a_password_is_never_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, "store:\n  url: mysql://aoai:hunter2@db/aoai\n")
    problems = problems_of(path)
    assert len(problems) == 2  # the password, and the unsupported database
    assert all("hunter2" not in str(p) for p in problems)


@pytest.mark.parametrize(("text", "line", "what"), [
    ("store:\n  url: [unclosed\n", 3, "expected ',' or ']'"),
    ("store:\n  url: x\n retention: 5\n", 3, "expected <block end>"),
    ("collector:\n\tlag: 5m\n", 2, "found character '\\t'"),
    ("demo: {days: 1\n", 2, "expected ',' or '}'"),
    ("a: 'unterminated\n", 2, "found unexpected end of stream"),
])
def test_yaml_syntax_errors_give_line_and_column(tmp_path: Path, text: str, line: int, what: str) -> None:
    path = write(tmp_path, text)
    (problem,) = problems_of(path)
    assert problem.path == path and problem.line == line
    assert re.search(r"invalid YAML at column \d+: ", problem.message)
    assert what in problem.message


@pytest.mark.parametrize(("text", "kind"), [("- store\n- demo\n", "list"), ("just words\n", "string"),
                                            ("42\n", "number")])
def test_a_top_level_that_is_not_a_mapping(tmp_path: Path, text: str, kind: str) -> None:
    path = write(tmp_path, text)
    (problem,) = problems_of(path)
    assert (problem.path, problem.line) == (path, 1)
    assert problem.message == f"the settings must be a mapping of sections, not a {kind}"


def test_a_missing_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path / "nope.yaml")
    assert problem.message == "settings file not found"
    assert "--config" in problem.hint


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "aoai-obs.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    (problem,) = problems_of(path)
    assert problem.message.startswith("cannot read the settings file")


def test_several_mistakes_are_all_reported_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, """
        sources:
          - name: demo
            kind: worksapce
            path: a.duckdb
          - name: other
            kind: workspace
            path: b.duckdb
            extra: 1
        store:
          url: postgresql+psycopg://me:secret@db/aoai
          retention:
            five_minute_days: 1
        colector:
          lag: 5m
        collector:
          lag: soon
          metrics_port: http
        demo:
          days: 0
    """)
    with pytest.raises(InputError) as caught:
        load_settings(path, {"AOAI_OBS_COLLECTOR__LAGG": "1m"})
    found = [(p.line, p.message.split(" (")[0]) for p in caught.value.problems]
    assert found == [
        (3, "unknown source kind 'worksapce'"),
        (8, "unknown setting 'extra' in sources[1]"),
        (10, "store.url contains a password; settings files must not hold secrets"),
        (12, "store.retention.five_minute_days: should be greater than or equal to 2"),
        (13, "unknown setting 'colector'"),
        (16, "collector.lag: 'soon' is not a duration: write e.g. 30s, 5m, 1h, 2d or PT5M"),
        (17, "collector.metrics_port: should be a valid integer, unable to parse string as an integer"),
        (19, "demo.days: should be greater than or equal to 1"),
        (None, "environment variable AOAI_OBS_COLLECTOR__LAGG names no setting"),
    ]
    text = str(caught.value)
    assert text.startswith(f"9 problem(s) in the settings ({path})")
    assert f"{path}:13: unknown setting 'colector' (did you mean 'collector'?)" in text
    assert "secret" not in text.replace("must not hold secrets", "")


# -- the environment ---------------------------------------------------------------------------------------------


def test_environment_overrides_file_values(tmp_path: Path) -> None:
    path = write(tmp_path, "collector:\n  lag: 10m\n  grain: 5m\nstore:\n  url: sqlite:///file.sqlite\n")
    settings = load_settings(path, {
        "AOAI_OBS_COLLECTOR__LAG": "15m",
        "AOAI_OBS_COLLECTOR__QUERIES": "requests, tokens,",
        "AOAI_OBS_COLLECTOR__METRICS_PORT": "9464",
        "AOAI_OBS_STORE__URL": "postgresql+psycopg://aoai:from-the-vault@db/aoai",
        "AOAI_OBS_STORE__RETENTION__HOURLY_DAYS": "500",
        "AOAI_OBS_DEMO__SEED": "3",
    })
    assert settings.collector.lag == timedelta(minutes=15)
    assert settings.collector.grain == timedelta(minutes=5)
    assert settings.collector.queries == ["requests", "tokens"]
    assert settings.collector.metrics_port == 9464
    assert settings.store.url == "postgresql+psycopg://aoai:from-the-vault@db/aoai"  # a password is fine from here
    assert settings.store.retention.hourly_days == 500
    assert settings.demo.seed == 3


def test_environment_overrides_without_a_file() -> None:
    settings = load_settings(None, {"AOAI_OBS_COLLECTOR__LAG": "PT15M"})
    assert settings.collector.lag == timedelta(minutes=15)


def test_other_variables_are_ignored() -> None:
    environ = {"AOAI_OBS_CONFIG": "x.yaml", "AOAI_OBS_TEST_POSTGRES_URL": "postgresql://x", "PATH": "/bin",
               "aoai_obs_collector__lag": "x"}
    assert load_settings(None, environ) == Settings()


@pytest.mark.parametrize(("name", "message", "hint"), [
    ("AOAI_OBS_STORE__URLL", "environment variable AOAI_OBS_STORE__URLL names no setting",
     "did you mean AOAI_OBS_STORE__URL?"),
    ("AOAI_OBS_COLECTOR__LAG", "environment variable AOAI_OBS_COLECTOR__LAG names no setting",
     "did you mean AOAI_OBS_COLLECTOR__LAG?"),
    ("AOAI_OBS_STORE__RETENTION", "environment variable AOAI_OBS_STORE__RETENTION names no setting",
     "did you mean AOAI_OBS_STORE__RETENTION__"),
    ("AOAI_OBS_SOURCES__0__PATH", "environment variable AOAI_OBS_SOURCES__0__PATH cannot set sources: it lives in "
     "the settings file only", ""),
    ("AOAI_OBS_ALERTS__SEARCH", "cannot set alerts", ""),
    ("AOAI_OBS_BUDGETS__WEBHOOK", "environment variable AOAI_OBS_BUDGETS__WEBHOOK names no setting",
     "did you mean AOAI_OBS_BUDGETS__WEBHOOK_"),
])
def test_an_unknown_override_is_a_problem(name: str, message: str, hint: str) -> None:
    (problem,) = problems_of(None, {name: "1"})
    assert (problem.path, problem.line) == (None, None)
    assert message in problem.message
    assert problem.hint.startswith(hint)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("AOAI_OBS_COLLECTOR__LAG", "soon", "environment variable AOAI_OBS_COLLECTOR__LAG: 'soon' is not a duration"),
    ("AOAI_OBS_DEMO__DAYS", "many", "environment variable AOAI_OBS_DEMO__DAYS: should be a valid integer"),
    ("AOAI_OBS_COLLECTOR__LOOKBACK", "7m", "environment variable AOAI_OBS_COLLECTOR__LOOKBACK: collector.lookback "
     "(7m) must be a multiple of grain (5m)"),
])
def test_a_bad_override_is_reported_against_the_variable(tmp_path: Path, name: str, value: str, message: str) -> None:
    path = write(tmp_path, "collector:\n  lag: 5m\n  lookback: 1h\ndemo:\n  days: 3\n")
    (problem,) = problems_of(path, {name: value})
    assert (problem.path, problem.line) == (None, None)
    assert problem.message.startswith(message)


# -- paths -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("sqlite:///store.sqlite", "sqlite:///{base}/store.sqlite"),
    ("sqlite:///../up/store.sqlite", "sqlite:///{parent}/up/store.sqlite"),
    ("sqlite+pysqlite:///store.sqlite?timeout=5", "sqlite+pysqlite:///{base}/store.sqlite?timeout=5"),
    ("sqlite:////abs/store.sqlite", "sqlite:////abs/store.sqlite"),
    ("sqlite:///:memory:", "sqlite:///:memory:"),
    ("sqlite://", "sqlite://"),
    ("postgresql+psycopg://aoai@db/aoai", "postgresql+psycopg://aoai@db/aoai"),
])
def test_sqlite_paths_resolve_against_the_config_folder(tmp_path: Path, url: str, expected: str) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(folder, f"store:\n  url: '{url}'\n")
    settings = load_settings(path, {})
    assert settings.store.url == expected.format(base=folder, parent=tmp_path)


def test_source_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = write(folder, """
        sources:
          - {name: here, kind: workspace, path: ws.duckdb}
          - {name: up, kind: workspace, path: ../data/ws.duckdb}
          - {name: abs, kind: workspace, path: /srv/ws.duckdb}
    """)
    settings = load_settings(path, {})
    assert [s.path for s in settings.sources] == [folder / "ws.duckdb", tmp_path / "data" / "ws.duckdb",
                                                  Path("/srv/ws.duckdb")]


def test_without_a_file_relative_paths_stay_relative_to_the_working_folder() -> None:
    settings = load_settings(None, {"AOAI_OBS_STORE__URL": "sqlite:///here.sqlite"})
    assert settings.store.url == "sqlite:///here.sqlite"


@pytest.mark.parametrize(("explicit", "env", "default_exists", "expected"), [
    ("given.yaml", "from-env.yaml", True, "given.yaml"),
    (None, "from-env.yaml", True, "from-env.yaml"),
    (None, "", True, "aoai-obs.yaml"),
    (None, None, True, "aoai-obs.yaml"),
    (None, None, False, None),
    ("/etc/aoai/obs.yaml", None, False, "/etc/aoai/obs.yaml"),
    ("missing.yaml", None, False, "missing.yaml"),  # an explicit path is returned even if missing: load says so
])
def test_find_config_precedence(tmp_path: Path, explicit: str | None, env: str | None, default_exists: bool,
                                expected: str | None) -> None:
    if default_exists:
        (tmp_path / "aoai-obs.yaml").write_text("", encoding="utf-8")
    environ = {} if env is None else {"AOAI_OBS_CONFIG": env}
    found = find_config(Path(explicit) if explicit else None, environ, tmp_path)
    assert found == (None if expected is None else tmp_path / expected)


# -- documentation -----------------------------------------------------------------------------------------------


def _leaf_fields(model: type[object], prefix: str) -> set[str]:
    from pydantic import BaseModel

    assert issubclass(model, BaseModel)
    found: set[str] = set()
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            found |= _leaf_fields(field.annotation, f"{prefix}{name}.")
        else:
            found.add(f"{prefix}{name}")
    return found


def test_every_setting_has_a_doc_with_help_text() -> None:
    docs = list(iter_setting_docs())
    paths = [d.path for d in docs]
    assert len(paths) == len(set(paths))
    source_fields = set().union(*(_leaf_fields(m, f"sources[{k}].") for k, m in SOURCE_KINDS.items()))
    assert _leaf_fields(Settings, "") | source_fields == set(paths)
    assert all(d.help and d.type and d.default for d in docs)
    lag = next(d for d in docs if d.path == "collector.lag")
    assert (lag.type, lag.default, lag.env) == ("duration", "`10m`", "AOAI_OBS_COLLECTOR__LAG")
    assert lag.help == CollectorSettings.model_fields["lag"].description


def test_every_documented_variable_is_accepted() -> None:
    for doc in iter_setting_docs():
        if doc.env and doc.type == "duration":
            load_settings(None, {doc.env: "1h"} if "grain" not in doc.env else {doc.env: "5m"})
        elif doc.env and doc.type == "integer":
            load_settings(None, {doc.env: "400" if doc.path.endswith("daily_days") else "40"})
        elif doc.env and doc.type == "path, optional":
            assert load_settings(None, {doc.env: "/etc/aoai-obs/x.yaml"}) is not None
        elif doc.env and doc.type == "boolean":
            load_settings(None, {doc.env: "false"})
        elif doc.env and doc.path in ("dashboards.timezone", "dashboards.host"):
            load_settings(None, {doc.env: "UTC"} if doc.path.endswith("timezone") else {doc.env: "0.0.0.0"})
        elif doc.env and doc.path in ("budgets.webhook_format", "budgets.webhook_url"):
            value = "teams" if doc.path.endswith("format") else "https://hooks.example.com/services/x"
            assert load_settings(None, {doc.env: value}) is not None
        elif doc.env and doc.path.startswith("bill."):
            value = "https://contoso.blob.core.windows.net/exports" if doc.path.endswith("source") else "x"
            assert getattr(load_settings(None, {doc.env: value}).bill, doc.path.split(".")[1]) is not None
        elif doc.env and doc.path == "prices.retail_endpoint":
            url = "https://prices.example.com/api/retail/prices"
            assert load_settings(None, {doc.env: url}).prices.retail_endpoint == url
        elif doc.env:
            assert doc.path in ("store.url", "collector.queries")


def test_the_retail_prices_endpoint_must_be_a_url() -> None:
    with pytest.raises(InputError) as caught:
        load_settings(None, {"AOAI_OBS_PRICES__RETAIL_ENDPOINT": "prices.azure.com"})
    assert "AOAI_OBS_PRICES__RETAIL_ENDPOINT" in str(caught.value) and "is not a URL" in str(caught.value)


def test_the_markdown_table_lists_every_setting() -> None:
    table = render_settings_markdown()
    rows = table.splitlines()
    assert rows[0] == "| Setting | Type | Default | Environment variable | Description |"
    assert len(rows) == 2 + len(list(iter_setting_docs()))
    assert "| `collector.lag` | duration | `10m` | `AOAI_OBS_COLLECTOR__LAG` |" in table


def test_python_m_collector_config_prints_the_table() -> None:
    result = subprocess.run([sys.executable, "-m", "collector.config", "--markdown"], cwd=REPO, capture_output=True,
                            text=True, check=True)
    assert result.stdout == render_settings_markdown()


def test_readme_settings_table_is_current() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert render_settings_markdown() in text, "regenerate the table: python -m collector.config --markdown"


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing: it needs a Configuration section (python -m collector.config " \
                             "--markdown prints the table)"
    lines = readme.read_text(encoding="utf-8").splitlines()
    start = next((i for i, line in enumerate(lines) if re.match(r"#+\s.*configuration", line, re.IGNORECASE)), None)
    assert start is not None, "README.md has no Configuration heading"
    level = len(lines[start]) - len(lines[start].lstrip("#"))
    end = next((i for i in range(start + 1, len(lines))
                if re.match(rf"#{{1,{level}}}\s", lines[i])), len(lines))
    section = "\n".join(lines[start:end])
    missing = [doc.path for doc in iter_setting_docs() if f"`{doc.path}`" not in section]
    assert not missing, f"README.md's configuration section does not mention: {', '.join(missing)}"
