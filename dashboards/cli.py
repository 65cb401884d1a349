"""`aoai-obs serve`: the dashboards under waitress (a pure-Python production WSGI server), plugged into the root
command through the `aoai_obs.commands` entry point, so the collector never imports the dashboards."""

from __future__ import annotations

import logging
from typing import Any

import click

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", help="Address to listen on [default: dashboards.host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), help="Port to listen on [default: dashboards.port, 8050].")
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True, help="Worker threads.")
@click.pass_obj
def serve(obj: Any, host: str | None, port: int | None, threads: int) -> None:
    """Serve the dashboards (for gunicorn use `gunicorn 'dashboards.wsgi:server'`)."""
    import waitress

    from dashboards.app import create_app

    settings = obj.settings
    host = host or settings.dashboards.host
    port = port or settings.dashboards.port
    app = create_app(settings)
    log.info("dashboards on http://%s:%d/ (times in %s); Ctrl-C stops", host, port, settings.dashboards.timezone)
    waitress.serve(app.server, host=host, port=port, threads=threads, ident="aoai-observatory")
