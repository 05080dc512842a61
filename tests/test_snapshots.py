"""Pictures of the dashboard at every size it is used at: 80×24, 120×36, 160×45 and a
240×67 wall, each with the cursor sent to the last case, so the queue has scrolled and the
pinned band of breached cases must still be on screen (asserted, not only pictured).

Deterministic on purpose: a frozen clock injected into the app, cases created at fixed times
with fixed content, officers' states stamped at a fixed time, no demo feed, and before the
capture the poll worker is stopped (and awaited), the tick is run once by hand and the map's
mark is awaited, so a loaded machine (`pytest -n 2`) cannot change the picture. Regenerate with
`pytest tests/test_snapshots.py --snapshot-update` after a deliberate change, and look at the
SVGs under tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from tafang.console.app import TafangApp
from tafang.console.screens.case import CaseScreen
from tafang.console.screens.dashboard import HeaderLine
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.models import Officer, Outbox

NOW = datetime(2026, 3, 9, 1, 0, 0, tzinfo=UTC)  # 09:00 in Hangzhou, a Monday
ACTOR = Actor("d02", "terminal-2")

# (seconds before NOW, channel, category, cell label, title, priority, moves)
CASES = (
    (55, "ping_an", "0590", "N3-07", "共享单车堵塞消防通道", "normal", ()),
    (70, "smart_alarm", "0404", "S1-04", "电动车楼道起火", "critical", ()),
    (40, "grid_app", "0603", "N1-09", "广场舞音响扰民", "normal", ("ack",)),
    (150, "xihu_code", "0502", "N2-10", "餐馆门口摆桌占道", "normal", ("ack", "dispatch:2-03")),
    (400, "hotline", "0301", "S2-05", "夜间施工噪音扰民", "urgent", ("ack", "dispatch:3-05")),
    (
        900,
        "city_ops",
        "0102",
        "N4-12",
        "垃圾桶满溢无人清运",
        "normal",
        ("ack", "dispatch:1-03", "arrive"),
    ),
    (20, "ping_an", "0590", "S3-08", "[red]FAKE[/red] 单车\x1b[31m", "normal", ()),
    (
        1500,
        "enterprise",
        "0605",
        "N2-03",
        "超市销售过期食品",
        "normal",
        ("ack", "dispatch:sq4", "escalate"),
    ),
    (200, "hotline", "0603", "N1-05", "深夜KTV噪音扰民", "normal", ()),
)


# Cases on time, enough that the queue scrolls at the smaller sizes.
FILLER = tuple(
    (
        5 + i,
        "grid_app",
        "0603",
        f"S{1 + i % 3}-{1 + i % 15:02d}",
        f"夜间噪声投诉 {i + 1}",
        "normal",
        (),
    )
    for i in range(30)
)
BREACHED = (
    8,
    9,
    2,
)  # case ids (creation order) whose clocks have run out at NOW, most overdue first


def seed(store: Store, d: Deployment) -> None:
    for i, (ago, src, cat, label, title, prio, moves) in enumerate(CASES + FILLER):
        at = NOW - timedelta(seconds=ago)
        fields = {
            "source": src,
            "external_id": f"snap-{i}",
            "title": title,
            "category": cat,
            "grid": d.grids_by_label[label].code,
            "priority": prio,
        }
        cid = store.create(fields, ACTOR, now=at).id
        for n, move in enumerate(moves, 1):
            action, _, to = move.partition(":")
            reason = "no answer from the circle" if action == "escalate" else ""
            store.act(
                cid, action, ACTOR, to=to or None, reason=reason, now=at + timedelta(seconds=10 * n)
            )
    with store.engine.begin() as conn:
        conn.execute(update(Officer.__table__).values(status_since=NOW - timedelta(minutes=7)))
        # the hand escalation's notice was delivered (else the header says it waits)
        conn.execute(update(Outbox.__table__).values(status="sent", sent_at=NOW))


@pytest.fixture
def seeded(tmp_path: Path, gudang: Deployment) -> Iterator[Store]:
    engine = make_engine(f"sqlite:///{tmp_path / 'snap.db'}")
    store = Store(engine, gudang)
    seed(store, gudang)
    yield store
    engine.dispose()


async def until(pilot, done: Callable[[], bool], what: str) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not done():
        assert time.monotonic() - t0 < 10, f"the console did not settle: {what}"
        await pilot.pause(0.02)


async def settled(pilot) -> None:  # type: ignore[no-untyped-def]
    """A fixed picture however loaded the machine: wait for what the poll brings, then stop
    every live part (the poll worker, and the tick is an hour away) so nothing races the
    capture, and wait for the map's mark instead of sleeping for its timer."""
    app = pilot.app
    await until(
        pilot,
        lambda: app.loaded and app.daemon_seen and app.compliance is not None,
        "first load, daemon heartbeat and compliance",
    )
    for worker in app.workers.cancel_group(app, "poll"):
        await until(pilot, lambda w=worker: w.is_finished, "the poll worker stopped")
    await app.workers.wait_for_complete()  # any other worker (none is expected)
    await pilot.pause()  # whatever the poll posted before it stopped is applied
    app._tick()
    queue = app.dash.queue
    await pilot.press("end")  # the last case: the queue scrolls under the pinned band
    case = app.state.cases[queue.cursor_case_id]
    await until(pilot, lambda: app.dash.map.marked == case.grid, "the cursor's cell marked")
    detail = app.dash.detail
    await until(
        pilot,
        lambda: (
            detail.detail is not None
            and detail.detail.case_id == case.id
            and detail.detail.timeline[0][0] != ""
        ),  # the record read, not "reading…"
        "the detail pane shows the cursor's case and its record",
    )
    await app.workers.wait_for_complete()
    await pilot.pause()
    assert_breaches_pinned(app)


