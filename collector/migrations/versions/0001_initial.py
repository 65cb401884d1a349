"""Initial schema: rollup tables (5-minute and hourly tiers), watermarks, job status.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# A frozen copy of the rollups as they were at this revision (never import application code in a migration):
# table -> (string keys, integer keys, integer measures, real measures).
_ROLLUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "requests": (
        ("account", "deployment"),
        (),
        ("requests", "requests_2xx", "requests_4xx", "requests_400", "requests_429", "requests_5xx",
         "duration_ms_sum"),
        (),
    ),
    "latency": (("account", "deployment"), ("le_bucket",), ("requests", "duration_ms_sum"), ()),
    "caller_requests": (
        ("account", "deployment", "caller_object_id"),
        (),
        ("requests", "requests_ok", "request_bytes", "response_bytes"),
        (),
    ),
    "apim_tokens": (
        ("apim_subscription_id", "deployment", "model"),
        (),
        ("requests", "prompt_tokens", "completion_tokens", "total_tokens"),
        (),
    ),
    "usage_tokens": (
        ("account", "deployment", "model", "caller_object_id"),
        (),
        ("requests", "prompt_tokens", "cached_tokens", "completion_tokens"),
        (),
    ),
    "platform_metrics": (
        ("account", "deployment", "metric", "status_code"),
        (),
        (),
        ("total", "count", "minimum", "maximum"),
    ),
}


def upgrade() -> None:
    for table, (string_keys, int_keys, int_measures, real_measures) in _ROLLUPS.items():
        for tier in ("5m", "1h"):
            op.create_table(
                f"{table}_{tier}",
                sa.Column("source", sa.String(64), primary_key=True),
                sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
                *(sa.Column(k, sa.String(256), primary_key=True) for k in string_keys),
                *(sa.Column(k, sa.Integer(), primary_key=True) for k in int_keys),
                *(sa.Column(m, sa.BigInteger(), nullable=False) for m in int_measures),
                *(sa.Column(m, sa.Float(precision=53), nullable=False) for m in real_measures),
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
