"""The Dash app factory: `create_app(settings)` opens the store and wires the shell and every page; no I/O at import.

Production servers take the WSGI app from `dashboards.wsgi:server`; `aoai-obs serve` runs it under waitress.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from dash import Dash, html

from collector.config import Settings
from collector.cost.inventories import build_inventory
from collector.store.database import Store
from dashboards.context import Context, DeploymentLookup, utcnow
from dashboards.filters import Filters
from dashboards.layout import register_shell_callbacks, shell
from dashboards.pages import pages
from dashboards.tables import register_callbacks as register_table_callbacks

ASSETS = Path(__file__).with_name("assets")


def create_app(settings: Settings, store: Store | None = None, *, inventory: DeploymentLookup | None = None,
               now: Callable[[], datetime] = utcnow) -> Dash:
    """The dashboards over `store` (default: the settings' store, which must be at the newest schema: the
    dashboards only read, so the collector migrates it). `inventory` gives models and capacities (default: the one
    the settings describe, built once here); `now` is the clock."""
    if store is None:
        store = Store.open(settings.store.url, migrate_schema=False)
    if inventory is None:
        inventory = build_inventory(settings)
    context = Context(store, settings, inventory, now)
    every = pages()
    app = Dash(__name__, title="aoai-observatory", assets_folder=str(ASSETS), update_title="")
    app.layout = shell(every)
    # Every page's components, so callbacks are checked against them though only one page is drawn at a time.
    app.validation_layout = html.Div(  # type: ignore[assignment]  # Dash types it as None
        [shell(every), *(p.layout(context, Filters()) for p in every)])
    register_shell_callbacks(app, context, every)
    for page in every:
        page.register_callbacks(app, context)
    register_table_callbacks(app, {table: columns for p in every for table, columns in p.tables.items()})
    return app
