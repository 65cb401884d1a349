"""Schema upgrades that cannot brick a store: each migration commits together with its version stamp or not at all,
one process migrates a store at a time, and a store written by a newer release is refused with both versions named.

SQLite's DDL is transactional, but Python's sqlite3 driver (in its default mode) opens a transaction only before
INSERT, UPDATE or DELETE: a CREATE TABLE ahead of those commits on its own, so a run killed mid-migration used to
leave tables without the version stamp that says they exist. Here the driver is put in autocommit mode for the
upgrade and each migration runs inside an explicit `BEGIN EXCLUSIVE ... COMMIT` that also re-reads the version
(another process may have migrated meanwhile) and writes the new one. PostgreSQL runs the whole upgrade in one
transaction holding an advisory lock, so collectors opening a fresh store at once take turns.
"""

from __future__ import annotations

import functools
import logging
import re
import zlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from collector.errors import TerminalError

log = logging.getLogger(__name__)

SCRIPTS = Path(__file__).parent


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration: the scripts beside this module, run on `connection` (env.py reads no URL)."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["connection"] = connection
    return config


@functools.cache
def revisions() -> tuple[str, ...]:
    """Every revision this release knows, oldest first (the last is the head)."""
    script = ScriptDirectory.from_config(alembic_config())
    return tuple(reversed([s.revision for s in script.walk_revisions("base", "heads")]))


def head() -> str:
    return revisions()[-1]


def current_revision(connection: Connection) -> str | None:
    """The store's version stamp; None for a store with none (empty, or made before any migration committed)."""
    return MigrationContext.configure(connection).get_current_revision()


def check_known(revision: str | None, engine: Engine) -> None:
    """TerminalError when the store was stamped by a release newer than this one."""
    if revision is not None and revision not in revisions():
        raise TerminalError(
            f"the store at {engine.url!r} has schema revision {revision}, which this release of aoai-observatory "
            f"does not know (the newest it knows is {head()}): a newer release has upgraded it. Upgrade "
            "aoai-observatory (pip install --upgrade aoai-observatory) wherever this store is used; an older "
            "release cannot read it")


def upgrade(engine: Engine) -> None:
    """Bring the store to the newest revision; a store already there is only read (no lock, no write)."""
    with engine.connect() as connection:
        current = current_revision(connection)
    check_known(current, engine)
    if current == head():
        return
    if engine.dialect.name == "sqlite":
        _upgrade_sqlite(engine)
    elif engine.dialect.name == "postgresql":
        _upgrade_postgresql(engine)
    else:  # pragma: no cover - the store runs on SQLite and PostgreSQL only
        with engine.begin() as connection:
            command.upgrade(alembic_config(connection), "head")


def _upgrade_postgresql(engine: Engine) -> None:
    """One transaction: PostgreSQL's DDL is transactional, so a killed run leaves the store as it was. The advisory
    lock (released at commit or rollback) makes a second collector wait, then find the schema current."""
    with engine.begin() as connection:
        schema = connection.execute(sa.text("SELECT current_schema()")).scalar_one_or_none() or ""
        key = zlib.crc32(f"aoai-observatory schema upgrade {schema}".encode())
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        current = current_revision(connection)
        check_known(current, engine)
        if current != head():
            log.info("upgrading the store's schema from %s to %s", current or "nothing", head())
            command.upgrade(alembic_config(connection), "head")


def _upgrade_sqlite(engine: Engine) -> None:
    """One `BEGIN EXCLUSIVE` transaction per migration, its version stamp included: a kill leaves the store at the
    last revision that committed, whole, and the next open carries on from there."""
    with engine.connect() as connection:
        driver: Any = connection.connection.driver_connection
        saved = driver.isolation_level
        connection.commit()
        driver.isolation_level = None  # the driver issues no BEGIN (nor commits) of its own: ours are the only ones
        try:
            for _ in range(_MOST_LEFTOVERS):
                try:
                    if _upgrade_sqlite_from_current(connection, engine):
                        return
                except sa.exc.OperationalError as e:
                    leftover = _LEFTOVER.search(str(e.orig))
                    if leftover is None:
                        raise
                    _drop_leftover(connection, engine, leftover["kind"], leftover["name"])
            raise TerminalError(f"the store at {engine.url!r} could not be upgraded: more than {_MOST_LEFTOVERS} "
                                "objects left by interrupted upgrades, or other processes kept migrating it")
        finally:
            driver.isolation_level = saved


#: How SQLite says a migration's CREATE met an object of that name; and a bound on the objects dropped (and on the
#: times another process overtakes this one) before giving up.
_LEFTOVER = re.compile(r"""(?P<kind>table|index) ["'`]?(?P<name>\w+)["'`]? already exists""")
_MOST_LEFTOVERS = 200


def _drop_leftover(connection: Connection, engine: Engine, kind: str, name: str) -> None:
    """Drop what an interrupted upgrade by an earlier release (one that let the driver commit each CREATE on its
    own) left without its version stamp: the next migration creates it again. Such a table is empty (the rows it
    was to get came in the transaction the kill lost); one with rows is not ours to drop."""
    connection.exec_driver_sql("BEGIN EXCLUSIVE")
    try:
        current = current_revision(connection)
        if kind == "table" and connection.exec_driver_sql(f'SELECT 1 FROM "{name}" LIMIT 1').first() is not None:
            raise TerminalError(
                f"the store at {engine.url!r} is at schema revision {current or '(none)'} but already has a table "
                f"{name} holding rows, which the next migration creates: it was changed outside aoai-observatory. "
                f"Restore a backup of the store, or move {name} away if it is not needed")
        log.warning("the store's schema: dropping the %s %s an interrupted upgrade left at revision %s without "
                    "its version stamp; the migration creates it again", kind, name, current or "(none)")
        connection.exec_driver_sql(f'DROP {kind.upper()} "{name}"')
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


class _Overtaken(Exception):
    """Another process migrated the store between two of this one's migrations."""


def _upgrade_sqlite_from_current(connection: Connection, engine: Engine) -> bool:
    """Apply the migrations after the store's revision, each in its own exclusive transaction; False when another
    process overtook this one (then start again from the revision it left)."""
    # SQLAlchemy's own begin is a no-op on this driver: the BEGINs here are the transactions its commits end.
    connection.exec_driver_sql("BEGIN EXCLUSIVE")
    try:
        current = current_revision(connection)
        check_known(current, engine)
        if current != head():
            log.info("upgrading the store's schema from %s to %s", current or "nothing", head())
            config = alembic_config(connection)
            config.attributes["on_version_apply"] = functools.partial(_commit_migration, connection)
            command.upgrade(config, "head")
        connection.commit()
    except _Overtaken:
        connection.rollback()
        return False
    except BaseException:
        connection.rollback()
        raise
    return True


def _commit_migration(connection: Connection, *, heads: set[str], **_: Any) -> None:
    """After each migration has stamped its revision: commit both, and take the lock again for the next one."""
    connection.commit()
    connection.exec_driver_sql("BEGIN EXCLUSIVE")
    if {current_revision(connection)} != heads:
        raise _Overtaken
