"""The change feed: a write from another connection wakes a terminal (NOTIFY / data_version).

Real stores only: a SQLite file and the real PostgreSQL. The bounds passed to `wait` are
what "wakes within" means here (a wait that times out returns False); no timings asserted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, insert, text
from tafang.console.app import TafangApp
from tafang.console.messages import StoreChanged, StoreHealth, StoreLoaded
from tafang.console.poller import poll
from tafang.sla.policy import Policy
from tafang.store.cases import Actor, Refused, Store
from tafang.store.changes import APP_NAME, CHANNEL, ChangeFeed
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.models import Heartbeat
from textual.message import Message

OTHER = Actor("d02", "terminal-2")
# Generous bounds: wait() returns as soon as the change is seen; the figures of DESIGN §5
# (≤ 1 s SQLite, ≤ 200 ms p95 PostgreSQL) are bench/live.py's to measure, not a unit test's.
WAKE = {"sqlite": 3.0, "postgresql": 3.0}


def new_case(store: Store, title: str = "共享单车堵塞消防通道") -> int:
    return store.create({"source": "ping_an", "title": title, "category": "0590"}, OTHER).id


@pytest.fixture
def two(db_url: str, gudang: Deployment) -> Iterator[tuple[Engine, Store]]:
    """The terminal's engine and a second Store on its own engine (another terminal)."""
    mine = make_engine(db_url)
    theirs = make_engine(db_url)
    yield mine, Store(theirs, gudang, clocks=Policy(gudang))
    mine.dispose()
    theirs.dispose()


def terminate_listeners(url: str) -> int:
    """Kill the feed's LISTEN backend(s) the way a server restart or a DBA would."""
    eng = create_engine(url, isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        n = c.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :a AND datname = current_database()"
            ),
            {"a": APP_NAME},
        ).scalar_one()
    eng.dispose()
    return int(n)


