"""What a page is: where it lives, how to lay it out and wire its callbacks, its tables and filters.

A layout must not read data (callbacks do), so it can also serve as validation layout.
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
