"""The migrations build exactly the schema the store's metadata describes, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from collector.store.database import METADATA, POSTGRESQL_ONLY_INDEX, SQLITE_ONLY_INDEX, Store, schema_is_current


def test_migrated_schema_matches_the_metadata(store: Store) -> None:
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, METADATA)
    # Alembic's comparison does not know Index.ddl_if: the other dialect's own index is not missing.
    elsewhere = POSTGRESQL_ONLY_INDEX if store.engine.dialect.name != "postgresql" else SQLITE_ONLY_INDEX
    differences = [d for d in differences if not (d[0] == "add_index" and d[1].name == elsewhere)]
    assert differences == []
    assert schema_is_current(store.engine)
    # Alembic does not compare primary keys; their column order decides how the rollup tables are read.
    inspector = sa.inspect(store.engine)
    for table in METADATA.sorted_tables:
        migrated = inspector.get_pk_constraint(table.name)["constrained_columns"]
        assert migrated == [c.name for c in table.primary_key.columns], table.name
    assert [c.name for c in METADATA.tables["latency_1d"].primary_key.columns] == [
        "source", "bucket_start", "le_bucket", "account", "deployment"]


def test_opening_twice_is_harmless(store_url: str) -> None:
    Store.open(store_url).close()
    second = Store.open(store_url)
    assert schema_is_current(second.engine)
    second.close()
