"""The pages, one module each.

To add a page, write `dashboards/pages/<name>.py` with a module-level `PAGE` (a `dashboards.page.Page`) and list it
in `pages()`; the navigation and the router pick it up.
"""

from __future__ import annotations

from dashboards.page import Page
from dashboards.pages.cost import PAGE as COST
from dashboards.pages.operations import PAGE as OPERATIONS
from dashboards.pages.reports import PAGE as REPORTS


def pages() -> tuple[Page, ...]:
    """Every page, in navigation order; the first also answers `/`."""
    return (OPERATIONS, COST, REPORTS)
