"""Schema upgrades cannot brick a store: interrupted after any statement (and killed with SIGKILL at random), the
store opens afterwards and ends at the newest revision with what an uninterrupted upgrade gives; collectors opening
a fresh store at once both succeed; a store from a newer release is one clear error."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

from collector.cli.main import main
from collector.errors import TerminalError
from collector.store.database import Store, create_engine, migrate
from collector.store.migrations.upgrade import alembic_config, head, revisions

Dump = tuple[str | None, list[tuple[Any, ...]], dict[str, list[tuple[Any, ...]]]]


def build_store(path: Path, revision: str | None, rows: int = 3) -> None:
    """A SQLite store at `revision` (None: an empty file), `rows` rows in each of its tables (distinct keys)."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        if revision is not None:
            with engine.begin() as conn:
                command.upgrade(alembic_config(conn), revision)
        with engine.begin() as conn:
            inspector = sa.inspect(conn)
            for name in inspector.get_table_names():
                if name == "alembic_version":
                    continue
                table = sa.Table(name, sa.MetaData(), autoload_with=conn)
                conn.execute(table.insert(), [{c.name: _value(c, i) for c in table.columns} for i in range(rows)])
    finally:
        engine.dispose()


def _value(column: sa.Column[Any], i: int) -> Any:
    if isinstance(column.type, sa.DateTime):
        return datetime(2025, 6, 2, 10) + timedelta(hours=7 * i)  # several days and weeks
    if isinstance(column.type, sa.Float):
        return 0.5 * (i + 1)
    if isinstance(column.type, sa.Integer):
        return i % 5 + 1
    return f"{column.name}-{i}"


def dump(path: Path) -> Dump:
    """The store's version, schema (every table and index with its SQL) and every row, in a comparable form."""
    with sqlite3.connect(path) as con:
        version = None
        if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone():
            stamp = con.execute("SELECT version_num FROM alembic_version").fetchone()
            version = stamp[0] if stamp else None  # a table made, its row not yet written
        schema = sorted(con.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
        content = {name: sorted(con.execute(f'SELECT * FROM "{name}"'), key=repr)
                   for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    return version, schema, content


class Interrupted(Exception):
    """Raised by the test's hook after a chosen statement of the upgrade: the transaction never commits."""


class _Counter:
    """Statements an engine has run; raises Interrupted after the `after`-th (None: never)."""

    def __init__(self, after: int | None) -> None:
        self.after, self.count = after, 0

    def __call__(self, *_: Any) -> None:
        self.count += 1
        if self.count == self.after:
            raise Interrupted


def _interrupt_after(engine: sa.Engine, after: int | None) -> _Counter:
    counter = _Counter(after)
    sa.event.listen(engine, "after_cursor_execute", counter)
    return counter


def upgrade_interrupted(path: Path, after: int | None) -> int:
    """Run the store's upgrade (the entry point `Store.open` uses), interrupted after its `after`-th statement (None:
    never). Returns the statements run."""
    engine = create_engine(f"sqlite:///{path}")
    counter = _interrupt_after(engine, after)
    try:
        migrate(engine)
    except Interrupted:
        pass
    finally:
        engine.dispose()
    return counter.count


def reopened(path: Path) -> Dump:
    Store.open(f"sqlite:///{path}").close()
    return dump(path)


def statements_of_first_migration(path: Path) -> int:
    """How many statements an uninterrupted upgrade of the store (a copy of it) runs up to and including the
    version stamp of its first migration."""
    engine = create_engine(f"sqlite:///{path}")
    statements: list[str] = []
    sa.event.listen(engine, "after_cursor_execute", lambda *args: statements.append(args[2]))
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return next(i for i, s in enumerate(statements, 1) if "alembic_version" in s and s.startswith(("INSERT", "UPDATE")))


def stepped(template: Path, revision: str, path: Path) -> Dump:
    """The store after an uninterrupted upgrade to `revision`."""
    shutil.copy(template, path)
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), revision)
    engine.dispose()
    return dump(path)


@pytest.mark.parametrize("start", [None, *revisions()[:-1]])
def test_an_upgrade_interrupted_after_any_statement_still_ends_at_head_with_the_same_content(
        tmp_path: Path, start: str | None) -> None:
    """From a store at `start` holding rows in every table, the upgrade is interrupted after each statement of the
    migration that follows (its version stamp and the next migration's first statement included). Each time the
    store must be exactly as an uninterrupted upgrade leaves it at some revision (whole migrations or none), and
    opening it again must give exactly what an uninterrupted upgrade to the newest revision gives. Every migration
    is the first of one start, so this covers every statement of every migration, each over a store with rows in
    every table it can touch."""
    template = tmp_path / "template.sqlite"
    build_store(template, start)
    clean = tmp_path / "clean.sqlite"
    shutil.copy(template, clean)
    upgrade_interrupted(clean, None)
    expected = dump(clean)
    assert expected[0] == head()
    following = revisions()[0 if start is None else revisions().index(start) + 1]
    at = {start: dump(template), following: stepped(template, following, tmp_path / "following.sqlite")}
    assert start is None or all(at[start][2].values()), "every table of the old store holds rows to carry over"
    shutil.copy(template, clean)
    first = statements_of_first_migration(clean)

    store = tmp_path / "store.sqlite"
    reopened_from = set()
    for after in range(1, first + 2):
        shutil.copy(template, store)
        upgrade_interrupted(store, after)
        left = dump(store)
        assert left[0] in at, f"interrupted after statement {after}: the store is at {left[0]}"
        assert left == at[left[0]], f"interrupted after statement {after}: a half-done migration was left"
        if left[0] not in reopened_from:  # the same state reopens the same way: once per state
            assert reopened(store) == expected, f"interrupted after statement {after}, then opened"
            reopened_from.add(left[0])
    assert reopened_from == {start, following}