def assert_breaches_pinned(app: TafangApp) -> None:
    """Every breached case is on screen, in the band under the header, most overdue first,
    while the cursor sits on the last case further down."""
    queue = app.dash.queue
    assert queue.cursor_row == len(queue.rows) - 1
    assert queue.pinned == len(BREACHED)
    shown = queue.visible_lines()
    band = shown[1 : 1 + len(BREACHED)]
    ids = [int(line.split()[2]) for line in band]  # countdown, clock, case id, …
    assert ids == list(BREACHED), shown
    assert all(line.lstrip().startswith("-") for line in band)  # overdue countdowns
    assert str(queue.cursor_case_id) in "".join(shown[1 + len(BREACHED) :])


def make_app(store: Store, d: Deployment, lang: str = "zh") -> TafangApp:
    return TafangApp(
        store,
        d,
        operator="d01",
        terminal="snap",
        lang=lang,
        now=lambda: NOW,
        figures_after=0,
        tick_seconds=3600,  # the test ticks once, by hand
    )


@pytest.mark.parametrize(
    "size", [(80, 24), (120, 36), (160, 45), (240, 67)], ids=lambda s: f"{s[0]}x{s[1]}"
)
def test_dashboard(snap_compare, seeded: Store, gudang: Deployment, size: tuple[int, int]) -> None:
    assert snap_compare(make_app(seeded, gudang), terminal_size=size, run_before=settled)


def test_dashboard_english_120x36(snap_compare, seeded: Store, gudang: Deployment) -> None:
    assert snap_compare(make_app(seeded, gudang, "en"), terminal_size=(120, 36), run_before=settled)


def pane_text(app: TafangApp) -> str:
    return app.dash.detail.render().plain


@pytest.mark.anyio
async def test_detail_pane_follows_the_cursor_in_plain_words(seeded: Store, gudang) -> None:  # type: ignore[no-untyped-def]
    app = make_app(seeded, gudang)
    app.figures_after = 0.05  # a zero-delay timer trips Textual's timer under anyio's loop
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: app.loaded, "first load")
        queue = app.dash.queue
        assert queue.cursor_case_id == 8  # the most overdue: escalated, at the squad
        detail = app.dash.detail
        await until(
            pilot,
            lambda: (
                detail.detail is not None
                and detail.detail.case_id == 8
                and detail.detail.timeline[0][0] != ""
            ),
            "case 8 and its record in the pane",
        )
        text = pane_text(app)
        assert "超市销售过期食品" in text and "上报" in text and "支援队" in text
        assert "到场 截止 08:40:00" in text  # the deadline in Hangzhou time (00:40 UTC)
        assert "08:35:00 新建" in text  # the record in local time, in words
        for raw in ("=", "catch_up", "lateness", "due_at", "+00:00", "版本"):
            assert raw not in text, raw
        await pilot.press("down")
        await until(pilot, lambda: detail.detail is not None and detail.detail.case_id == 9, "9")
        assert "深夜KTV噪音扰民" in pane_text(app)
        await pilot.press("enter")  # the full case keeps the header in view
        await until(pilot, lambda: isinstance(app.screen, CaseScreen), "the case screen")
        await pilot.pause(0.1)
        header = app.screen.query_one("#case-header", HeaderLine).text.plain
        assert "已超时 3" in header and "09:00:00" in header
        shot = app.export_screenshot()
        assert "版本" not in shot and "catch_up" not in shot


@pytest.mark.anyio
async def test_after_an_action_the_cursor_goes_to_the_next_case_needing_it(  # type: ignore[no-untyped-def]
    seeded: Store, gudang
) -> None:
    app = make_app(seeded, gudang)
    app.figures_after = 0.05
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded, "first load")
        queue = app.dash.queue
        await pilot.press("down")
        assert queue.cursor_case_id == 9  # breached, new: the dispatcher acknowledges it
        await pilot.press("a")
        assert queue.cursor_case_id == 8  # at once: the most overdue other case
        await until(pilot, lambda: seeded.get(9).status == "acknowledged", "the store's answer")
        await pilot.pause()
        assert queue.cursor_case_id == 8  # the answer moved case 9's row, not the cursor
