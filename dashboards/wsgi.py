"""The WSGI app for production servers: `gunicorn 'dashboards.wsgi:server'` (settings from $AOAI_OBS_CONFIG, else
./aoai-obs.yaml, with AOAI_OBS_* overrides). The app is created on first access of `server`, not at import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_server: Any = None


def __getattr__(name: str) -> Any:
    global _server
    if name != "server":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if _server is None:
        from collector.config import find_config, load_settings
        from dashboards.app import create_app

        settings = load_settings(find_config(None, os.environ, Path.cwd()), os.environ)
        _server = create_app(settings).server
    return _server
