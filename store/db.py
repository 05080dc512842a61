"""Engines and migrations: SQLite (WAL, busy timeout, immediate writes) or PostgreSQL by URL."""

from __future__ import annotations

import ast
import functools
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, text
from sqlalchemy.engine import make_url

# The store's errors, under the store's names: callers (the CLI) catch these and need not
# know the store runs on SQLAlchemy.
from sqlalchemy.exc import ArgumentError as StoreURLError  # noqa: F401  (re-exported)
from sqlalchemy.exc import OperationalError as StoreUnreachable  # noqa: F401
from sqlalchemy.exc import SQLAlchemyError as StoreError  # noqa: F401

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x7AF4_0001  # advisory lock key held while migrating PostgreSQL


class StoreMissing(Exception):
    """There is no store at the URL (no SQLite file, or a database without Tafang's schema)
    and the caller does not create one: a read-only command never makes a store."""


def default_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("tafang", appauthor=False))


def default_url() -> str:
    """The embedded store: a SQLite file in the user data dir (made when the store is)."""
    return f"sqlite:///{default_dir() / 'tafang.db'}"


def resolve_url(url: str | None) -> str:
    """`--db` wins, then TAFANG_DB, then the embedded default; a bare path means SQLite."""
    url = url or os.environ.get("TAFANG_DB") or default_url()
    if "://" not in url:
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str | None = None, *, upgrade: bool = True, create: bool = True) -> Engine:
    """An engine for the store, migrated to head on first use when `upgrade`.

    `create=False` (read-only commands): a missing store raises StoreMissing instead of being
    made, and no directory or file is created. A SQLite store that is made is private: the
    file 0600 (its -wal and -shm follow it) in a directory made 0700 (or the default one)."""
    u = make_url(resolve_url(url))
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            path = Path(u.database)
            if not path.exists():
                if not create:
                    raise StoreMissing(f"no store at {path}")
                _create_private(path)
        engine = create_engine(u, connect_args={"timeout": 30, "check_same_thread": False})
        _tune_sqlite(engine)
    else:
        engine = _postgresql(u, pool_pre_ping=True, pool_size=5, max_overflow=5)
    if not create and stored_revision(engine) is None:
        engine.dispose()
        raise StoreMissing(f"no store at {u.render_as_string(hide_password=True)} (no schema)")
    if upgrade:
        upgrade_db(engine)
    return engine


def _create_private(path: Path) -> None:
    """A new, empty SQLite file readable by its owner only, in a directory made 0700 (the
    default data dir is made private too: it holds nothing else)."""
    d = path.parent
    if not d.exists():
        d.mkdir(parents=True, mode=0o700)
    elif d == default_dir():
        d.chmod(0o700)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:  # another process made it first
        pass


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Let SQLAlchemy drive transactions; we issue BEGIN IMMEDIATE ourselves so that
        # two writers queue on the busy timeout instead of deadlocking on lock upgrade.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def reader(engine: Engine) -> Engine:
    """The same engine for reads only: on SQLite a plain BEGIN, so polls never queue writers."""
    return engine.execution_options(readonly=True)


def sweep_engine(engine: Engine, *, durable: bool) -> Engine:
    """The escalation sweep's own engine on PostgreSQL (SQLite: `engine` itself): its own
    connection, no ping before each transaction, and with `durable=False` sessions that
    commit with synchronous_commit off. Two round trips fewer in every sweep (issue 15); a
    connection lost with a server restart fails one sweep, which the next tick repeats."""
    if engine.dialect.name != "postgresql":
        return engine
    args = {} if durable else {"options": "-c synchronous_commit=off"}
    return _postgresql(engine.url, pool_size=1, max_overflow=2, connect_args=args)


def _postgresql(url: Any, **kw: Any) -> Engine:
    """A PostgreSQL engine that can run a transaction `pipelined`."""
    engine = create_engine(url, **kw)
    event.listen(engine, "do_execute", _pipelined_execute)
    return engine


UNREAD: dict[str, Any] = {"unread": True}
"""Execution options of a statement whose result nobody reads (an INSERT or UPDATE whose
row count does not matter): inside `pipelined` it is sent without waiting for its answer."""


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """Run the statements of `conn`'s transaction in psycopg's pipeline mode (PostgreSQL;
    SQLite: as they are). A statement executed with `UNREAD` is sent without waiting; any
    other waits for the answers of all before it, so one round trip carries the BEGIN with
    the first read, and a batch's writes with the read after them (issue 15: the sweep's
    eleven round trips were most of its time on a busy machine).

    An error of an unread statement is raised by the next statement that waits, or when the
    block ends; the transaction then rolls back as a whole, as any failed write does. Enter
    it inside the transaction, so that the pipeline is done before the COMMIT or ROLLBACK."""
    if conn.dialect.name != "postgresql" or not event.contains(
        conn.engine, "do_execute", _pipelined_execute
    ):
        yield
        return
    with conn.connection.driver_connection.pipeline() as pipeline:
        conn.execution_options(pipeline=pipeline)
        try:
            yield
        finally:
            conn.execution_options(pipeline=None)


