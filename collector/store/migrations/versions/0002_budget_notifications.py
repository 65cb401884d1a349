"""Budget notifications: which threshold of which budget was notified in which period (once per period).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "budget_notifications",
        sa.Column("budget_id", sa.String(300), primary_key=True),
        sa.Column("period_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("threshold", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("notified_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("budget_notifications")
