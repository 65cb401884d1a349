"""Covering indexes for the long views' reads: the weekly platform metrics by metric (as the daily ones already
are); the daily and weekly latency, requests and platform metrics by deployment; the daily usage by model; on
SQLite, the daily cost by day and team. A long view filtered by deployment, model or team reads each deployment's
rows through them instead of every deployment's rows of the range; the cost page's daily series by team needs no
sort.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

from collector.store.migrations.frozen import ROLLUPS_0001 as _ROLLUPS

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_METRIC_VALUES = list(_ROLLUPS["platform_metrics"][3])
_REQUEST_MEASURES = list(_ROLLUPS["requests"][2])
# table -> the columns of its by-deployment index, on the daily and weekly tiers.
_BY_DEPLOYMENT = {
    "latency": ["source", "deployment", "bucket_start", "account", "le_bucket", "requests"],
    "requests": ["source", "deployment", "bucket_start", "account", *_REQUEST_MEASURES],
    "platform_metrics": ["source", "deployment", "metric", "bucket_start", "account", "status_code", *_METRIC_VALUES],
}


def upgrade() -> None:
    op.create_index("ix_platform_metrics_1w_by_metric", "platform_metrics_1w",
                    ["source", "metric", "bucket_start", "account", "deployment", "status_code", *_METRIC_VALUES])
    for table, columns in _BY_DEPLOYMENT.items():
        for tier in ("1d", "1w"):
            op.create_index(f"ix_{table}_{tier}_by_deployment", f"{table}_{tier}", columns)
    op.create_index("ix_usage_tokens_1d_by_model", "usage_tokens_1d",
                    ["source", "model", "bucket_start", "account", "deployment"])
    if op.get_bind().dialect.name == "sqlite":  # PostgreSQL hashes these reads faster without it
        op.create_index("ix_cost_daily_day_team", "cost_daily",
                        ["day", "team", "method", "requests", "prompt_tokens", "cached_tokens", "completion_tokens",
                         "cost_micro_usd", "unpriced"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_cost_daily_day_team", "cost_daily")
    op.drop_index("ix_usage_tokens_1d_by_model", "usage_tokens_1d")
    for table in _BY_DEPLOYMENT:
        for tier in ("1d", "1w"):
            op.drop_index(f"ix_{table}_{tier}_by_deployment", f"{table}_{tier}")
    op.drop_index("ix_platform_metrics_1w_by_metric", "platform_metrics_1w")
