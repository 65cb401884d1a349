"""The daily tier of every rollup (`<rollup>_1d`), derived from the hourly tier for the days a window touches.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from alembic import op

from collector.store.migrations.frozen import ROLLUPS_0001 as _ROLLUPS
from collector.store.migrations.frozen import columns, derive_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in _ROLLUPS:
        op.create_table(
            f"{table}_1d",
            *columns(table),
            sqlite_with_rowid=False,
        )
        # Existing stores: derive the days from the hourly tier they already hold.
        day = ("(substr(bucket_start, 1, 10) || ' 00:00:00.000000')" if op.get_bind().dialect.name == "sqlite"
               else "date_trunc('day', bucket_start, 'UTC')")
        op.execute(derive_sql(table, "1h", "1d", day))


def downgrade() -> None:
    for table in _ROLLUPS:
        op.drop_table(f"{table}_1d")
