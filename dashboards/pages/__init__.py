"""The pages, one module each: a `Page` says where it lives, how to lay it out and how to wire its callbacks.

To add a page, write `dashboards/pages/<name>.py` with a module-level `PAGE` and list it in `PAGES`; the navigation
and the router pick it up. A layout must not read data (callbacks do), so it can also serve as validation layout.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from dash import Dash
from dash.development.base_component import Component

from dashboards.context import Context
from dashboards.filters import Filters
from dashboards.tables import Column


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    #: Who the page is for, shown under the title in the navigation.
    audience: str
    layout: Callable[[Context, Filters], Component]
    register_callbacks: Callable[[Dash, Context], None]
    #: The page's tables (id -> columns), for their CSV downloads.
    tables: Mapping[str, Sequence[Column]] = field(default_factory=dict)
    #: Whether the page applies the team filter (the filter bar disables it elsewhere, keeping its value).
    team_filter: bool = False


def pages() -> tuple[Page, ...]:
    """Every page, in navigation order; the first also answers `/`."""
    from dashboards.pages.cost import PAGE as COST
    from dashboards.pages.operations import PAGE as OPERATIONS
    from dashboards.pages.reports import PAGE as REPORTS

    return (OPERATIONS, COST, REPORTS)
