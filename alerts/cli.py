"""`aoai-obs alerts validate | plan | apply`: the click group; options only (the root command wires settings).

Stacks: `--stack` (else $AOAI_OBS_ALERTS_STACK, else `default`) names the stack whose rules plan, apply and prune
see; the stack is carried in the ownership tag, and rules of other stacks are listed apart, never changed. The
variable has a single underscore before STACK on purpose: the collector's settings loader treats every
`AOAI_OBS_<SECTION>__<KEY>` variable as a setting and refuses `alerts` ones (alerts has no settings of its own), so
a double-underscore name would break `aoai-obs collect` wherever it is exported.

Scopes: by default the resource groups the YAML's rules live in, each listed once (`--subscription` picks one
subscription; `--resource-group`, repeatable, names the resource groups instead, e.g. to prune the last rules of a
group the files no longer use; rules outside the chosen scope are skipped, and said so). When the files define no
rules, `--subscription` alone lists that whole subscription.

Exit codes are `alerts.plan`'s: 0 in sync / applied, 1 an error (printed without a traceback, usage errors
included), 2 changes pending, 3 conflicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from alerts.apply import apply as apply_plan
from alerts.arm import ENDPOINT, MetricAlertsClient
from alerts.catalog import DEFAULT_STACK, stack_problem
from alerts.errors import AlertsError
from alerts.model import RuleEssence, essence_from_spec
from alerts.plan import EXIT_CONFLICTS, EXIT_ERROR, MAX_CHANGES, Plan, exit_code, plan, render_json, render_text
from alerts.spec import load_rule_set


def credential() -> Any:
    """The token credential for ARM; None lets the client use DefaultAzureCredential (tests replace this)."""
    return None


class AlertsGroup(click.Group):
    """Prints AlertsError and usage errors as one message and exits 1 (2 means "changes pending" here)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            e.show()
            ctx.exit(EXIT_ERROR)
        except AlertsError as e:
            click.echo(f"error: {e}", err=True)
            ctx.exit(EXIT_ERROR)


STACK_ENV = "AOAI_OBS_ALERTS_STACK"


def _stack(ctx: click.Context, param: click.Parameter, value: str) -> str:
    problem = stack_problem(value)
    if problem is not None:
        raise click.BadParameter(problem, ctx, param)
    return value


FILES = click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False,
                                                                          path_type=Path))


