"""The bill: the Cost Management export runs kept (`bill_runs`) and their Azure OpenAI lines (`bill_lines`).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bill_runs",
        sa.Column("export_id", sa.String(1024), primary_key=True),
        sa.Column("period_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("first_day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_day", sa.DateTime(timezone=True), nullable=False),
        sa.Column("export_name", sa.String(256), nullable=False),
        sa.Column("dataset", sa.String(32), nullable=False),
        sa.Column("data_version", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(256), nullable=False),
        sa.Column("submitted", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "bill_lines",
        sa.Column("export_id", sa.String(1024), nullable=False),
        sa.Column("period_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.DateTime(timezone=True), nullable=False),
        *(sa.Column(name, sa.String(size), nullable=False) for name, size in (
            ("account", 256), ("resource_id", 1024), ("meter_id", 128), ("meter_name", 256), ("model", 128),
            ("version", 64), ("deployment_type", 64), ("kind", 32), ("unit", 64), ("currency", 8),
            ("charge_type", 64), ("pricing_model", 64), ("quantity", 64), ("billed_cost", 64),
            ("effective_cost", 64), ("list_cost", 64))),
        sa.Column("export_lines", sa.Integer(), nullable=False),
    )
    op.create_index("ix_bill_lines_period", "bill_lines", ["export_id", "period_start"])
    op.create_index("ix_bill_lines_day", "bill_lines", ["day"])


def downgrade() -> None:
    op.drop_index("ix_bill_lines_day", "bill_lines")
    op.drop_index("ix_bill_lines_period", "bill_lines")
    op.drop_table("bill_lines")
    op.drop_table("bill_runs")
