"""The daily tier of every rollup (`<rollup>_1d`), derived from the hourly tier for the days a window touches.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
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
        op.create_table(
            f"{table}_1d",
            sa.Column("source", sa.String(64), primary_key=True),
            sa.Column("bucket_start", sa.DateTime(timezone=True), primary_key=True),
            *(sa.Column(k, sa.String(256), primary_key=True) for k in string_keys),
            *(sa.Column(k, sa.Integer(), primary_key=True) for k in int_keys),
            *(sa.Column(m, sa.BigInteger(), nullable=False) for m in int_measures),
            *(sa.Column(m, sa.Float(precision=53), nullable=False) for m in real_measures),
            sqlite_with_rowid=False,
        )
        # Existing stores: derive the days from the hourly tier they already hold.
        keys = ", ".join((*string_keys, *int_keys))
        sums = ", ".join([*(f"sum({m})" for m in int_measures),
                          *(f"{'min' if m == 'minimum' else 'max' if m == 'maximum' else 'sum'}({m})"
                            for m in real_measures)])
        day = ("(substr(bucket_start, 1, 10) || ' 00:00:00.000000')" if op.get_bind().dialect.name == "sqlite"
               else "date_trunc('day', bucket_start, 'UTC')")
        op.execute(f"INSERT INTO {table}_1d SELECT source, {day}, {keys}, {sums} FROM {table}_1h "
                   f"GROUP BY source, {day}, {keys}")


def downgrade() -> None:
    for table in _ROLLUPS:
        op.drop_table(f"{table}_1d")
