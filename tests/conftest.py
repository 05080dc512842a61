"""Shared fixtures: a real SQLite file and a real PostgreSQL database per test.

PostgreSQL tests skip only when no server answers and CI is unset; under CI=true a
missing server fails the run. Each test process copies one migrated template (`CREATE
DATABASE … TEMPLATE`, made once per set of migrations) and empties it between tests, so a
test pays for a TRUNCATE, not a migration or a copy; `fresh_pg_url(migrated=False)` gives an
empty one.
A SQLite store (`db_url`, `sqlite_url`, `migrated_sqlite`) is likewise a copy of one file the
migrations made once per process: `tests/test_db.py` migrates empty databases of both kinds.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool
from tafang.sla.policy import Policy
from tafang.store.cases import Store
from tafang.store.config import Deployment, load_config
from tafang.store.db import make_engine

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("TAFANG_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _pg_answers() -> bool:
    try:
        eng = create_engine(PG_ADMIN, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("SELECT 1"))
        eng.dispose()
        return True
    except Exception:
        return False


_PG_OK: bool | None = None


def pg_available() -> bool:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_answers()
    return _PG_OK


def require_pg() -> None:
    if not pg_available():
        if os.environ.get("CI"):
            pytest.fail(
                f"PostgreSQL does not answer at {PG_ADMIN} (CI=true: a missing server fails)"
            )
        pytest.skip("PostgreSQL does not answer (CI unset)")


def _db_url(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _template_name() -> str:
    """One template per set of migrations: a new revision makes (and uses) a new template."""
    versions = ROOT / "store" / "migrations" / "versions"
    digest = hashlib.sha256()
    for f in sorted(versions.glob("*.py")):
        digest.update(f.name.encode() + f.read_bytes())
    return f"tafang_tpl_{digest.hexdigest()[:12]}"


_TEMPLATE: str | None = None


def _migrated_template() -> str:
    """The migrated template database, created once (under an advisory lock: xdist workers)."""
    global _TEMPLATE
    if _TEMPLATE is not None:
        return _TEMPLATE
    name = _template_name()
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text("SELECT pg_advisory_lock(7253001)"))
        try:
            exists = c.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}
            ).first()
            if not exists:
                c.execute(text(f'CREATE DATABASE "{name}_new"'))
                make_engine(_db_url(f"{name}_new")).dispose()  # migrate to head
                c.execute(text(f'ALTER DATABASE "{name}_new" RENAME TO "{name}"'))
        finally:
            c.execute(text("SELECT pg_advisory_unlock(7253001)"))
    admin.dispose()
    _TEMPLATE = name
    return name


def _admin() -> Engine:
    return create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _drop(name: str) -> None:
    admin = _admin()
    with admin.connect() as c:
        c.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
            {"n": name},
        )
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


class _WorkerDatabase:
    """This process's own copy of the migrated template, emptied between tests.

    Copying the template costs ~0.1 s of server work a test; emptying the tables (TRUNCATE,
    then the migrations' seed rows put back) costs a few ms. A test that needs a second
    database at the same time gets a fresh copy instead."""

    def __init__(self) -> None:
        self.name = f"tafang_w_{uuid.uuid4().hex[:12]}"
        admin = _admin()
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{self.name}" TEMPLATE "{_migrated_template()}"'))
        admin.dispose()
        self.engine = create_engine(
            _db_url(self.name), isolation_level="AUTOCOMMIT", poolclass=NullPool
        )
        with self.engine.connect() as c:
            self.tables = [
                f'"{schema}"."{table}"'
                for schema, table in c.execute(
                    text(
                        "SELECT schemaname, tablename FROM pg_tables WHERE schemaname IN "
                        "('public', 'tafang_auth') AND tablename <> 'alembic_version'"
                    )
                )
            ]
            self.seed = [
                (table, [dict(r._mapping) for r in c.execute(text(f"SELECT * FROM {table}"))])
                for table in self.tables
            ]
        self.in_use = False
        atexit.register(self.drop)

    def reset(self) -> None:
        """Back to the template's content: other sessions ended, tables emptied and reseeded."""
        admin = _admin()
        with admin.connect() as c:
            c.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": self.name},
            )
        admin.dispose()
        # Only the tables a test wrote in have pages (the template's are empty but for the
        # seed rows): TRUNCATE those (~5 ms a table), not all of them. TRUNCATE, not DELETE:
        # no dead rows are left for a later read to prune (WAL that no commit flushes).
        # The sequences a test drew from restart, as with RESTART IDENTITY.
        with self.engine.connect() as c:
            used = [
                t
                for t, pages in c.execute(
                    text(
                        "SELECT t, pg_relation_size(t::regclass)"
                        " FROM unnest(CAST(:ts AS text[])) AS t"
                    ),
                    {"ts": self.tables},
                )
                if pages
            ]
            c.execute(text("BEGIN"))
            if used:
                c.execute(text(f"TRUNCATE {', '.join(used)} CASCADE"))
            c.execute(
                text(
                    "SELECT setval(format('%I.%I', schemaname, sequencename), start_value, false)"
                    " FROM pg_sequences WHERE schemaname IN ('public', 'tafang_auth')"
                    " AND last_value IS NOT NULL"
                )
            )
            for table, rows in self.seed:
                for row in rows:
                    cols = ", ".join(f'"{k}"' for k in row)
                    marks = ", ".join(f":{k}" for k in row)
                    c.execute(text(f"INSERT INTO {table} ({cols}) VALUES ({marks})"), row)
            c.execute(text("COMMIT"))

    def drop(self) -> None:
        self.engine.dispose()
        with suppress(Exception):  # the server may be gone at exit
            _drop(self.name)


