"""The console header says when escalation notices wait undelivered, and for how long."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from tafang.store.cases import Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.models import Outbox
from tafang.store.outbox import enqueue

from tests.conftest import migrated_sqlite
from tests.test_console import SIZE, app_for, until

pytestmark = pytest.mark.anyio


@pytest.fixture
def db(tmp_path: Path, gudang: Deployment) -> Iterator[Store]:
    engine = make_engine(migrated_sqlite(tmp_path / "h.db"))
    yield Store(engine, gudang)
    engine.dispose()


def queue_notice(store: Store, at: datetime, key: str) -> None:
    with store.write() as (conn, _h):
        ev = {"kind": "escalation", "case_id": 7, "level_name": "grid"}
        enqueue(conn, key=key, contact="grid", case_id=7, event=ev, now=at)


async def test_header_shows_undelivered_notices_and_their_age(db: Store, gudang) -> None:  # type: ignore[no-untyped-def]
    app = app_for(db, gudang)
    now = datetime.now(UTC)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.daemon_seen)
        assert "undelivered" not in app.header_text().plain
        queue_notice(db, now - timedelta(seconds=5), "fresh")  # a moment old: normal, not said
        await until(pilot, lambda: app.notices.count == 1)
        assert "undelivered" not in app.header_text().plain
        queue_notice(db, now - timedelta(minutes=4, seconds=10), "old")
        await until(pilot, lambda: "undelivered notices 2, oldest 4 min" in app.header_text().plain)
        with db.engine.begin() as conn:
            conn.execute(update(Outbox.__table__).values(status="sent"))
        await until(pilot, lambda: "undelivered" not in app.header_text().plain)