def _arm_options(function: Any) -> Any:
    for option in reversed((
        click.option("--subscription", help="List and reconcile this subscription only (default: every "
                                            "subscription the rules live in)."),
        click.option("--resource-group", "resource_groups", multiple=True,
                     help="List and reconcile this resource group (repeatable; default: the resource groups the "
                          "rules live in)."),
        click.option("--stack", envvar=STACK_ENV, default=DEFAULT_STACK, show_default=True, callback=_stack,
                     help=f"The stack whose rules to reconcile; other stacks' rules are never changed "
                          f"(else ${STACK_ENV})."),
        click.option("--endpoint", default=ENDPOINT, show_default=True, help="ARM endpoint."),
        click.option("--audience", help="Token audience (default: the endpoint)."),
        click.option("--ca-bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="CA bundle to trust for the endpoint."),
        click.option("--prune", is_flag=True, help="Delete managed rules the YAML no longer has."),
        click.option("--adopt", is_flag=True, help="Take over unmanaged rules that have a desired rule's name."),
    )):
        function = option(function)
    return function


@click.group(cls=AlertsGroup)
def alerts() -> None:
    """Alert rules as code: YAML -> Azure Monitor metric alerts for Azure OpenAI."""


@alerts.command()
@FILES
def validate(files: tuple[Path, ...]) -> None:
    """Check rule files; report every problem with file, line and a fix."""
    rule_set = load_rule_set(list(files))
    click.echo(f"{len(rule_set.rules)} rule(s) valid in {len(files)} file(s).")


Scope = tuple[str, str | None]  # (subscription, resource group); None lists the whole subscription


def _desired(files: Sequence[Path], subscription: str | None,
             resource_groups: Sequence[str]) -> tuple[list[RuleEssence], list[Scope]]:
    """The desired rules within the chosen scope, and the scopes to list: by default the resource groups the rules
    live in, so that a team's files never see (let alone prune) rules of resource groups they do not target."""
    desired = [essence_from_spec(r) for r in load_rule_set(list(files)).rules]
    if subscription:
        subscriptions = [subscription.lower()]
    else:
        subscriptions = sorted({e.subscription_id for e in desired})
        if not subscriptions:
            raise AlertsError("the files define no rules: pass --subscription (and --resource-group) to name the "
                              "scope to compare with")
    groups = sorted({g.lower() for g in resource_groups})
    chosen = [e for e in desired if e.subscription_id in subscriptions
              and (not groups or e.resource_group in groups)]
    if len(chosen) < len(desired):
        click.echo(f"note: {len(desired) - len(chosen)} rule(s) outside the chosen scope are skipped", err=True)
    scopes: list[Scope]
    if groups:
        scopes = [(s, g) for s in subscriptions for g in groups]
    elif chosen:
        scopes = sorted({(e.subscription_id, e.resource_group) for e in chosen})
    else:
        scopes = [(s, None) for s in subscriptions]
    return chosen, scopes


def _plan(client: MetricAlertsClient, files: Sequence[Path], subscription: str | None,
          resource_groups: Sequence[str], prune: bool, adopt: bool, stack: str) -> Plan:
    desired, scopes = _desired(files, subscription, resource_groups)
    existing = [rule for sub, group in scopes for rule in client.list_rules(sub, group)]
    return plan(desired, existing, prune=prune, adopt=adopt, stack=stack)


def _client(endpoint: str, audience: str | None, ca_bundle: Path | None) -> MetricAlertsClient:
    return MetricAlertsClient(credential(), endpoint=endpoint, audience=audience, ca_bundle=ca_bundle)


@alerts.command(name="plan")
@FILES
@_arm_options
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.pass_context
def plan_command(ctx: click.Context, files: tuple[Path, ...], subscription: str | None,
                 resource_groups: tuple[str, ...], stack: str, endpoint: str, audience: str | None,
                 ca_bundle: Path | None, prune: bool, adopt: bool, as_json: bool) -> None:
    """Show what apply would change; exit 0 in sync, 2 changes pending, 3 conflicts."""
    with _client(endpoint, audience, ca_bundle) as client:
        result = _plan(client, files, subscription, resource_groups, prune, adopt, stack)
    click.echo(render_json(result) if as_json else render_text(result), nl=False)
    ctx.exit(exit_code(result))


@alerts.command(name="apply")
@FILES
@_arm_options
@click.option("--force", is_flag=True, help="Apply even a plan that changes many existing rules, or deletes more "
                                           "than half (or all) of the stack's rules.")
@click.option("--max-changes", type=click.IntRange(min=0), default=MAX_CHANGES, show_default=True,
              help="Most existing rules an apply may update or delete without --force.")
@click.pass_context
def apply_command(ctx: click.Context, files: tuple[Path, ...], subscription: str | None,
                  resource_groups: tuple[str, ...], stack: str, endpoint: str, audience: str | None,
                  ca_bundle: Path | None, prune: bool, adopt: bool, force: bool, max_changes: int) -> None:
    """Create and update rules, then (with --prune) delete managed rules the YAML no longer has."""
    with _client(endpoint, audience, ca_bundle) as client:
        result = _plan(client, files, subscription, resource_groups, prune, adopt, stack)
        click.echo(render_text(result), nl=False)
        if result.conflicts:
            click.echo("error: conflicts: nothing applied (rename the rules, or pass --adopt to take over unmanaged "
                       "ones; rules of other stacks are never taken over)", err=True)
            ctx.exit(EXIT_CONFLICTS)
        report = apply_plan(result, client, prune=prune, force=force, max_changes=max_changes)
    click.echo(report.render(), nl=False)
