"""The wall display: a real SQLite store, the real app under Pilot, pictures at the wall's size
and a terminal's, and `tafang wall --serve` opened over HTTP and WebSocket like a browser does.

Deterministic pictures: a frozen clock injected into the app, cases made at fixed times,
officers' states stamped at a fixed time, and before the capture the poll worker is stopped
(and awaited), the day's counts read and the tick run once by hand. Regenerate with
`pytest tests/test_wall.py --snapshot-update` and look at the SVGs before committing them.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update
from tafang.console.keymap import GESTURES
from tafang.console.wall import WallApp, breach_rows, day_start
from tafang.console.wall_serve import offline_index
from tafang.sla.policy import Policy
from tafang.store.cases import Actor, Refused, Store
from tafang.store.config import Deployment
from tafang.store.db import StoreError, make_engine
from tafang.store.models import Case, Officer
from tafang.store.queries import compliance_by_stage, day_flow, read_only, received_since
from tafang.widgets.breach_list import BreachList
from tafang.widgets.counts import DayCounts
from textual.widgets import Static

from tests.conftest import migrated_sqlite

pytestmark = [pytest.mark.filterwarnings("ignore::ResourceWarning")]

NOW = datetime(2026, 3, 9, 1, 0, 0, tzinfo=UTC)  # 09:00 in Hangzhou, a Monday
D02 = Actor("d02", "terminal-2")
S01 = Actor("s01", "terminal-lead")  # 带班领导: 督办, escalation, closing after the check
ROOT = Path(__file__).resolve().parent.parent

# (seconds before NOW, channel, category, cell label, title, moves as (actor, move[:to]))
CASES = (
    (70, "smart_alarm", "0404", "S1-04", "电动车楼道起火", ()),  # fire: 30 s to respond
    (30, "ping_an", "0590", "N3-07", "共享单车堵塞消防通道", ()),  # within its minute
    (40, "grid_app", "0603", "N1-09", "广场舞音响扰民", ((D02, "ack"),)),
    (
        1500,
        "enterprise",
        "0605",
        "N2-03",
        "超市销售过期食品",
        ((D02, "ack"), (D02, "dispatch:sq4"), (S01, "escalate"), (S01, "supervise")),
    ),
    (
        3000,
        "city_ops",
        "0102",
        "N4-12",
        "垃圾桶满溢无人清运",
        ((D02, "ack"), (D02, "dispatch:1-03"), (D02, "arrive"), (D02, "handle"), (S01, "close")),
    ),
    (20, "ping_an", "0590", "S3-08", "[red]FAKE[/red] 单车\x1b[31m", ()),
    (50, "hotline", "0301", "S2-05", "夜间施工噪音扰民", ()),  # 50 of its 60 s: at risk
)


def seed(store: Store, d: Deployment) -> list[int]:
    store.sync_roster()  # every officer gets a row, stamped below
    ids = []
    for i, (ago, src, cat, label, title, moves) in enumerate(CASES):
        at = NOW - timedelta(seconds=ago)
        fields = {
            "source": src,
            "external_id": f"wall-{i}",
            "title": title,
            "category": cat,
            "grid": d.grids_by_label[label].code,
        }
        cid = store.create(fields, D02, now=at).id
        for n, (actor, move) in enumerate(moves, 1):
            action, _, to = move.partition(":")
            store.act(cid, action, actor, to=to or None, reason="wall test", now=at + n * SECOND)
        ids.append(cid)
    with store.engine.begin() as conn:
        conn.execute(update(Officer.__table__).values(status_since=NOW - timedelta(minutes=7)))
    return ids


SECOND = timedelta(seconds=10)


@pytest.fixture
def url(tmp_path: Path) -> str:
    return migrated_sqlite(tmp_path / "wall.db")


@pytest.fixture
def both(db_url: str, gudang: Deployment) -> Iterator[tuple[Store, Store]]:
    """A writing store and the wall's read-only one on the same SQLite file or PostgreSQL."""
    engine = make_engine(db_url)
    wall_engine = read_only(make_engine(db_url, upgrade=False))
    yield Store(engine, gudang), Store(wall_engine, gudang, clocks=Policy(gudang))
    wall_engine.dispose()
    engine.dispose()


@pytest.fixture
def writer(url: str, gudang: Deployment) -> Iterator[Store]:
    """Another terminal: the store the cases are made in (the file a migrated copy)."""
    engine = make_engine(url)
    yield Store(engine, gudang)
    engine.dispose()