def wait_until(feed: ChangeFeed, cond: Callable[[], bool], timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        feed.wait(0.1)


# ---- both stores --------------------------------------------------------------------------------
def test_a_write_from_another_connection_wakes_the_feed(two, db_url: str) -> None:
    mine, other = two
    kind = mine.dialect.name
    with ChangeFeed(mine) as feed:
        assert feed.mode == ("listen" if kind == "postgresql" else "data_version")
        assert feed.wait(0.3) is False  # nothing happened
        cid = new_case(other)
        assert feed.wait(WAKE[kind]) is True
        assert feed.wait(0.2) is False  # one wake per change, not one per look
        other.act(cid, "ack", OTHER)
        assert feed.wait(WAKE[kind]) is True


def test_writes_that_are_no_case_change_do_not_wake(two) -> None:
    """A daemon heartbeat moves SQLite's data_version but not change_seq; a refused move
    rolls back and announces nothing."""
    mine, other = two
    cid = new_case(other)
    with ChangeFeed(mine) as feed:
        now = datetime.now(UTC)
        with other.engine.begin() as conn:
            conn.execute(insert(Heartbeat.__table__).values(name="daemon", at=now, started_at=now))
        with pytest.raises(Refused):
            other.act(cid, "close", OTHER)  # a new case cannot be closed
        assert feed.wait(0.4) is False


def test_a_closed_feed_never_wakes(two) -> None:
    mine, other = two
    feed = ChangeFeed(mine)
    feed.close()
    new_case(other)
    assert feed.wait(0.2) is False


# ---- PostgreSQL ---------------------------------------------------------------------------------
def test_store_write_notifies_the_new_change_seq_at_commit(pg_url: str, gudang) -> None:
    engine = make_engine(pg_url)
    store = Store(engine, gudang)
    libpq = pg_url.replace("postgresql+psycopg://", "postgresql://")
    try:
        with psycopg.connect(libpq, autocommit=True) as listener:
            listener.execute(f"LISTEN {CHANNEL}")
            cid = new_case(store)
            got = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
            assert got == [str(store.change_seq())]
            with pytest.raises(Refused):
                store.act(cid, "handle", OTHER)
            with store.write():  # a transaction that changes nothing says nothing
                pass
            assert [n.payload for n in listener.notifies(timeout=0.3)] == []
            store.act(cid, "ack", OTHER)
            got = [n.payload for n in listener.notifies(timeout=2, stop_after=1)]
            assert got == [str(store.change_seq())]
    finally:
        engine.dispose()


def test_a_dropped_listener_falls_back_to_polling(pg_url: str, gudang) -> None:
    mine = make_engine(pg_url)
    theirs = make_engine(pg_url)
    other = Store(theirs, gudang)
    try:
        with ChangeFeed(mine, retry=60) as feed:  # no reconnect during this test
            assert feed.mode == "listen"
            assert terminate_listeners(pg_url) == 1
            assert feed.wait(2.0) is True  # the drop itself: a notification may be lost
            assert feed.mode == "poll"
            assert feed.wait(0.4) is False
            new_case(other)
            assert feed.wait(3.0) is True  # seen by polling change_seq
            assert feed.mode == "poll"
    finally:
        mine.dispose()
        theirs.dispose()


def test_a_dropped_listener_reconnects_and_listens_again(pg_url: str, gudang) -> None:
    mine = make_engine(pg_url)
    theirs = make_engine(pg_url)
    other = Store(theirs, gudang)
    try:
        with ChangeFeed(mine, retry=0.2) as feed:
            first = feed.listen_pid
            assert terminate_listeners(pg_url) == 1
            wait_until(feed, lambda: feed.reconnects == 1 and feed.mode == "listen")
            assert feed.listen_pid not in (None, first)
            assert feed.wait(0.3) is False
            new_case(other)
            assert feed.wait(3.0) is True
            assert feed.mode == "listen"
    finally:
        mine.dispose()
        theirs.dispose()


def test_poll_loop_keeps_delivering_through_a_dropped_listener(pg_url: str, gudang) -> None:
    """The console's loop: deltas keep coming and no outage is shown when only the LISTEN
    connection dies."""
    store = Store(make_engine(pg_url), gudang)
    theirs = make_engine(pg_url)
    other = Store(theirs, gudang)
    got: list[Message] = []
    stop = threading.Event()
    worker = threading.Thread(
        target=poll,
        args=(store, got.append),
        kwargs=dict(now=lambda: datetime.now(UTC), cancelled=stop.is_set, slow_every=1e9),
    )
    worker.start()

    def seen(cid: int, status: str) -> bool:
        return any(
            isinstance(m, StoreChanged) and any(c.id == cid and c.status == status for c in m.cases)
            for m in list(got)
        )

    def until(cond: Callable[[], bool]) -> None:
        end = time.monotonic() + 3
        while not cond():
            assert time.monotonic() < end, "condition not met in time"
            time.sleep(0.02)

    try:
        until(lambda: any(isinstance(m, StoreLoaded) for m in got))
        until(lambda: terminate_listeners(pg_url) == 1)  # the loop has opened its feed
        cid = new_case(other)
        until(lambda: seen(cid, "new"))
        other.act(cid, "ack", OTHER)
        until(lambda: seen(cid, "acknowledged"))
        assert not [m for m in got if isinstance(m, StoreHealth) and m.down_since is not None]
    finally:
        stop.set()
        worker.join(5)
        store.engine.dispose()
        theirs.dispose()
    assert not worker.is_alive()


@pytest.mark.anyio
@pytest.mark.filterwarnings("ignore::ResourceWarning")
async def test_console_on_postgresql_shows_another_terminals_ack(pg_url: str, gudang) -> None:
    store = Store(make_engine(pg_url), gudang)
    cid = new_case(store)
    theirs = make_engine(pg_url)
    other = Store(theirs, gudang)
    app = TafangApp(store, gudang, operator="d01", terminal="test-1", lang="en")
    try:
        async with app.run_test(size=(120, 36)) as pilot:

            async def until(cond: Callable[[], object]) -> None:
                end = time.monotonic() + 3
                while not cond():
                    assert time.monotonic() < end, "condition not met in time"
                    await pilot.pause(0.02)

            def line() -> str:
                return app.dash.queue.render_line(1).text  # the first row under the header

            await until(lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
            assert app.t("status.new") in line()
            other.act(cid, "ack", OTHER)
            await until(lambda: app.t("status.acknowledged") in line())
            assert str(cid) in line()
    finally:
        store.engine.dispose()
        theirs.dispose()
