"""Every shipped .kql file checked by Microsoft's Kusto.Language against the real table schemas, and its result
columns held equal to what the embedded workspace returns.

The embedded engine matches names case-insensitively, so `DurationMS` would pass here and fail in Azure; Microsoft's
parser (tests/kqlcheck, node) does not. Needs node and npm: skipped with a reason on a laptop without them, required
in CI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.rollups.kql import KqlQuery, load_queries, window_prelude
from collector.workspace.engine import Workspace
from collector.workspace.schema import LOG_TABLES
from tests.conftest import unavailable

KQLCHECK = Path(__file__).parent / "kqlcheck"
PACKAGE = "@kusto/language-service-next"
REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "log-analytics-tables.json"
REFERENCE_META_KEYS = {"_about", "_unconfirmed"}
#: Reference tables the embedded workspace does not carry (no shipped query reads them). Listed rather than
#: inferred, so a table newly added to the reference is a decision, not a silent omission.
NOT_CARRIED = {"AzureMetricsV2"}

PRELUDE = window_prelude(datetime(2025, 3, 3, 12, 0, tzinfo=UTC), datetime(2025, 3, 3, 13, 0, tzinfo=UTC),
                         timedelta(minutes=5))
PRELUDE_LINES = PRELUDE.count("\n")

#: Error: Azure refuses the query. Warning: Kusto.Language reports some unresolved names only as warnings (KS179 an
#: unknown operator parameter, KS205 a fuzzy name, KS207 an unreachable cluster), and its other warnings mean "runs,
#: but not as written". Suggestion, Information and Hidden are style and performance advice: not failures.
FAILING_SEVERITIES = frozenset({"Error", "Warning"})

QUERIES = load_queries()

#: (id, query text after the prelude, expected failing diagnostics as (code, line, column) in that text).
PROBES: list[tuple[str, str, list[tuple[str, int, int]]]] = [
    ("wrong-case column", "AzureDiagnostics\n| where DurationMS > 0", [("KS142", 2, 9)]),
    ("unknown table", "AzureDiagnostic\n| take 1", [("KS204", 1, 1)]),
    ("correct query", "AzureDiagnostics\n| where DurationMs > 0\n| project TimeGenerated, DurationMs", []),
]

Verdict = dict[str, Any]


def checker_input(queries: list[tuple[str, str]]) -> dict[str, Any]:
    """The request for tests/kqlcheck/check.js: the schema every query is analysed against, and the queries."""
    return {"tables": LOG_TABLES, "queries": [{"name": n, "text": t} for n, t in queries]}


def _pinned_version() -> str:
    version: str = json.loads((KQLCHECK / "package.json").read_text(encoding="utf-8"))["dependencies"][PACKAGE]
    return version


def _installed_version() -> str | None:
    manifest = KQLCHECK / "node_modules" / PACKAGE / "package.json"
    if not manifest.exists():
        return None
    version: str = json.loads(manifest.read_text(encoding="utf-8"))["version"]
    return version


@pytest.fixture(scope="session")
def kql_checker() -> Callable[[list[tuple[str, str]]], dict[str, Verdict]]:
    """Run Microsoft's parser over (name, text) pairs in one node process; installs the pinned package once."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm are needed to run Microsoft's KQL parser (tests/kqlcheck); install Node.js")
    assert node is not None and npm is not None
    # node_modules is kept between runs (and ignored by git); reinstall only when the pin moved.
    if _installed_version() != _pinned_version():
        install = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=KQLCHECK, capture_output=True,
                                 text=True, check=False)
        if install.returncode != 0:
            pytest.fail(f"`npm ci` in {KQLCHECK} failed:\n{install.stdout}\n{install.stderr}")

    def check(queries: list[tuple[str, str]]) -> dict[str, Verdict]:
        run = subprocess.run([node, str(KQLCHECK / "check.js")], input=json.dumps(checker_input(queries)),
                             capture_output=True, text=True, timeout=120, check=False)
        if run.returncode != 0:
            pytest.fail(f"tests/kqlcheck/check.js failed:\n{run.stderr}")
        return {r["name"]: r for r in json.loads(run.stdout)["results"]}

    return check