@pytest.fixture
def wall_store(writer: Store, url: str, gudang: Deployment) -> Iterator[Store]:
    """The wall's store, opened read-only as `tafang wall` opens it."""
    engine = read_only(make_engine(url, upgrade=False))
    yield Store(engine, gudang, clocks=Policy(gudang))
    engine.dispose()


def make_wall(store: Store, d: Deployment, now: Callable[[], datetime] = lambda: NOW) -> WallApp:
    return WallApp(store, d, lang="zh", now=now, tick_seconds=3600, figures_every=3600)


async def until(pilot, done: Callable[[], object], what: str, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not done():
        assert time.monotonic() - t0 < timeout, f"the wall did not settle: {what}"
        await pilot.pause(0.02)


async def settled(pilot) -> None:  # type: ignore[no-untyped-def]
    """Wait for the poll's load, the daemon line and the day's counts; then stop the poll so
    nothing races the capture, and tick once by hand."""
    app = pilot.app
    await until(pilot, lambda: app.loaded and app.daemon_seen and app.day, "load, beat, day")
    for worker in app.workers.cancel_group(app, "poll"):
        await until(pilot, lambda w=worker: w.is_finished, "the poll worker stopped")
    await app.workers.wait_for_complete()
    await pilot.pause()
    app._tick()
    await pilot.pause()


# ---- the store's reads -------------------------------------------------------------------
def test_the_days_counts_read_two_indexes_not_every_case(sqlite_url: str) -> None:
    """`received OR closed since midnight` scanned the whole table (0.3 s a query on a million
    cases, eleven queries every 30 s per console), and so did the partners' handled count;
    each count now reads its own index."""
    engine = make_engine(sqlite_url)
    since = datetime(2026, 3, 8, 16, 0)
    t = Case.__table__
    with engine.connect() as conn:
        for col in (t.c.received_at, t.c.closed_at, t.c.handled_at):
            q = select(func.count()).where(col >= since).compile(conn)
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {q}", tuple(q.params.values()))
            steps = " / ".join(r[-1] for r in plan)
            assert "USING COVERING INDEX" in steps and "SCAN cases" not in steps, steps
    engine.dispose()


def test_day_counts_and_rates_by_stage(both: tuple[Store, Store], gudang: Deployment) -> None:
    writer, wall = both
    seed(writer, gudang)
    since = day_start(NOW, ZoneInfo(gudang.timezone))
    assert since == datetime(2026, 3, 8, 16, 0, tzinfo=UTC)  # local midnight, in UTC
    assert day_flow(wall, since) == (7, 1)
    assert day_flow(wall, NOW) == (0, 0)  # nothing was received or closed after NOW
    assert received_since(wall, [since, NOW - timedelta(hours=1), NOW]) == [7, 7, 0]
    # respond: 3 acknowledged in time, the fire alarm past its 30 s (2 not due yet); dispatch:
    # 2 in time, the fire alarm past its 60 s (1 not due yet); arrive: 1 in time, 1 late
    rates = compliance_by_stage(wall, since, NOW)
    assert rates == {"respond": (3, 4), "dispatch": (2, 3), "arrive": (1, 2)}


def test_the_wall_store_refuses_writes(both: tuple[Store, Store]) -> None:
    writer, wall = both
    cid = seed(writer, wall.d)[1]
    with pytest.raises(StoreError, match=r"readonly|read-only|read only"):
        wall.act(cid, "ack", D02, now=NOW)
    with pytest.raises(StoreError, match=r"readonly|read-only|read only"):
        wall.create({"source": "hotline", "external_id": "from-the-wall", "title": "x"}, D02)
    assert writer.get(cid).status == "new" and wall.get(cid).status == "new"
    assert len(writer.cases("all")) == len(CASES)


# ---- the app ---------------------------------------------------------------------------
@pytest.mark.anyio
async def test_wall_shows_counts_and_breaches_and_has_no_action_keys(
    writer: Store, wall_store: Store, gudang: Deployment
) -> None:
    ids = seed(writer, gudang)
    late, fresh, supervised = ids[0], ids[1], ids[3]
    app = make_wall(wall_store, gudang)
    async with app.run_test(size=(240, 67)) as pilot:
        await until(pilot, lambda: app.loaded and app.day, "first load and the day's counts")
        await pilot.pause()
        f = app.figures()
        assert (f.received, f.closed, f.open) == (7, 1, 6)
        assert (f.at_risk, f.overdue, f.met, f.due, f.rate) == (1, 2, 6, 9, 67), f
        counts = app.wall.query_one(DayCounts)
        assert counts.figures == f
        lines = app.wall.query_one(BreachList).lines_text
        listed = [int(line.split("#")[1].split()[0]) for line in lines]
        assert listed == [supervised, late], lines  # the most overdue first
        assert fresh not in listed
        top = lines[0]
        assert "+20:00" in top and "督办" in top and "L1 综合执法圈" in top, top
        assert "+0:40" in lines[1] and "督办" not in lines[1], lines[1]
        few, total = breach_rows(app.state, app.t, limit=1)  # a bad day: the list is capped
        assert [r.case_id for r in few] == [supervised] and total == 2
        assert str(app.wall.query_one("#breach-title", Static).render()).endswith("· 2")

        # no action keys: nothing can take focus, the console's keys change nothing
        assert app.focused is None and not app.screen.focus_chain
        bound = set(app.active_bindings)
        assert not bound & {g.key for g in GESTURES.values()}, bound
        seq = writer.change_seq()
        for g in GESTURES.values():
            await pilot.press(g.key)
        await pilot.press("enter", "escape", "colon")
        await pilot.pause()
        assert writer.change_seq() == seq
        assert app.is_running
        await pilot.press("ctrl+q")
    assert not app.is_running


@pytest.mark.anyio
async def test_wall_follows_other_terminals(
    writer: Store, wall_store: Store, gudang: Deployment
) -> None:
    late = seed(writer, gudang)[0]
    app = make_wall(wall_store, gudang)
    async with app.run_test(size=(240, 67)) as pilot:
        await until(pilot, lambda: app.loaded and app.day, "first load and the day's counts")
        await until(pilot, lambda: any(f"#{late} " in x for x in _lines(app)), "listed")
        counts = app.wall.query_one(DayCounts)

        # another terminal sends the fire out: within its 4 minutes to arrive, off the list
        writer.act(late, "ack", D02, now=NOW)
        writer.act(late, "dispatch", D02, to="1-01", now=NOW)
        await until(pilot, lambda: all(f"#{late} " not in x for x in _lines(app)), "off the list")
        assert app.state.light[late] == "ok"

        # a new report elsewhere: received today and open go up, its cell lights
        cell = gudang.grids_by_label["S3-15"].code
        fields = {"source": "hotline", "external_id": "wall-new", "title": "新来电", "grid": cell}
        writer.create(fields, D02, now=NOW)
        await until(
            pilot,
            lambda: (counts.figures.received, counts.figures.open) == (8, 7),
            "the new case in the counts",
        )
        lit = {c.code: c for c in app.state.cell_states(NOW)}[cell]
        assert (lit.open_cases, lit.worst) == (1, "ok")
        await pilot.press("ctrl+q")
    assert not app.is_running


@pytest.mark.anyio
async def test_wall_as_a_postgresql_viewer_login(pg_url: str, gudang: Deployment) -> None:
    """As `tafang wall` runs for the roster's viewer (v01, login "wall"): the database lets it
    read everything the wall shows and refuses its writes (tafang_viewer: SELECT only)."""
    from sqlalchemy.engine import make_url
    from tafang.store.identity import grant

    engine = make_engine(pg_url)
    writer = Store(engine, gudang)
    late = seed(writer, gudang)[0]
    assert grant(engine, gudang, "wall", "viewer") == "v01"
    as_wall = make_url(pg_url).set(username="wall").render_as_string(hide_password=False)
    wall_engine = read_only(make_engine(as_wall, upgrade=False))
    wall = Store(wall_engine, gudang, clocks=Policy(gudang))
    try:
        app = make_wall(wall, gudang)
        async with app.run_test(size=(240, 67)) as pilot:
            await until(pilot, lambda: app.loaded and app.day, "first load and the day's counts")
            await until(pilot, lambda: any(f"#{late} " in x for x in _lines(app)), "listed")
            assert (app.figures().received, app.figures().open) == (7, 6)
        with pytest.raises(Refused, match="viewer"):  # the roles rule, as the viewer
            wall.act(late, "ack", Actor("v01", "wall"), now=NOW)
        with pytest.raises(StoreError, match="read-only transaction"):  # the session
            wall.act(late, "ack", D02, now=NOW)
        plain = Store(make_engine(as_wall, upgrade=False), gudang)  # without the session guard
        with pytest.raises(StoreError, match="permission denied"):  # tafang_viewer's grants
            plain.act(late, "ack", D02, now=NOW)
        plain.engine.dispose()
        assert writer.get(late).status == "new"
    finally:
        wall_engine.dispose()
        engine.dispose()


def _lines(app: WallApp) -> list[str]:
    return app.wall.query_one(BreachList).lines_text


def test_wall_240x67(snap_compare, writer: Store, wall_store: Store, gudang: Deployment) -> None:
    seed(writer, gudang)
    assert snap_compare(make_wall(wall_store, gudang), terminal_size=(240, 67), run_before=settled)


def test_wall_120x36(snap_compare, writer: Store, wall_store: Store, gudang: Deployment) -> None:
    seed(writer, gudang)
    assert snap_compare(make_wall(wall_store, gudang), terminal_size=(120, 36), run_before=settled)


def test_wall_needs_an_existing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tafang.console.cli import main

    missing = tmp_path / "none.db"
    assert main(["--db", str(missing), "wall"]) == 2
    assert "tafang db upgrade" in capsys.readouterr().err
    assert not missing.exists()  # the wall made no store of its own


# ---- in a browser ----------------------------------------------------------------------------
def test_served_page_needs_no_cdn() -> None:
    page = offline_index()
    assert "googleapis" not in page and "https://" not in page.replace("http://www.w3.org", "")
    assert "fonts/RobotoMono-VariableFont_wght.ttf" in page


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.anyio
async def test_wall_served_over_http_and_websocket(
    writer: Store, url: str, gudang: Deployment, tmp_path: Path
) -> None:
    import aiohttp

    seed(writer, gudang)
    seq = writer.change_seq()
    port = _free_port()
    env = {**os.environ, "TAFANG_LOG_LEVEL": "WARNING"}
    env.pop("TAFANG_DB", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "tafang", "--db", url, "wall", "--serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            page = await _get_page(http, base, server)
            assert "googleapis" not in page and f"{base}/static/js/textual.js" in page
            assert f'data-session-websocket-url="ws://127.0.0.1:{port}/ws"' in page
            async with http.get(f"{base}/", headers={"Host": f"wall.local:{port}"}) as r:
                assert f'"ws://wall.local:{port}/ws"' in await r.text()  # as the browser asked
            async with http.get(f"{base}/static/js/textual.js") as r:
                assert r.status == 200
            async with http.get(f"{base}/static/fonts/RobotoMono-VariableFont_wght.ttf") as r:
                assert r.status == 200
            screen = await _screen_over_websocket(http, base)
        assert "今日受理" in screen and "超时案件" in screen, screen[-2000:]
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert writer.change_seq() == seq  # the browser's session wrote nothing


async def _get_page(http, base: str, server: subprocess.Popen) -> str:  # type: ignore[no-untyped-def,type-arg]
    import aiohttp

    t0 = time.monotonic()
    while True:
        assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
        try:
            async with http.get(base + "/") as r:
                assert r.status == 200
                return await r.text()
        except aiohttp.ClientConnectionError:
            assert time.monotonic() - t0 < 30, "tafang wall --serve did not answer"
            await asyncio.sleep(0.1)


async def _screen_over_websocket(http, base: str) -> str:  # type: ignore[no-untyped-def]
    """Connect as textual.js does (size in the query, then a resize message) and read the
    screen's bytes until the wall's words are there (or 40 s pass)."""
    got = bytearray()
    ws_url = base.replace("http", "ws") + "/ws?width=160&height=48"
    async with http.ws_connect(ws_url) as ws:
        await ws.send_str(json.dumps(["resize", {"width": 160, "height": 48}]))
        t0 = time.monotonic()
        while time.monotonic() - t0 < 40:
            try:
                msg = await ws.receive(timeout=1)
            except TimeoutError:
                continue
            if msg.type.name == "BINARY":
                got += msg.data
            elif msg.type.name in ("CLOSE", "CLOSED", "ERROR"):
                break
            text = got.decode("utf-8", "replace")
            if "今日受理" in text and "超时案件" in text:
                break
    return got.decode("utf-8", "replace")
