"""The Dash app factory: `create_app(settings)` opens the store and wires the shell and every page; no I/O at import.

Production servers take the WSGI app from `dashboards.wsgi:server`; `aoai-obs serve` runs it under waitress.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from dash import Dash, html
from flask import Flask, Response

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
    add_security_headers(app)
    return app


def content_security_policy(app: Dash) -> str:
    """Scripts only from the app itself, plus Dash's one inline script by its hash (`Dash.csp_hashes`): no
    'unsafe-inline' and no 'unsafe-eval' for scripts. Styles need 'unsafe-inline': plotly.js adds <style> elements
    and React sets style attributes, and the report preview (an srcdoc iframe, which takes this policy) carries its
    own <style>. Nothing may frame the dashboards."""
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' {' '.join(app.csp_hashes())}",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def add_security_headers(app: Dash) -> None:
    """Every response of the app's server carries the policy, refuses framing and MIME sniffing, and sends no
    referrer off the site."""
    headers = {"Content-Security-Policy": content_security_policy(app), "X-Frame-Options": "DENY",
               "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}

    def secure(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response

    server: Flask = app.server
    server.after_request(secure)
