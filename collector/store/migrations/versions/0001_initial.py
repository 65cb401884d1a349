"""Initial schema: rollup tables (5-minute and hourly tiers), watermarks, job status.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.migrations.frozen import ROLLUPS_0001 as _ROLLUPS
from collector.store.migrations.frozen import columns

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in _ROLLUPS:
        for tier in ("5m", "1h"):
            op.create_table(
                f"{table}_{tier}",
                *columns(table),
                sqlite_with_rowid=False,
            )
    op.create_table(
        "watermarks",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "job_status",
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_success_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=False, server_default=""),
        sa.Column("failed_window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_window_end", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_table("job_status")
    op.drop_table("watermarks")
    for table in reversed(list(_ROLLUPS)):
        for tier in ("1h", "5m"):
            op.drop_table(f"{table}_{tier}")
