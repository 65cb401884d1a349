"""The estimate apart from what cost surfaces read: `cost_estimate_daily` (telemetry x price book) gets the rows
`cost_daily` held, and `cost_daily` gains `basis` (`estimate`, or `billed` where the bill is allocated to teams).

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.migrations.frozen import cost_daily_columns_0003

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = ("day", "account", "deployment", "team", "method", "price_id", "requests", "prompt_tokens", "cached_tokens",
           "completion_tokens", "cost_micro_usd", "unpriced")


def upgrade() -> None:
    op.create_table(
        "cost_estimate_daily",
        *cost_daily_columns_0003(),
        sqlite_with_rowid=False,
    )
    names = ", ".join(COLUMNS)
    op.execute(f"INSERT INTO cost_estimate_daily ({names}) SELECT {names} FROM cost_daily")
    op.add_column("cost_daily", sa.Column("basis", sa.String(8), nullable=False, server_default="estimate"))


def downgrade() -> None:
    with op.batch_alter_table("cost_daily") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("basis")
    op.drop_table("cost_estimate_daily")
