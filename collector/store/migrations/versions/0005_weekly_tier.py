"""The weekly tier of every rollup (`<rollup>_1w`, ISO weeks from Monday 00:00 UTC), derived from the daily tier;
the daily latency keyed in the order long views group it (day, then the histogram bucket); a covering index of the
daily platform metrics by metric (and, on PostgreSQL, of the daily latency by day and bucket); an index on the teams
(and days) of the daily cost table.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from collector.store.migrations.frozen import ROLLUPS_0001 as _ROLLUPS
from collector.store.migrations.frozen import columns, derive_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


# Daily tables keyed (source, bucket_start, <series key>, <the other keys>) from this revision on.
_SERIES_KEY = {"latency": "le_bucket"}
_BY_METRIC = ("source", "metric", "bucket_start", "account", "deployment", "status_code", "total", "count", "minimum",
              "maximum")


def _rekey(table: str, first: str | None) -> None:
    """Give `<table>_1d` the primary key (source, bucket_start, first, other keys); `first` None: the keys in
    their column order, as before. SQLite cannot change a key in place: the table is copied."""
    string_keys, int_keys, _, _ = _ROLLUPS[table]
    keys = [*string_keys, *int_keys]
    if first is not None:
        keys.remove(first)
        keys.insert(0, first)
    name = f"{table}_1d"
    if op.get_bind().dialect.name != "sqlite":
        op.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_pkey, "
                   f"ADD CONSTRAINT {name}_pkey PRIMARY KEY (source, bucket_start, {', '.join(keys)})")
        return
    op.create_table(
        f"{name}_rekeyed",
        *columns(table, keyed=False),
        sa.PrimaryKeyConstraint("source", "bucket_start", *keys),
        sqlite_with_rowid=False,
    )
    op.execute(f"INSERT INTO {name}_rekeyed SELECT * FROM {name}")
    op.drop_table(name)
    op.rename_table(f"{name}_rekeyed", name)


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for table in _ROLLUPS:
        op.create_table(
            f"{table}_1w",
            *columns(table),
            sqlite_with_rowid=False,
        )
        # Existing stores: derive the weeks from the daily tier they already hold.
        week = ("(date(bucket_start, '-6 days', 'weekday 1') || ' 00:00:00.000000')" if sqlite
                else "date_trunc('week', bucket_start, 'UTC')")
        op.execute(derive_sql(table, "1d", "1w", week))
    for table, first in _SERIES_KEY.items():
        _rekey(table, first)
    op.create_index("ix_platform_metrics_1d_by_metric", "platform_metrics_1d", list(_BY_METRIC))
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_latency_1d_series", "latency_1d", ["source", "bucket_start", "le_bucket"],
                        postgresql_include=["account", "deployment", "requests"])
    op.create_index("ix_cost_daily_team", "cost_daily", ["team", "day"])


def downgrade() -> None:
    op.drop_index("ix_cost_daily_team", "cost_daily")
    op.drop_index("ix_platform_metrics_1d_by_metric", "platform_metrics_1d")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_latency_1d_series", "latency_1d")
    for table in _SERIES_KEY:
        _rekey(table, None)
    for table in _ROLLUPS:
        op.drop_table(f"{table}_1w")
