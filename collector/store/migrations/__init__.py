"""Alembic migrations of the rollup store."""
