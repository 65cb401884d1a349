"""Alembic environment: runs on the connection the store hands over (never reads a URL of its own), inside the
transactions its caller manages (collector/store/migrations/upgrade.py), which may commit after each migration."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, render_as_batch=True,
                  on_version_apply=context.config.attributes.get("on_version_apply", ()))
with context.begin_transaction():
    context.run_migrations()
