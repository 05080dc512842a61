"""Shared fixtures: a real SQLite file and a real PostgreSQL database per test.

PostgreSQL tests skip only when no server answers and CI is unset; under CI=true a
missing server fails the run. Each test's PostgreSQL database is a copy of one migrated
template (`CREATE DATABASE … TEMPLATE`), made once per set of migrations, so a test pays
for a file copy instead of a migration; `fresh_pg_url(migrated=False)` gives an empty one.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
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


def fresh_pg_url(*, migrated: bool = True) -> Iterator[str]:
    """A new PostgreSQL database (a copy of the migrated template, or empty), dropped after."""
    require_pg()
    name = f"tafang_t_{uuid.uuid4().hex[:12]}"
    template = f' TEMPLATE "{_migrated_template()}"' if migrated else ""
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"{template}'))
    url = _db_url(name)
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


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


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'tafang.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from fresh_pg_url()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on a real SQLite file and on the real PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tafang.db'}"
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
