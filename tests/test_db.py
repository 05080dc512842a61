"""The store's engine and migrations on a real SQLite file and the real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlmodel import SQLModel
from tafang.store import models  # noqa: F401  (registers the tables)
from tafang.store.db import make_engine, resolve_url

from tests.conftest import fresh_pg_url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, so the migrations run from the first revision."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tafang.db'}"
    else:
        yield from fresh_pg_url(migrated=False)


def test_migrations_match_the_models(empty_url: str) -> None:
    engine = make_engine(empty_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    # Index predicates are not compared by autogenerate; everything else must match.
    assert diff == [], f"models and migrations differ, add a revision: {diff}"
    engine.dispose()


def test_upgrade_is_idempotent_and_seeds_the_record_head(db_url: str) -> None:
    make_engine(db_url).dispose()
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_head")).scalar_one() == 1
    engine.dispose()


def test_sqlite_runs_in_wal_with_a_busy_timeout(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar_one() >= 5000
    engine.dispose()


def test_urls() -> None:
    assert resolve_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert resolve_url("/tmp/x.db") == "sqlite:////tmp/x.db"
