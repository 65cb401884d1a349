"""Attributed cost per UTC day (`cost_daily`) and which cost model priced each day (`cost_days`).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cost_daily",
        sa.Column("day", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("account", sa.String(256), primary_key=True),
        sa.Column("deployment", sa.String(256), primary_key=True),
        sa.Column("team", sa.String(256), primary_key=True),
        sa.Column("method", sa.String(16), primary_key=True),
        sa.Column("price_id", sa.String(512), primary_key=True),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cached_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost_micro_usd", sa.BigInteger(), nullable=False),
        sa.Column("unpriced", sa.Integer(), nullable=False),
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