def upgrade_as_before(path: Path, after: int) -> None:
    """The upgrade as releases before issue 14 ran it (the driver's implicit transactions, which commit a CREATE on
    its own), interrupted after its `after`-th statement."""
    engine = create_engine(f"sqlite:///{path}")
    _interrupt_after(engine, after)
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
    except Interrupted:
        pass
    finally:
        engine.dispose()


@pytest.mark.parametrize("start", [None, "0003", "0005", "0008"])
def test_a_store_an_earlier_release_left_half_upgraded_is_completed(tmp_path: Path, start: str | None) -> None:
    """Stores bricked in the field (`table requests_1d already exists`): the leftovers are empty tables and
    indexes of the next migration, dropped and made again. The starts: a fresh store (0001's tables), 0004's
    derived tier, 0006's indexes only, 0009's copy and added column (of a fresh store's 0001, whose CREATEs are
    alike and each leftover costs a retry, every third statement)."""
    template = tmp_path / "template.sqlite"
    build_store(template, start)
    clean = tmp_path / "clean.sqlite"
    shutil.copy(template, clean)
    upgrade_interrupted(clean, None)
    expected = dump(clean)
    shutil.copy(template, clean)
    first = statements_of_first_migration(clean)

    store = tmp_path / "store.sqlite"
    bricked = 0
    for after in range(1, first + 2, 3 if start is None else 1):
        shutil.copy(template, store)
        upgrade_as_before(store, after)
        left = dump(store)
        bricked += left != (at := dump(template)) and left[0] == at[0]
        assert reopened(store) == expected, f"interrupted after statement {after}, then opened"
    assert bricked, "the old upgrade never left a half-done migration: this test tests nothing"


def test_a_table_with_rows_in_the_way_of_a_migration_is_our_error(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    build_store(path, "0003")
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE requests_1d (source VARCHAR(64))")
        con.execute("INSERT INTO requests_1d VALUES ('mine')")
    con.close()
    with pytest.raises(TerminalError, match="revision 0003 but already has a table requests_1d holding rows"):
        Store.open(f"sqlite:///{path}")
    assert dump(path)[0] == "0003"


KILL_CHILD = ("import sys\n"
              "from collector.store.database import Store\n"
              "print('ready', flush=True)\n"
              "Store.open(sys.argv[1]).close()\n"
              "print('done', flush=True)\n")


def run_child(path: Path, kill_after: float | None) -> float:
    """Open (so upgrade) the store in a fresh process, SIGKILLed `kill_after` seconds after its imports (None:
    left to finish). Returns the seconds from its imports to the end of its open."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, f"sqlite:///{path}"], stdout=subprocess.PIPE,
                             env=env)
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    started = time.monotonic()
    if kill_after is None:
        assert child.stdout.readline() == b"done\n"
        duration = time.monotonic() - started
        assert child.wait(timeout=60) == 0
    else:
        time.sleep(kill_after)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        duration = time.monotonic() - started
    child.stdout.close()
    return duration


@pytest.mark.slow
def test_sigkill_during_an_upgrade_then_reopen_equals_an_uninterrupted_upgrade(tmp_path: Path) -> None:
    template = tmp_path / "template.sqlite"
    build_store(template, "0003", rows=1000)
    clean = tmp_path / "clean.sqlite"
    shutil.copy(template, clean)
    duration = run_child(clean, None)
    expected = dump(clean)
    assert expected[0] == head()

    store = tmp_path / "store.sqlite"
    stopped_at = []
    rng = random.Random(14)
    for _ in range(5):
        shutil.copy(template, store)
        run_child(store, rng.uniform(0.05, 0.95) * duration)
        stopped_at.append(dump(store)[0])
        assert reopened(store) == expected, f"killed at revision {stopped_at[-1]}"
    assert set(stopped_at) - {head()}, f"no kill landed during the upgrade ({duration:.2f} s): {stopped_at}"


OPEN_CHILD = ("import sys\n"
              "from collector.store.database import Store, schema_is_current\n"
              "print('ready', flush=True)\n"
              "sys.stdin.readline()\n"
              "store = Store.open(sys.argv[1])\n"
              "assert schema_is_current(store.engine)\n"
              "store.close()\n")


def test_collectors_opening_a_fresh_store_at_once_both_succeed(store_url: str) -> None:
    """Three processes, released together once each has imported everything, open (so create) one fresh store."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    children = [subprocess.Popen([sys.executable, "-c", OPEN_CHILD, store_url], stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(3)]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
    outcomes = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], [err.decode()[-600:] for _, err in outcomes]
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head()]
    engine.dispose()


def test_a_store_from_a_newer_release_is_one_error_naming_both_revisions(store_url: str, tmp_path: Path) -> None:
    Store.open(store_url).close()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0042'"))
    engine.dispose()
    for migrate_schema in (True, False):
        with pytest.raises(TerminalError) as raised:
            Store.open(store_url, migrate_schema=migrate_schema)
        message = str(raised.value)
        assert "revision 0042" in message and f"newest it knows is {head()}" in message, message
        assert "upgrade aoai-observatory" in message.lower()

    config = tmp_path / "config.yaml"
    config.write_text(f"sources: []\nstore:\n  url: {store_url}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert result.exit_code != 0
    assert "0042" in result.output + result.stderr and "Traceback" not in result.output + result.stderr
