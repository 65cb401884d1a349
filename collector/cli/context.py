"""What every `aoai-obs` command shares: the settings loaded once, the store and cost job they open, time
arguments, and our errors turned into messages and exit codes."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import click

from collector.config import Settings, find_config, load_settings
from collector.cost.inventories import build_inventory
from collector.cost.job import CostJob
from collector.errors import InputError, ObservatoryError
from collector.store.database import Store


def utcnow() -> datetime:
    return datetime.now(UTC)


class Context:
    """What every command shares: where the settings come from, loaded on first use."""

    def __init__(self, config: Path | None, debug: bool) -> None:
        self.config = config
        self.debug = debug
        self.config_path: Path | None = None  # the file the settings were read from, once read
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            path = find_config(self.config, os.environ, Path.cwd())
            self.config_path = path
            self._settings = load_settings(path, os.environ)
        return self._settings

    def open_store(self) -> Store:
        return Store.open(self.settings.store.url)

    def cost_job(self) -> CostJob:
        """The cost and budget work that follows each pass; bad price book, rules, inventory or budget files stop
        the command before anything is collected."""
        return CostJob.from_settings(self.settings, build_inventory(self.settings).deployments())


class Group(click.Group):
    """Prints our errors as messages (with a traceback only under --debug) and picks the exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *(e.name for e in plugged_in())})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None:
            # Loaded only when asked for: the alerts group imports the Azure SDK, which other commands don't need.
            found = next((e for e in plugged_in() if e.name == name), None)
            command = found.load() if found is not None else None
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ObservatoryError as e:
            obj = ctx.obj if isinstance(ctx.obj, Context) else None
            if obj is not None and obj.debug:
                raise
            click.echo(f"error: {e}", err=True)
            ctx.exit(2 if isinstance(e, InputError) else 1)


def plugged_in() -> list[EntryPoint]:
    """Command groups other packages add (the `aoai_obs.commands` entry points)."""
    return list(entry_points(group="aoai_obs.commands"))


def parse_time(value: str, option: str) -> datetime:
    """ISO-8601 date or date-time; UTC when no offset is given; `now` for the present."""
    if value == "now":
        return utcnow()
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as e:
        raise InputError([], f"{option}: {value!r} is not an ISO-8601 time (e.g. 2025-01-31 or "
                             "2025-01-31T12:00:00Z)") from e
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
