"""Attributed cost per UTC day (`cost_daily`) and which cost model priced each day (`cost_days`).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.migrations.frozen import cost_daily_columns_0003

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cost_daily",
        *cost_daily_columns_0003(),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "cost_days",
        sa.Column("day", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("cost_days")
    op.drop_table("cost_daily")
