"""Feedback within a frame: the row shows a move's expected state at once (pending), and the
store's answer confirms it or rolls it back. The store is made slow the real way: another
connection holds its write lock."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tafang.console.app import TafangApp
from tafang.console.optimistic import provisional
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]
OTHER = Actor("d02", "terminal-2")


@pytest.fixture
def db(tmp_path: Path, gudang: Deployment) -> Iterator[tuple[Store, Path]]:
    path = tmp_path / "fb.db"
    engine = make_engine(f"sqlite:///{path}")
    yield Store(engine, gudang), path
    engine.dispose()


def new_case(
    store: Store, d: Deployment, category: str = "0502", at: datetime | None = None
) -> int:
    grid = d.grids_by_label["N3-07"].code
    fields = {"source": "ping_an", "title": "店外经营", "category": category, "grid": grid}
    return store.create(fields, OTHER, now=at).id


async def until(pilot, cond: Callable[[], object], timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        await pilot.pause(0.02)


def locked(path: Path) -> sqlite3.Connection:
    """A second writer holding the store's write lock until it commits."""
    con = sqlite3.connect(path, isolation_level=None, timeout=5)
    con.execute("BEGIN IMMEDIATE")
    return con


def test_provisional_follows_the_registry(db, gudang: Deployment) -> None:
    store, _ = db
    c = store.get(new_case(store, gudang))
    now = datetime.now(UTC)
    acked = provisional(c, "ack", now, gudang)
    assert acked is not None and acked.status == "acknowledged" and acked.acknowledged_at == now
    sent = provisional(acked, "dispatch", now, gudang, to="2-03")
    assert sent is not None and (sent.assignee, sent.assignee_kind) == ("2-03", "officer")
    assert provisional(c, "handle", now, gudang) is None  # not from `new`: the store says why
    flagged = provisional(c, "supervise", now, gudang)
    assert flagged is not None and flagged.supervised and flagged.status == "new"


async def test_ack_shows_pending_at_once_then_confirmed(db, gudang: Deployment) -> None:
    store, path = db
    cid = new_case(store, gudang)
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="en")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        con = locked(path)
        try:
            await pilot.press("a")
            row = app.dash.queue.row_for(cid)
            assert row is not None and row.status == "acknowledged"  # before the store answers
            assert row.status_label.endswith("…")  # marked pending
            assert store.get(cid).status == "new"
        finally:
            con.commit()
            con.close()
        await until(pilot, lambda: not app.pending)
        row = app.dash.queue.row_for(cid)
        assert row is not None and row.status == "acknowledged"
        assert not row.status_label.endswith("…")
        assert store.get(cid).status == "acknowledged"


async def test_refused_move_rolls_the_row_back_with_the_reason(db, gudang: Deployment) -> None:
    store, path = db
    cid = new_case(store, gudang)
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="en")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        stale = app.state.cases[cid].version - 1  # as if another terminal had moved it
        con = locked(path)
        try:
            app.act(cid, "ack", version=stale)
            await pilot.pause()
            row = app.dash.queue.row_for(cid)
            assert row is not None and row.status == "acknowledged"
        finally:
            con.commit()
            con.close()
        await until(pilot, lambda: not app.pending)
        await until(pilot, lambda: app._notifications)
        row = app.dash.queue.row_for(cid)
        assert row is not None and row.status == "new" and not row.status_label.endswith("…")
        assert store.get(cid).status == "new"


async def test_a_move_the_case_does_not_allow_leaves_the_cursor_on_it(
    db, gudang: Deployment
) -> None:
    """`a` on a case already acknowledged: refused, with the reason, and the cursor stays on
    that case (it went on to the next case as if the move had been made)."""
    store, _ = db
    older = new_case(store, gudang, at=datetime.now(UTC) - timedelta(seconds=30))
    cid = new_case(store, gudang)
    store.act(cid, "ack", OTHER)
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="en")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.row_for(older) is not None)
        app.dash.queue.select_case(cid)
        await until(pilot, lambda: app.dash.queue.cursor_case_id == cid)
        await pilot.press("a")
        await until(pilot, lambda: app._notifications)
        assert app.dash.queue.cursor_case_id == cid
        assert store.get(cid).status == "acknowledged" and store.get(older).status == "new"


async def test_command_line_dispatch_shows_the_officer_at_once(db, gudang: Deployment) -> None:
    store, path = db
    cid = new_case(store, gudang)
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="zh")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded)
        con = locked(path)
        try:
            app.run_command(f"d {cid} 2-03")
            row = app.dash.queue.row_for(cid)
            assert row is not None and row.status == "dispatched" and "2-03" in row.assignee
        finally:
            con.commit()
            con.close()
        await until(pilot, lambda: store.get(cid).assignee == "2-03" and not app.pending)


async def test_panel_enter_keeps_the_footer_and_shows_the_row(db, gudang: Deployment) -> None:
    """Neither opening nor closing the dispatch panel rebuilds the dashboard's footer (a
    rebuild cost full restyles between Enter and the frame); the row shows the dispatch
    pending at once."""
    from tafang.widgets.dispatch_panel import DispatchPanel
    from textual.widgets._footer import FooterKey

    store, path = db
    cid = new_case(store, gudang)
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="en")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        await until(pilot, lambda: app.dash.query(FooterKey))
        await pilot.pause(0.1)
        keys = list(app.dash.query(FooterKey))
        words = [k.description for k in keys]
        await pilot.press("d")
        panel = app.dash.query_one(DispatchPanel)
        await until(pilot, lambda: panel.is_open)
        con = locked(path)
        try:
            await pilot.press("enter")
            await until(pilot, lambda: not panel.is_open)
            row = app.dash.queue.row_for(cid)
            assert row is not None and row.status == "dispatched"  # before the store answers
        finally:
            con.commit()
            con.close()
        await until(pilot, lambda: not app.pending)
        assert list(app.dash.query(FooterKey)) == keys  # the same widgets, not rebuilt
        assert [k.description for k in keys] == words


async def test_ack_moves_the_cursor_on_and_leaves_the_page_where_it_was(
    db, gudang: Deployment
) -> None:
    """40 cases all overdue: the band pins the first ones. The acknowledged top case sorts
    below all the others, out of the band; the view must not follow it there (it scrolled to
    the row for the pending frame and stayed, the cursor gone on into the band: the page
    below the band showed the end of the queue) but stay, the cursor on the next case."""
    store, path = db
    t0 = datetime.now(UTC) - timedelta(minutes=20)
    ids = [new_case(store, gudang, at=t0 + timedelta(seconds=i)) for i in range(40)]
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="en")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == ids[0])
        queue = app.dash.queue
        assert queue.scroll_offset.y == 0 and 0 < queue.pinned < 40
        con = locked(path)  # the store answers later: the pending frame is the one we see
        try:
            await pilot.press("a")
            await pilot.pause()
            assert queue.row_for(ids[0]).status == "acknowledged"  # type: ignore[union-attr]
            assert queue.scroll_offset.y == 0
            assert queue.cursor_case_id == ids[1]
            assert queue.rows[-1].case_id == ids[0]  # its row went to the end, off screen
        finally:
            con.commit()
            con.close()
        await until(pilot, lambda: not app.pending)
        await pilot.pause()
        assert queue.scroll_offset.y == 0 and queue.cursor_case_id == ids[1]
