"""The console's first read: the most urgent page first (same rule as the queue's), then all."""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta

import pytest
from tafang.console.app import TafangApp
from tafang.console.demo import seed_backlog
from tafang.console.first_read import FirstRead, read_all
from tafang.sla.policy import Policy
from tafang.store.cases import Actor, Store
from tafang.store.db import make_engine
from tafang.store.queries import open_cases

from tests.test_console import until

NOW = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
ME = Actor("d01", "test-1")


def _far(c):  # type: ignore[no-untyped-def]
    """The queue's order (widgets/event_queue.py sort_key): a held clock stands still, last."""
    return (c.due is None or c.paused, c.due or NOW)


def seeded(store: Store) -> Store:
    store.sync_roster()
    seed_backlog(store, 40, random.Random(7), now=NOW)
    held = next(c for c in store.cases("open") if c.status == "acknowledged")
    store.act(held.id, "hold", Actor("s01", "test-1"), reason="等待相关部门", now=NOW)
    return store


def test_the_most_urgent_page_is_what_the_clock_rule_puts_first(store: Store) -> None:
    """`open_cases(store, n)` picks, in SQL, the n cases whose running clock runs out first:
    the cases the queue puts first by `clock_state`, on SQLite and PostgreSQL."""
    seeded(store)
    every = open_cases(store)
    assert {c.status for c in every} >= {"new", "acknowledged", "dispatched", "held"}
    states = {c.id: store.clocks.clock_state(c, NOW) for c in every}
    ranked = sorted(every, key=lambda c: (_far(states[c.id]), c.id))
    for n in (1, 7, 25, len(every) + 5):
        page = open_cases(store, most_urgent=n)
        assert [c.id for c in page] == [c.id for c in ranked[:n]]
    assert page == sorted(every, key=lambda c: (_far(states[c.id]), c.id))  # whole views
    held = [c for c in every if c.status == "held"]
    assert held and all(c.id in {p.id for p in page[-len(held) - 5 :]} for c in held)


@pytest.fixture
def one_store(sqlite_url: str, gudang) -> Iterator[Store]:
    """SQLite only: what is read is the same on both (the ordering test runs on both)."""
    engine = make_engine(sqlite_url)
    yield Store(engine, gudang, clocks=Policy(gudang))
    engine.dispose()


@pytest.mark.anyio
async def test_the_console_shows_the_page_then_everything(one_store: Store, gudang) -> None:
    """With the first read's page in and the full read still out, the queue shows the page
    and the header says loading; the full read then replaces it."""
    store = seeded(one_store)
    page, full = Future(), Future()
    read = FirstRead(page, full)
    page.set_result(read_all(store, None, NOW, most_urgent=5))
    app = TafangApp(store, gudang, operator="d01", terminal="t", lang="en", first_read=read)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: len(app.dash.queue.rows) == 5)
        assert not app.loaded
        assert "loading" in app.header_text().plain
        await until(pilot, read.shown.is_set)  # painted: the full read may go on
        full.set_result(read_all(store, app.vm, NOW))
        await until(pilot, lambda: app.loaded)
        assert len(app.dash.queue.rows) == len(open_cases(store))
        assert "loading" not in app.header_text().plain


def test_a_change_during_the_first_read_is_read_again(one_store: Store) -> None:
    """The change number is taken before the read: what changes meanwhile is re-read."""
    store = seeded(one_store)
    before = read_all(store, None, NOW, most_urgent=3)
    case = store.cases("open")[0]
    store.act(case.id, "note", ME, reason="x", now=NOW + timedelta(seconds=1))
    assert case.id in {c.id for c in store.changed_since(before.seq)}
