"""Shared fixtures: a real SQLite file and a real PostgreSQL database per test.

PostgreSQL tests skip only when no server answers and CI is unset; under CI=true a
missing server fails the run.
"""

from __future__ import annotations

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


def fresh_pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    require_pg()
    name = f"tafang_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
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