def _pipelined_execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
    """`do_execute` inside `pipelined`: send, and wait unless the statement is `UNREAD`
    (SQLAlchemy reads a result's description right after executing: it must be there) and
    returns nothing (an INSERT returning its new key, unless made `.inline()`, does)."""
    pipeline = context.execution_options.get("pipeline") if context is not None else None
    if pipeline is None:
        return False
    cursor.execute(statement, parameters)
    # (Not `effective_returning`: asking it memoizes the statement's selected columns, and a
    # RETURNING added to a copy of it later is lost: SQLAlchemy 2.1.)
    returns = context.compiled is not None and bool(context.compiled.implicit_returning)
    if returns or not context.execution_options.get("unread"):
        pipeline.sync()
    return True


def wait_flushed(engine: Engine, timeout: float = 5.0) -> bool:
    """Wait until everything committed so far is on the server's disk (PostgreSQL; SQLite
    and a synchronous server: at once). Before a record anchor leaves the database: a commit
    made with synchronous_commit off is visible before it is flushed. False on timeout.

    The WAL's insert position is the target, but it also moves without any commit (a read
    pruning a page writes WAL that nobody flushes soon): once PostgreSQL's own bound for an
    asynchronous commit has passed (three times `wal_writer_delay`, a second's margin added),
    every commit up to the target is on disk, and the wait ends there."""
    if engine.dialect.name != "postgresql":
        return True
    start = time.monotonic()
    deadline = start + timeout
    with engine.connect() as conn:
        target, delay_ms = conn.exec_driver_sql(
            "SELECT pg_current_wal_insert_lsn(), "
            "(SELECT setting::int FROM pg_settings WHERE name = 'wal_writer_delay')"
        ).one()
        committed = start + 3 * delay_ms / 1000 + 1.0
        while True:
            flushed = conn.exec_driver_sql(
                "SELECT pg_current_wal_flush_lsn() >= %(t)s::pg_lsn", {"t": target}
            ).scalar_one()
            now = time.monotonic()
            if flushed or now >= committed:
                return True
            if now > deadline:
                return False
            time.sleep(0.01)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def alembic_config(engine: Engine):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


_REVISION = re.compile(r"^(down_)?revision\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def script_head() -> str | None:
    """The head revision of the migration scripts, read from their `revision` /
    `down_revision` lines without importing alembic (~100 ms a start-up saved); None when the
    scripts do not form one plain chain (then alembic decides)."""
    revs: dict[str, str | None] = {}
    for f in (MIGRATIONS / "versions").glob("*.py"):
        found = dict((bool(m[1]), m[2]) for m in _REVISION.finditer(f.read_text("utf-8")))
        if False not in found:
            continue
        rev, down = (ast.literal_eval(found.get(k, "None")) for k in (False, True))
        if not isinstance(rev, str) or not (down is None or isinstance(down, str)):
            return None
        revs[rev] = down
    heads = set(revs) - set(revs.values())
    return heads.pop() if len(heads) == 1 else None


def stored_revision(engine: Engine) -> str | None:
    """The store's revision (alembic's own table), None when it has none yet."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def upgrade_db(engine: Engine) -> str:
    """Migrate to head; return the revision. Cheap when already there: alembic is imported
    only when a migration is due (or the scripts are not a plain chain)."""
    head = script_head()
    if head is not None and stored_revision(engine) == head:
        return head
    return _migrate(engine)


def _migrate(engine: Engine) -> str:
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = alembic_config(engine)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return head or ""
    if is_sqlite(engine):
        engine.dispose()
        command.upgrade(cfg, "head")
        return head or ""
    # Several processes may start on a fresh PostgreSQL at once: one migrates, the rest wait.
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK})
        try:
            with engine.connect() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
            if current != head:
                command.upgrade(cfg, "head")
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK})
            lock.commit()
    return head or ""


def _dialect_insert(dialect: str, table: Table):  # type: ignore[no-untyped-def]
    """The dialect's INSERT (both have ON CONFLICT)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def insert_new(conn: Connection | Engine, table: Table, values: dict[str, Any] | None = None):  # type: ignore[no-untyped-def]
    """INSERT that skips rows whose unique key is already there (both dialects). Without
    `values` (rows given to execute) the statement is built once per dialect and table.
    Inline: the new row's key is not returned (nobody reads it, and `UNREAD` can be used)."""
    if values:
        stmt = _dialect_insert(conn.dialect.name, table).values(**values)
        return stmt.on_conflict_do_nothing().inline()
    return insert_new_stmt(conn.dialect.name, table)


@functools.cache
def insert_new_stmt(dialect: str, table: Table):  # type: ignore[no-untyped-def]
    return _dialect_insert(dialect, table).on_conflict_do_nothing().inline()


def upsert(conn: Connection | Engine, table: Table, values: dict[str, Any], key: str):  # type: ignore[no-untyped-def]
    """INSERT … ON CONFLICT (key) DO UPDATE with the other values (both dialects)."""
    stmt = _dialect_insert(conn.dialect.name, table).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=[key], set_={k: stmt.excluded[k] for k in values if k != key}
    )
