"""The Reports page's choice of month and team from a link, and the months the daily cost table offers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.store import reads
from collector.store.database import Store
from dashboards.context import Context
from dashboards.pages import reports
from tests.dashboards.store_rows import COST_COLUMNS, COST_ROWS, D0, fill_costs
from tests.dashboards.test_cost_page import INVENTORY, settings

APRIL = datetime(2025, 4, 10, 12, 0, tzinfo=UTC)


def test_the_months_offered_and_the_month_a_link_chooses(store: Store, tmp_path: Path) -> None:
    assert reads.cost_months(store) == []
    empty = Context(store, settings(tmp_path), INVENTORY, lambda: APRIL)
    assert reports.choose(empty, "", "").month == ""
    assert reports.preview(empty, "", "").html == ""
    fill_costs(store)  # 2025-03-01 .. 03-03
    late = [dict(zip(COST_COLUMNS, (D0 + timedelta(days=60), *COST_ROWS[0][1:]), strict=True))]  # 2025-04-30
    store.replace_cost_days(D0 + timedelta(days=60), D0 + timedelta(days=61), late, "fixture", APRIL)
    assert reads.cost_months(store) == [datetime(2025, 4, 1, tzinfo=UTC), datetime(2025, 3, 1, tzinfo=UTC)]
    ctx = Context(store, settings(tmp_path), INVENTORY, lambda: APRIL)
    default = reports.choose(ctx, "", "")
    assert (default.labels, default.month, default.team) == (["2025-04", "2025-03"], "2025-03", None)  # complete
    linked = reports.choose(ctx, "?team=search&team=ads", "#month=2025-04")
    assert (linked.month, linked.team) == ("2025-04", "search")
    shown = reports.preview(ctx, "?team=search&team=ads", "#month=2025-04")
    assert (shown.month, shown.html) == ("2025-04", "")  # no rollups collected: the page says why, not a traceback
    assert shown.note.startswith("nothing is collected yet")
    assert reports.choose(ctx, "", "#month=nonsense").month == "2025-03"  # a bad hash falls back to the default
