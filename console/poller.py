"""The poll: a thread worker that watches the store and posts what changed as messages.

It asks the store (`store.queries`, the `Store`) and only ever posts plain frozen views, so
nothing here blocks the UI thread on the database. Between looks it waits on the store's
change feed (PostgreSQL NOTIFY, SQLite data_version).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tafang.console.first_read import FirstLoad, FirstRead, read_all
from tafang.console.messages import (
    Compliance,
    DaemonBeat,
    NoticesBacklog,
    PartnersHandled,
    StoreChanged,
    StoreHealth,
    StoreLoaded,
)
from tafang.console.view_model import ViewModel
from tafang.store.cases import Store
from tafang.store.changes import ChangeFeed
from tafang.store.queries import (
    daemon_heartbeat,
    partners_handled,
    todays_compliance,
    undelivered_notices,
)
from textual.message import Message
from textual.worker import get_current_worker


def poll(
    store: Store,
    post: Callable[[Message], object],
    *,
    now: Callable[[], datetime],
    cancelled: Callable[[], bool],
    interval: float = 0.3,
    slow_every: float = 30.0,
    first_slow: float = 1.5,
    vm: ViewModel | None = None,
    idle: float = 1.0,
    feed: ChangeFeed | None = None,
    first: FirstRead | None = None,
) -> None:
    """Watch the store until cancelled: a full load, then deltas whenever `change_seq` moves.

    Between looks it waits on a `ChangeFeed` (PostgreSQL NOTIFY, SQLite data_version), so a
    change elsewhere is read within milliseconds; it still looks every `idle` seconds (the
    daemon heartbeat, and a safety net should a notification be lost). Any exception is a
    store outage: the screen keeps what it has, the header says since when, and the loop
    retries with backoff from `interval` (up to 5 s) until the store answers again. With
    `vm`, the first load's queue rows are built here too, off the UI thread. A `feed`
    passed in is the caller's to close; otherwise one is opened here and closed on exit.
    """
    own_feed = feed is None
    if feed is None:
        try:
            feed = ChangeFeed(store.engine)
        except Exception:  # no feed at all: plain polling every `interval`
            feed = None
    try:
        _poll_loop(
            store, post, now, cancelled, interval, slow_every, first_slow, vm, idle, feed, first
        )
    finally:
        if own_feed and feed is not None:
            feed.close()


def _poll_loop(
    store: Store,
    post: Callable[[Message], object],
    now: Callable[[], datetime],
    cancelled: Callable[[], bool],
    interval: float,
    slow_every: float,
    first_slow: float,
    vm: ViewModel | None,
    idle: float,
    feed: ChangeFeed | None,
    first: FirstRead | None,
) -> None:
    vm_tz_start: Callable[[datetime], datetime] = _today_start(store.d.timezone)
    seq: int | None = None
    down_since: datetime | None = None
    backoff = interval
    last_beat = last_slow = 0.0
    while not cancelled():
        healthy = False
        try:
            if seq is None:
                given, first = first, None  # an error in it: the next look reads itself
                seq = _load(store, post, now, vm, given, cancelled)
                # the day's figures wait until the first frame is up
                last_slow = time.monotonic() - slow_every + first_slow
            else:
                s = store.change_seq()
                if s != seq:
                    changed = store.changed_since(seq)
                    post(StoreChanged(changed, store.officers()))
                    seq = max([s, *(c.updated_seq for c in changed)])
            mono = time.monotonic()
            if mono - last_beat >= 1.0:
                post(DaemonBeat(daemon_heartbeat(store)))
                stuck = undelivered_notices(store)
                post(NoticesBacklog(stuck.count, stuck.oldest))
                last_beat = mono
            if mono - last_slow >= slow_every:
                t = now()
                start = vm_tz_start(t)
                post(Compliance(*todays_compliance(store, start, t)))
                post(PartnersHandled(partners_handled(store, start)))
                last_slow = mono
            if down_since is not None:
                down_since = None
                post(StoreHealth(None))
            backoff = interval
            healthy = True
        except Exception as e:  # an outage of any kind: keep the screen, say so, retry
            if down_since is None:
                down_since = now()
            post(StoreHealth(down_since, f"{type(e).__name__}: {e}"[:300]))
            backoff = min(backoff * 2, 5.0)
        if healthy and feed is not None:
            _await_change(feed, min(idle, max(0.0, last_beat + 1.0 - time.monotonic())), cancelled)
        else:
            _sleep(backoff, cancelled)


def _load(
    store: Store,
    post: Callable[[Message], object],
    now: Callable[[], datetime],
    vm: ViewModel | None,
    first: FirstRead | None,
    cancelled: Callable[[], bool],
) -> int | None:
    """The full load; its change number (None: cancelled meanwhile). With the read started
    before the app, its most urgent page is shown first, as soon as it is there."""
    if first is None:
        got = read_all(store, vm, now())
    else:
        page = _answer(first.page, cancelled)
        if page is None:
            return None
        post(StoreLoaded(page.cases, page.officers, page.rows, complete=False))
        got = _answer(first.full, cancelled)
        if got is None:
            return None
    post(StoreLoaded(got.cases, got.officers, got.rows))
    return got.seq


def _answer(f: Future[FirstLoad], cancelled: Callable[[], bool]) -> FirstLoad | None:
    """The first read's answer (its error raised here), or None once the worker is cancelled."""
    while not cancelled():
        try:
            return f.result(timeout=0.1)
        except FutureTimeout:
            continue
    return None


def _await_change(feed: ChangeFeed, seconds: float, cancelled: Callable[[], bool]) -> None:
    """Wait on the feed in short slices (so cancelling stays quick) until a change or time."""
    end = time.monotonic() + seconds
    while not cancelled():
        left = end - time.monotonic()
        if left <= 0:
            return
        try:
            if feed.wait(min(left, 0.1)):
                return
        except Exception:  # the feed itself broke: fall back to sleeping the slice
            _sleep(min(left, 0.1), cancelled)


def _sleep(seconds: float, cancelled: Callable[[], bool]) -> None:
    end = time.monotonic() + seconds
    while not cancelled():
        left = end - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


def _today_start(tz_name: str) -> Callable[[datetime], datetime]:
    tz = ZoneInfo(tz_name)

    def start(now: datetime) -> datetime:
        loc = now.astimezone(tz)
        return loc.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)

    return start


def poll_in_worker(app: Any, **options: Any) -> None:
    """The body of an app's poll worker (the console's, the wall's): `poll` the app's store
    for the app until the worker is cancelled. `options` go to `poll`."""
    worker = get_current_worker()
    poll(
        app.store,
        app.post_message,
        now=app.now,
        cancelled=lambda: worker.is_cancelled,
        vm=app.vm,
        **options,
    )
