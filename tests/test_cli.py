"""The aoai-obs command, run in-process: results on stdout, helpful errors with no traceback, exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli.main import main
from tests.test_collect_golden import build_workspace


@pytest.fixture
def config(tmp_path: Path) -> Path:
    build_workspace(tmp_path / "ws.duckdb")
    path = tmp_path / "aoai-obs.yaml"
    path.write_text(
        "sources:\n  - name: golden\n    kind: workspace\n    path: ws.duckdb\n"
        "store:\n  url: sqlite:///store.sqlite\n",
        encoding="utf-8",
    )
    return path


def run(*args: str, input: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_query_from_stdin_as_csv(config: Path) -> None:
    code, out, _ = run("--config", str(config), "query", "-", "--format", "csv",
                       input='AzureDiagnostics | where Category == "RequestResponse" '
                             "| summarize n = count() by ResultSignature | order by ResultSignature asc")
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [["ResultSignature", "n"], ["200", "6"], ["400", "1"],
                                                   ["429", "1"], ["500", "1"]]


def test_production_query_binds_its_window_and_prints_log_analytics_json(config: Path) -> None:
    code, out, _ = run("--config", str(config), "query", str(Path("queries/requests_by_status.kql").resolve()),
                       "--from", "2025-03-03T10:00:00Z", "--to", "2025-03-03T10:15:00Z", "--format", "json")
    assert code == 0
    table = json.loads(out)["tables"][0]
    assert table["columns"][0] == {"name": "TimeGenerated", "type": "datetime"}
    assert sum(row[3] for row in table["rows"]) == 6  # Requests over the window, from the golden dataset


def test_production_query_without_a_window_says_how_to_bind_it(config: Path) -> None:
    code, _, err = run("--config", str(config), "query", str(Path("queries/apim_tokens.kql").resolve()))
    assert code == 2
    assert "give --from" in err
    assert "Traceback" not in err


def test_a_bad_query_is_a_message_not_a_traceback(config: Path) -> None:
    code, _, err = run("--config", str(config), "query", "-", input="AzureDiagnostics | summarize by")
    assert code == 1
    assert err.startswith("error: the KQL query was refused")
    assert "Traceback" not in err


def test_a_bad_settings_file_reports_every_problem_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("store:\n  urll: sqlite:///x.sqlite\ncollector:\n  lag: soon\n", encoding="utf-8")
    code, _, err = run("--config", str(bad), "status")
    assert code == 2
    assert f"{bad}:2" in err and "did you mean 'url'" in err
    assert f"{bad}:4" in err
    assert "Traceback" not in err


def test_collect_once_then_status(config: Path) -> None:
    code, _, _ = run("--config", str(config), "collect", "backfill", "--since", "2025-03-03T09:00:00Z",
                     "--until", "2025-03-03T11:00:00Z")
    assert code == 0
    code, out, _ = run("--config", str(config), "status")
    assert code == 0
    assert "golden/requests_by_status: watermark 2025-03-03T11:00:00+00:00" in out
    assert "missing 2025-03-03T11:00:00+00:00" in out  # everything since then is not collected yet


def test_unknown_job_names_the_known_ones(config: Path) -> None:
    code, _, err = run("--config", str(config), "collect", "once", "--job", "requests")
    assert code == 2
    assert "requests_by_status" in err


def test_import_with_bad_lines_imports_nothing_and_lists_them(tmp_path: Path) -> None:
    folder = tmp_path / "insights-logs-requestresponse" / "resourceId=" / "SUBSCRIPTIONS" / "S" / "RESOURCEGROUPS" / (
        "RG") / "PROVIDERS" / "MICROSOFT.COGNITIVESERVICES" / "ACCOUNTS" / "A" / "y=2025" / "m=01" / "d=01" / (
        "h=00") / "m=00"
    folder.mkdir(parents=True)
    good = {"time": "2025-01-01T00:01:00.0000000Z", "category": "RequestResponse", "resultSignature": "200",
            "resourceId": "/SUBSCRIPTIONS/S/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COGNITIVESERVICES/ACCOUNTS/A",
            "properties": {"modelDeploymentName": "d"}}
    (folder / "PT1H.json").write_text(json.dumps(good) + "\n{not json\n" + json.dumps(good) + "\n[1]\n",
                                      encoding="utf-8")
    workspace = tmp_path / "imported.duckdb"
    code, _, err = run("workspace", "import", str(tmp_path / "insights-logs-requestresponse"),
                       "--workspace", str(workspace))
    assert code == 2
    assert "PT1H.json:2" in err and "PT1H.json:4" in err
    code, out, _ = run("query", "-", "--workspace", str(workspace), "--format", "csv",
                       input="AzureDiagnostics | count")
    assert (code, out.splitlines()) == (0, ["Count", "0"])


def test_the_alerts_group_is_plugged_into_aoai_obs(tmp_path: Path) -> None:
    pack = Path("alerts/pack/azure-openai.yaml").resolve()
    environment = Path("tests/alerts/fixtures/environment.yaml").resolve()
    code, out, _ = run("alerts", "validate", str(pack), str(environment))
    assert (code, out.strip()) == (0, "15 rule(s) valid in 2 file(s).")

    bad = tmp_path / "rules.yaml"
    bad.write_text("rules:\n  - name: x\n    metrik: AzureOpenAIRequests\n", encoding="utf-8")
    code, out, err = run("alerts", "validate", str(environment), str(bad))
    assert code == 1
    assert f"{bad}:3" in out + err and "did you mean 'metric'" in out + err
    assert "Traceback" not in out + err
