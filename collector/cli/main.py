"""The `aoai-obs` root command: settings and logging options, the command groups of this package, and those other
packages plug in (`aoai_obs.commands` entry points)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from collector.cli.bill import bill, reconcile
from collector.cli.collect import collect, status
from collector.cli.context import Context, Group
from collector.cli.cost import budgets, cost, export
from collector.cli.demo import demo
from collector.cli.prices import prices
from collector.cli.report import report
from collector.cli.workspace import query, workspace


@click.group(cls=Group)
@click.option("--config", type=click.Path(path_type=Path), help="Settings file (else $AOAI_OBS_CONFIG, "
              "else ./aoai-obs.yaml, else built-in defaults).")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def main(ctx: click.Context, config: Path | None, debug: bool) -> None:
    """aoai-observatory: collect Azure OpenAI telemetry into rollups, for cost, operations and alerts."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not debug:
        logging.getLogger("alembic").setLevel(logging.WARNING)
    ctx.obj = Context(config, debug)


for command in (workspace, query, collect, status, demo, export, cost, budgets, report, prices, bill, reconcile):
    main.add_command(command)

if __name__ == "__main__":
    main()
