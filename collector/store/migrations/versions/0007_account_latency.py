"""The daily latency histogram of each account, its deployments merged (`latency_accounts_1d`), derived from the
daily latency tier; existing stores get it from the days they hold.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "latency_accounts_1d",
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("account", sa.String(256), nullable=False),
        sa.Column("le_bucket", sa.Integer(), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms_sum", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("source", "bucket_start", "le_bucket", "account"),
        sqlite_with_rowid=False,
    )
    op.execute("INSERT INTO latency_accounts_1d (source, bucket_start, account, le_bucket, requests, duration_ms_sum) "
               "SELECT source, bucket_start, account, le_bucket, sum(requests), sum(duration_ms_sum) FROM latency_1d "
               "GROUP BY source, bucket_start, account, le_bucket")


def downgrade() -> None:
    op.drop_table("latency_accounts_1d")
