"""The operations page's callback work (`view`) and the app wiring, on the hand-counted store (SQLite, PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.cli.main import main
from collector.config import load_settings
from collector.store.database import Store
from dashboards.app import create_app
from dashboards.context import Context, NoInventory
from dashboards.filters import Filters, parse_query
from dashboards.pages.operations import GRAPHS, view
from tests.dashboards.store_rows import NOW, T0, fill, fill_costs

END = T0 + timedelta(hours=2)
RANGE = Filters(range="custom", start=T0.isoformat(), end=END.isoformat())


def context(store: Store) -> Context:
    return Context(fill(store), load_settings(None, {}), NoInventory(), lambda: NOW)


def figure_total(figure: dict[str, object]) -> float:
    return sum(sum(v for v in trace["y"] if v is not None) for trace in figure["data"])  # type: ignore[attr-defined]


def test_view_totals_equal_the_stores(store: Store) -> None:
    shown = view(context(store), RANGE)
    assert dict((label, value) for label, value, _ in shown.kpis)["Requests"] == "29"
    assert figure_total(shown.figures["ops-requests"]) == 29
    assert sum(r["requests"] for r in shown.table) == 29
    assert [r["deployment"] for r in shown.table] == ["gpt-4o", "embed", "gpt-4o-ptu"]
    assert set(shown.figures) == set(GRAPHS)
    assert shown.note[0].startswith("2025-03-03 10:00 – 2025-03-03 12:00 (UTC) · one point per 5 min")


def test_view_follows_the_filters(store: Store) -> None:
    ctx = context(store)
    only = view(ctx, Filters(range="custom", start=T0.isoformat(), end=END.isoformat(), deployments=("gpt-4o",)))
    assert figure_total(only.figures["ops-requests"]) == 15
    assert [r["deployment"] for r in only.table] == ["gpt-4o"]
    nothing = view(ctx, Filters(range="1h"))  # NOW is 10 minutes after the data ends
    assert figure_total(nothing.figures["ops-requests"]) == 0
    assert nothing.table == []
    assert nothing.figures["ops-requests"]["layout"]["annotations"][0]["text"].startswith("No requests")


def test_the_team_filter_shows_the_deployments_the_team_used(store: Store) -> None:
    ctx = context(store)
    fill_costs(store)  # on 2025-03-03 "search" ran on gpt-4o and gpt-4o-ptu
    search = view(ctx, Filters(range="custom", start=T0.isoformat(), end=END.isoformat(), teams=("search",)))
    assert sorted(r["deployment"] for r in search.table) == ["gpt-4o", "gpt-4o-ptu"]
    assert figure_total(search.figures["ops-requests"]) == 21
    assert any(line.startswith("Team search: every request of the deployments") for line in search.note)


def test_view_reports_bad_url_values(store: Store) -> None:
    shown = view(context(store), parse_query("?range=3w&from=x"))
    assert any("range '3w'" in line for line in shown.note)


@pytest.fixture
def app_store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    yield fill(opened)
    opened.close()


def test_the_app_serves_its_layout_and_draws_through_its_callback(app_store: Store) -> None:
    app = create_app(load_settings(None, {}), app_store, now=lambda: NOW)
    client = app.server.test_client()
    assert client.get("/").status_code == 200
    layout = client.get("/_dash-layout")
    assert layout.status_code == 200 and b"filter-deployment" in layout.data
    callbacks = json.loads(client.get("/_dash-dependencies").data)
    draw = next(c for c in callbacks if "ops-requests.figure" in c["output"])
    outputs = [o.rsplit(".", 1) for o in draw["output"].strip(".").split("...")]
    body = {"output": draw["output"],
            "outputs": [{"id": json.loads(i) if i.startswith("{") else i, "property": prop} for i, prop in outputs],
            "inputs": [{"id": "url", "property": "search", "value": f"?from={T0:%Y-%m-%dT%H:%M}Z&to="
                                                                    f"{END:%Y-%m-%dT%H:%M}Z"}],
            "changedPropIds": ["url.search"], "state": []}
    response = client.post("/_dash-update-component", json=body)
    assert response.status_code == 200, response.data[:500]
    figure = json.loads(response.data)["response"]["ops-requests"]["figure"]
    assert figure_total(figure) == 29


def test_the_wsgi_server_is_created_on_first_use(app_store: Store, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import dashboards.wsgi as wsgi

    config = tmp_path / "aoai-obs.yaml"
    config.write_text(f"store:\n  url: {app_store.engine.url}\n", encoding="utf-8")
    monkeypatch.setenv("AOAI_OBS_CONFIG", str(config))
    monkeypatch.setattr(wsgi, "_server", None)
    assert wsgi._server is None  # importing created nothing
    server = wsgi.server
    assert server.test_client().get("/").status_code == 200
    assert wsgi.server is server


def test_serve_is_plugged_into_the_root_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert "serve" in result.output
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0 and "gunicorn 'dashboards.wsgi:server'" in result.output