@pytest.fixture(scope="session")
def verdicts(kql_checker: Callable[[list[tuple[str, str]]], dict[str, Verdict]]) -> dict[str, Verdict]:
    """Shipped queries, probes and one bare query per table, all checked by a single node process."""
    batch = [(q.name, PRELUDE + q.text) for q in QUERIES]
    batch += [(f"probe/{name}", PRELUDE + text) for name, text, _ in PROBES]
    batch += [(f"table/{table}", table) for table in LOG_TABLES]
    return kql_checker(batch)


def failures(verdict: Verdict) -> list[dict[str, Any]]:
    return [d for d in verdict["diagnostics"] if d["severity"] in FAILING_SEVERITIES]


def located(diagnostic: dict[str, Any], path: Path | str) -> str:
    """`file:line:column: ...` in the query file, the prelude's lines taken off."""
    line = diagnostic["line"] - PRELUDE_LINES
    where = f"{path}:{line}:{diagnostic['column']}" if line > 0 else f"{path}: prelude line {diagnostic['line']}"
    return f"{where}: {diagnostic['severity']} {diagnostic['code']}: {diagnostic['message']}"


def columns(verdict: Verdict) -> list[tuple[str, str]] | None:
    found = verdict["columns"]
    return None if found is None else [(c["name"], c["type"]) for c in found]


@pytest.mark.node
@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_query_passes_microsofts_parser(verdicts: dict[str, Verdict], query: KqlQuery) -> None:
    problems = [located(d, query.path) for d in failures(verdicts[query.name])]
    assert not problems, "Microsoft's KQL parser refuses this query:\n" + "\n".join(problems)


@pytest.mark.node
@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_query_columns_match_the_workspace(verdicts: dict[str, Verdict], query: KqlQuery, tmp_path: Path) -> None:
    azure = columns(verdicts[query.name])
    assert azure is not None, f"{query.path}: the query's last statement is not tabular"
    workspace = Workspace(tmp_path / "workspace.duckdb")
    workspace.create()
    embedded = [(c.name, c.type) for c in workspace.query(PRELUDE + query.text).columns]
    assert embedded == azure, f"{query.path}: the embedded workspace's result columns differ from Azure's"


@pytest.mark.node
@pytest.mark.parametrize(("name", "text", "expected"), PROBES, ids=[p[0] for p in PROBES])
def test_checker_flags_what_azure_refuses(verdicts: dict[str, Verdict], name: str, text: str,
                                          expected: list[tuple[str, int, int]]) -> None:
    verdict = verdicts[f"probe/{name}"]
    found = [(d["code"], d["line"] - PRELUDE_LINES, d["column"]) for d in failures(verdict)]
    assert found == expected
    if not expected:
        assert columns(verdict) == [("TimeGenerated", "datetime"), ("DurationMs", "long")]


@pytest.mark.node
@pytest.mark.parametrize("table", list(LOG_TABLES))
def test_checker_is_given_exactly_log_tables(verdicts: dict[str, Verdict], table: str) -> None:
    assert checker_input([])["tables"] is LOG_TABLES
    # What the parser saw, read back through the analysis itself: every column, in order, with its type.
    verdict = verdicts[f"table/{table}"]
    assert failures(verdict) == []
    assert columns(verdict) == list(LOG_TABLES[table].items())


def test_log_tables_match_the_reference() -> None:
    if not REFERENCE.exists():
        pytest.skip(f"{REFERENCE} is absent (it lives in shared/, beside the clone)")
    reference = json.loads(REFERENCE.read_text(encoding="utf-8"))
    assert NOT_CARRIED.issubset(reference), "NOT_CARRIED names a table the reference no longer has"
    tables = {t: cols for t, cols in reference.items() if t not in REFERENCE_META_KEYS | NOT_CARRIED}
    assert sorted(LOG_TABLES) == sorted(tables)
    for table, cols in tables.items():
        assert list(LOG_TABLES[table].items()) == list(cols.items()), f"{table} differs from {REFERENCE}"