_WORKER_DB: _WorkerDatabase | None = None


def fresh_pg_url(*, migrated: bool = True) -> Iterator[str]:
    """A PostgreSQL database with the migrated schema and nothing else (this process's own,
    emptied), or an empty one (`migrated=False`, created and dropped)."""
    global _WORKER_DB
    require_pg()
    if migrated and (_WORKER_DB is None or not _WORKER_DB.in_use):
        if _WORKER_DB is None:
            _WORKER_DB = _WorkerDatabase()
        db = _WORKER_DB
        db.reset()
        db.in_use = True
        try:
            yield _db_url(db.name)
        finally:
            db.in_use = False
        return
    name = f"tafang_t_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{_migrated_template()}"' if migrated else ""
    admin = _admin()
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"{template}'))
    admin.dispose()
    try:
        yield _db_url(name)
    finally:
        _drop(name)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (the Textual app under Pilot) run on asyncio."""
    return "asyncio"


@pytest.fixture(scope="session")
def gudang() -> Deployment:
    return load_config(ROOT / "config.toml")


@pytest.fixture(scope="session")
def tiny() -> Deployment:
    return load_config(ROOT / "tests" / "fixtures" / "tiny.toml")


_SQLITE_TEMPLATE: Path | None = None


def _sqlite_template() -> Path:
    """A SQLite store the migrations made, once per process (`make_engine` on a new file)."""
    global _SQLITE_TEMPLATE
    if _SQLITE_TEMPLATE is None:
        folder = Path(tempfile.mkdtemp(prefix="tafang-sqlite-tpl-"))
        atexit.register(shutil.rmtree, folder, True)
        path = folder / "template.db"
        make_engine(f"sqlite:///{path}").dispose()  # the last close checkpoints the WAL
        _SQLITE_TEMPLATE = path
    return _SQLITE_TEMPLATE


def migrated_sqlite(path: Path) -> str:
    """The URL of a new SQLite store at `path`, migrated to head: a copy of the template
    (~1 ms instead of ~0.1-0.3 s of migrations), private (0600) as `make_engine` makes one."""
    template = _sqlite_template()
    with open(path, "xb") as out:  # never over an existing store
        os.fchmod(out.fileno(), 0o600)
        with open(template, "rb") as src:
            shutil.copyfileobj(src, out)
    wal = template.with_name(template.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, path.with_name(path.name + "-wal"))
    return f"sqlite:///{path}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A migrated SQLite store (as `pg_url` is a migrated PostgreSQL database)."""
    return migrated_sqlite(tmp_path / "tafang.db")


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_pg_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on a real SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        yield migrated_sqlite(tmp_path / "tafang.db")
    else:
        yield from fresh_pg_url()


@pytest.fixture
def store(db_url: str, gudang: Deployment) -> Iterator[Store]:
    engine = make_engine(db_url)
    yield Store(engine, gudang, clocks=Policy(gudang))
    engine.dispose()


def roster_as(dest: Path, logins: dict[str, str]) -> Path:
    """A copy of config.toml at `dest` whose operators (by code) have these logins: a test
    runs as whoever the system says (root on SQLite, postgres or a login role on PostgreSQL),
    so the roster must name that login for an operator to act."""
    import re

    text_ = (ROOT / "config.toml").read_text(encoding="utf-8")
    for code, login in logins.items():
        # The operator's block: from its code line to the next blank line; one login line.
        block = re.compile(rf'(?m)^code = "{re.escape(code)}"\n(?:(?!\n).+\n)*')
        m = block.search(text_)
        assert m is not None, code
        lines = [ln for ln in m.group(0).splitlines() if not ln.startswith("login = ")]
        body = "\n".join([*lines, f'login = "{login}"']) + "\n"
        text_ = text_[: m.start()] + body + text_[m.end() :]
    dest.write_text(text_, encoding="utf-8")
    return dest


def login_of(url: str) -> str:
    """The login the store will report for a process of this test run (see store/identity)."""
    import getpass

    return "postgres" if url.startswith("postgresql") else getpass.getuser()


# The longest tests (a wheel built and installed; daemons against a receiver or a server
# that goes down for minutes of a fast clock) start first, then the other `slow` ones: with
# `--dist worksteal` (pyproject) the other worker takes the short tests meanwhile, and the two
# end together instead of one waiting on a long test begun last.
_FIRST = ("tests/test_install.py", "tests/test_faults_outbox.py", "tests/test_faults_leader.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        if path in _FIRST:
            return _FIRST.index(path)
        return len(_FIRST) + (item.get_closest_marker("slow") is None)

    items.sort(key=rank)  # stable: otherwise the collection's order
