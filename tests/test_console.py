"""The console driven like a dispatcher drives it: real app, real keys, a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from tafang.console.app import Command, TafangApp, parse_command
from tafang.console.i18n import Strings
from tafang.console.live_state import LiveState
from tafang.console.queue_filter import Filter
from tafang.console.ranking import rank
from tafang.console.screens.ask import AskScreen
from tafang.console.screens.case import CaseScreen
from tafang.console.screens.help import HelpScreen
from tafang.console.view_model import ViewModel
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.models import Heartbeat
from tafang.widgets.dispatch_panel import DispatchPanel
from textual.widgets import Input

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]


OTHER = Actor("d02", "terminal-2")
LEAD = Actor("s02", "terminal-3")  # a supervisor: void, supervise
SIZE = (120, 36)


@pytest.fixture
def db(tmp_path: Path, gudang: Deployment) -> Iterator[tuple[Store, str]]:
    url = f"sqlite:///{tmp_path / 'console.db'}"
    engine = make_engine(url)
    yield Store(engine, gudang), url
    engine.dispose()


def grid(d: Deployment, label: str) -> str:
    return d.grids_by_label[label].code


def new_case(store: Store, d: Deployment, title: str = "共享单车堵塞消防通道", **kw: object) -> int:
    fields = {"source": "ping_an", "title": title, "category": "0590", "grid": grid(d, "N3-07")}
    fields.update(kw)
    return store.create(fields, OTHER).id


async def until(pilot, cond: Callable[[], object], timeout: float = 5.0) -> float:  # type: ignore[no-untyped-def]
    """Wait (without sleeping the UI) until `cond()` holds; returns the seconds it took."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.02)
    return time.monotonic() - t0


def notes(app: TafangApp) -> str:
    return "\n".join(f"{n.title} {n.message}" for n in app._notifications)


def app_for(store: Store, d: Deployment, operator: str = "d01", lang: str = "en") -> TafangApp:
    return TafangApp(store, d, operator=operator, terminal="test-1", lang=lang)


# ---- the keyboard walk ------------------------------------------------------------------------
async def test_dispatcher_acks_and_dispatches_from_the_keyboard(db, gudang: Deployment) -> None:
    store, _ = db
    cid = new_case(store, gudang, "店外经营占道", category="0502")  # 基础组
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        await pilot.press("a")
        await until(pilot, lambda: store.get(cid).status == "acknowledged")
        await pilot.press("d")
        panel = app.dash.query_one(DispatchPanel)
        await until(pilot, lambda: panel.is_open and panel.query_one(Input).has_focus)
        top = panel.shown[0]
        assert top.kind == "officer"
        officer = gudang.officers_by_code[top.code][1]
        assert (officer.group, officer.circle) == ("basic", "E-N3")  # competent, nearby
        await pilot.press("enter")
        await until(pilot, lambda: store.get(cid).status == "dispatched")
        assert store.get(cid).assignee == top.code
        await until(pilot, lambda: app.state.cases[cid].status == "dispatched")
        assert "dispatched" in notes(app)


async def test_typing_in_the_dispatch_panel_filters_and_enter_takes_the_top(db, gudang) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        await pilot.press("d")
        panel = app.dash.query_one(DispatchPanel)
        await until(pilot, lambda: panel.is_open)
        await pilot.press(*"4-07")
        await until(pilot, lambda: [c.code for c in panel.shown] == ["4-07"])
        await pilot.press("enter")
        await until(pilot, lambda: store.get(cid).assignee == "4-07")
        assert not panel.is_open and app.dash.queue.has_focus


async def test_the_dispatch_panel_closes_on_escape_and_when_focus_leaves(db, gudang) -> None:
    """The panel is a popup over the dashboard: Esc closes it, so does Tab (focus on the
    queue again); nothing is dispatched, and `d` opens it again for the cursor's case."""
    store, _ = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        panel = app.dash.query_one(DispatchPanel)
        assert not panel.display
        await pilot.press("d")
        await until(pilot, lambda: panel.is_open and panel.display)
        assert app.screen is app.dash  # the queue stays on screen behind it
        await pilot.press("escape")
        await until(pilot, lambda: not panel.is_open and app.dash.queue.has_focus)
        assert not panel.display
        await pilot.press("d")
        await until(pilot, lambda: panel.is_open and panel.query_one(Input).has_focus)
        await pilot.press("tab")
        await until(pilot, lambda: not panel.is_open and app.dash.queue.has_focus)
        await pilot.pause(0.1)
        assert store.get(cid).status == "new" and not app.pending


async def test_dispatch_from_the_case_screen(db, gudang: Deployment) -> None:
    """`d` on the full case screen opens the panel there (the case stays in view)."""
    store, _ = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, CaseScreen))
        await pilot.press("d")
        panel = app.screen.query_one(DispatchPanel)
        await until(pilot, lambda: panel.is_open)
        top = panel.shown[0].code
        await pilot.press("enter")
        await until(pilot, lambda: store.get(cid).status == "dispatched")
        assert store.get(cid).assignee == top
        assert isinstance(app.screen, CaseScreen) and not panel.is_open


async def test_command_line_dispatch(db, gudang: Deployment) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded)
        await pilot.press("colon")
        assert app.dash.command.has_focus
        await pilot.press(*f"d {cid} 2-03", "enter")
        await until(pilot, lambda: store.get(cid).status == "dispatched")
        assert store.get(cid).assignee == "2-03"
        assert app.dash.queue.has_focus  # back to the queue after a command


async def test_command_line_shorthand_moves_a_case_through_its_life(db, gudang) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang, operator="s01")  # a supervisor: rework (w) is theirs too
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded)
        for line, status in (
            (f"a {cid}", "acknowledged"),
            (f"d {cid} 1-03", "dispatched"),
            (f"ar {cid}", "on_scene"),
            (f"h {cid}", "handled"),
            (f"w {cid} photo shows bikes still there", "dispatched"),
        ):
            app.run_command(line)
            await until(pilot, lambda s=status: store.get(cid).status == s)
            # The next line carries the version the console holds: wait until it has the
            # answer too (the store commits before the worker's message reaches the app).
            await until(pilot, lambda: app.state.cases[cid].version == store.get(cid).version)
        app.run_command(f"s {cid} 尽快处理")
        await until(pilot, lambda: store.get(cid).supervised)
        other = new_case(store, gudang, title="dup")
        app.run_command(f"m {other} into {cid}")
        await until(pilot, lambda: store.get(other).status == "merged")
        assert store.get(other).merged_into == cid


# ---- live updates ------------------------------------------------------------------------------
async def test_a_change_from_another_connection_appears_without_a_key_press(db, gudang) -> None:
    """The figure (≤ 1 s on SQLite, ≤ 200 ms on PostgreSQL) is bench/live.py's to measure."""
    store, url = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and cid in app.state.cases)
        engine2 = make_engine(url)
        try:
            other = Store(engine2, gudang)
            other.act(cid, "ack", OTHER)
            await until(pilot, lambda: app.state.cases[cid].status == "acknowledged")
            row = next(r for r in app.dash.queue.rows if r.case_id == cid)
            assert row.status == "acknowledged"
            fresh = other.create(
                {"source": "smart_alarm", "title": "烟感告警", "grid": grid(gudang, "S1-01")},
                OTHER,
            )
            await until(pilot, lambda: any(r.case_id == fresh.id for r in app.dash.queue.rows))
        finally:
            engine2.dispose()


async def test_a_case_closed_elsewhere_leaves_the_queue(db, gudang) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and cid in app.state.cases)
        store.act(cid, "void", LEAD, reason="duplicate report")
        await until(pilot, lambda: cid not in app.state.cases)
        assert all(r.case_id != cid for r in app.dash.queue.rows)


async def test_store_outage_is_shown_and_the_console_recovers(db, gudang) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang)
    real = store.change_seq

    def broken() -> int:
        raise OSError("disk went away")

    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded)
        store.change_seq = broken  # type: ignore[method-assign]
        await until(pilot, lambda: app.store_down is not None)
        assert "store unreachable since" in app.header_text().plain
        assert cid in app.state.cases  # what was on screen stays
        store.change_seq = real  # type: ignore[method-assign]
        await until(pilot, lambda: app.store_down is None, timeout=3)
        assert "unreachable" not in app.header_text().plain


async def test_header_shows_daemon_heartbeat(db, gudang) -> None:
    store, _ = db
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.daemon_seen)
        assert "daemon down" in app.header_text().plain
        now = datetime.now(UTC)
        with store.engine.begin() as conn:
            conn.execute(insert(Heartbeat.__table__).values(name="daemon", at=now, started_at=now))
        await until(pilot, lambda: "daemon ok" in app.header_text().plain)
        old = now - timedelta(minutes=3)
        with store.engine.begin() as conn:
            conn.execute(Heartbeat.__table__.update().values(at=old))
        since = old.astimezone(app.tz).strftime("%H:%M")
        await until(pilot, lambda: f"daemon down since {since}" in app.header_text().plain)


async def test_a_fresh_breach_flashes_its_row(db, gudang) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    clock = {"now": datetime.now(UTC)}
    app = TafangApp(
        store, gudang, operator="d01", lang="en", now=lambda: clock["now"], tick_seconds=60
    )
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded)
        app._tick()
        assert not app.dash.queue.is_flashing(cid)
        clock["now"] += timedelta(seconds=61)  # the 60 s respond clock ran out
        app._tick()
        assert app.dash.queue.is_flashing(cid)
        assert app.counts.breached == 1
        assert "breached 1" in app.header_text().plain


# ---- untrusted text ------------------------------------------------------------------------
EVIL = "[red]FAKE[/red][@click=app.quit]x[/]\x1b[31m"


async def test_injected_markup_and_escapes_render_literally(db, gudang) -> None:
    store, _ = db
    cid = new_case(store, gudang, title=EVIL, location="[b]loc[/b]", reporter="\x1b]0;pwn\x07")
    app = app_for(store, gudang, operator="c01")  # a checker: the close is refused by state
    async with app.run_test(size=(200, 60)) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        svg = app.export_screenshot()
        assert "[red]FAKE[/red]" in svg
        assert "␛[31m" in svg
        assert "\x1b" not in svg
        await pilot.press("o")
        await until(pilot, lambda: isinstance(app.screen, CaseScreen))
        await pilot.pause(0.2)
        svg = app.export_screenshot()
        assert "[red]FAKE[/red][@click=app.quit]x[/]␛[31m" in svg
        assert "[b]loc[/b]" in svg
        assert "␛]0;pwn␇" in svg
        # A refusal quotes the case as typed, never as markup.
        await pilot.press("c")
        await until(pilot, lambda: "cannot close" in notes(app))
        assert app.is_running


# ---- refusals ---------------------------------------------------------------------------------
async def test_a_refused_move_shows_the_reason(db, gudang) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang)  # d01 is a dispatcher, not a supervisor
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        await pilot.press("i")  # arrive on a new case
        await until(pilot, lambda: "cannot arrive" in notes(app))
        await pilot.press("p")  # hold: refused at once, no reason asked for nothing
        await until(pilot, lambda: "needs a supervisor" in notes(app))
        assert not isinstance(app.screen, AskScreen)
        assert store.get(cid).status == "new"


async def test_a_supervisor_may_hold(db, gudang) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang, operator="s01")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        await pilot.press("p", *"road closed", "enter")
        await until(pilot, lambda: store.get(cid).status == "held")


async def test_losing_a_race_says_who_changed_the_case(db, gudang) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and cid in app.state.cases)
        shown = app.state.cases[cid].version
        store.act(cid, "ack", OTHER)
        app.act(cid, "dispatch", version=shown, to="2-03")
        await until(pilot, lambda: "d02" in notes(app))
        assert "terminal-2" in notes(app)
        assert store.get(cid).status == "acknowledged"


# ---- screens -----------------------------------------------------------------------------------
async def test_case_screen_shows_the_timeline(db, gudang) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    store.act(cid, "ack", OTHER)
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded)
        app.run_command(f"o {cid}")
        await until(pilot, lambda: isinstance(app.screen, CaseScreen))
        await until(pilot, lambda: len(app.screen.entries) == 2)
        assert [e.action for e in app.screen.entries] == ["create", "ack"]
        labels = [str(cell) for cell in app.screen._fields().columns[0].cells]
        clocks = app.t("case.clocks")
        at = labels.index(clocks)  # one label over the clock rows (it was on every row)
        assert labels.count(clocks) == 1 and labels[at + 1] == ""
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.dash)


async def test_new_phone_report_form_creates_a_case(db, gudang) -> None:
    store, _ = db
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded)
        await pilot.press("n")
        await pilot.pause(0.1)
        await pilot.press(*"noise at night")
        app.screen.query_one("#f-grid-label").value = "S2-04"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: len(store.cases("open")) == 1)
        case = store.cases("open")[0]
        assert (case.source, case.title, case.grid) == (
            "hotline",
            "noise at night",
            grid(gudang, "S2-04"),
        )
        await until(pilot, lambda: case.id in app.state.cases)


async def test_filters_map_pick_and_escape(db, gudang) -> None:
    store, _ = db
    a = new_case(store, gudang, title="bikes by the metro")
    b = new_case(store, gudang, title="noise", grid=grid(gudang, "S1-01"), category="0603")
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and len(app.dash.queue.rows) == 2)
        app.run_command("f metro")
        await until(pilot, lambda: [r.case_id for r in app.dash.queue.rows] == [a])
        await pilot.press("escape")
        await until(pilot, lambda: len(app.dash.queue.rows) == 2)
        await pilot.press("g")  # to the map
        assert app.dash.map.has_focus
        app.dash.map.move_cursor(grid(gudang, "S1-01"))
        await pilot.press("enter")
        await until(pilot, lambda: [r.case_id for r in app.dash.queue.rows] == [b])
        assert app.dash.queue.has_focus
        await pilot.press("escape")
        await until(pilot, lambda: len(app.dash.queue.rows) == 2)


async def test_help_lists_the_keys(db, gudang) -> None:
    store, _ = db
    app = app_for(store, gudang)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await pilot.pause(0.1)
        svg = app.export_screenshot()
        assert "Acknowledge" in svg and "Supervise" in svg
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.dash)


async def test_footer_speaks_chinese_by_default(db, gudang) -> None:
    store, _ = db
    app = TafangApp(store, gudang, operator="d01")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.1)
        svg = app.export_screenshot()
        assert "受理" in svg and "派遣" in svg and "Acknowledge" not in svg


# ---- pure parts ---------------------------------------------------------------------------------
def test_parse_command_shorthand() -> None:
    assert parse_command("a 1234") == Command("ack", 1234)
    assert parse_command("d 1043 2-03") == Command("dispatch", 1043, to="2-03")
    assert parse_command("m 12 into 99") == Command("merge", 12, into=99)
    assert parse_command("m 12 99") == Command("merge", 12, into=99)
    assert parse_command("v 5 reported twice") == Command("void", 5, reason="reported twice")
    assert parse_command("ar 7") == Command("arrive", 7)
    assert parse_command("f 单车 地铁") == Command("filter", text="单车 地铁")
    assert isinstance(parse_command("x 1"), str)
    assert isinstance(parse_command("a abc"), str)
    assert isinstance(parse_command("m 12 into"), str)


def test_ranking_puts_competence_before_circle_then_load_then_distance(db, gudang) -> None:
    store, _ = db
    cid = store.create(
        {
            "source": "ping_an",
            "title": "装修消防",
            "category": "0602",
            "grid": grid(gudang, "S2-08"),
        },
        OTHER,
    ).id
    t = Strings("en")
    choices = rank(store.get(cid), store.officers(), gudang, t)
    officers = [c for c in choices if c.kind == "officer"]
    assert officers[0].code == "3-11"  # 应急消防组 and E-S2
    assert gudang.officers_by_code[officers[0].code][1].circle == "E-S2"
    assert any("same circle" in r for r in officers[0].reasons)
    assert officers[0].reasons[:2] == ("emergency", "available")  # agency, status
    groups = [gudang.officers_by_code[c.code][1].group for c in officers]
    firsts = groups[: groups.count("emergency_fire")]
    assert set(firsts) == {"emergency_fire"}  # every competent officer before any other
    assert choices[-1].kind == "squad"
    store.act(new_case(store, gudang), "dispatch", OTHER, to="3-11")
    after = rank(store.get(cid), store.officers(), gudang, t)
    codes = [c.code for c in after if c.kind == "officer"]
    assert codes[0] != "3-11"
    free = [c for c in after if c.kind == "officer" and "available" in c.reasons]
    assert codes.index("3-11") >= len(free)  # en route: shown, with its status, after the free
    assert "en route" in next(c for c in after if c.code == "3-11").reasons


def test_ranking_lists_partner_teams_for_their_categories_first(db, gudang) -> None:
    store, _ = db
    t = Strings("zh")
    bikes = store.get(new_case(store, gudang, "哈啰单车堵塞消防通道"))
    choices = rank(bikes, store.officers(), gudang, t)
    assert [c.kind for c in choices[:3]] == ["partner"] * 3
    assert choices[0].code == "hellobike"  # the operator the report names
    other = store.get(new_case(store, gudang, "违法建设", category="0601"))
    assert "partner" not in {c.kind for c in rank(other, store.officers(), gudang, t)}


def test_clock_lights_and_live_state(gudang, db) -> None:
    store, _ = db
    cid = new_case(store, gudang)
    c = store.get(cid)
    t0 = c.received_at
    vm = ViewModel(gudang, Strings("en"))
    assert vm.rules.clock_state(c, t0 + timedelta(seconds=10)).state == "ok"
    assert vm.rules.clock_state(c, t0 + timedelta(seconds=50)).state == "at_risk"
    assert vm.rules.clock_state(c, t0 + timedelta(seconds=60)).state == "breached"
    live = LiveState(vm)
    live.load([c], t0)
    assert [r.case_id for r in live.sorted_rows(Filter(text="消防"))] == [cid]
    assert live.sorted_rows(Filter(circle="E-S1")) == []
    assert [s.worst for s in live.cell_states() if s.open_cases] == ["ok"]
    assert live.advance(t0 + timedelta(seconds=50)) == []
    assert live.counts().at_risk == 1
    assert live.advance(t0 + timedelta(seconds=70)) == [cid]
    assert [s.worst for s in live.cell_states() if s.open_cases] == ["breached"]
    assert live.counts().breached == 1 and live.counts().at_risk == 0


def test_console_and_policy_agree_on_a_held_case(gudang, db) -> None:
    """The case the four copies of the light disagreed on: held while at risk. The policy
    froze it at the hold, the console showed no clock and the queue widget ran it on; now
    the console's row, its live light and the policy read one rule, from a SQLite load."""
    from tafang.sla.policy import Policy
    from tafang.store.queries import open_cases

    store, _ = db
    t0 = datetime.now(UTC) - timedelta(hours=1)
    cid = store.create(
        {"source": "ping_an", "title": "held", "category": "0590", "grid": grid(gudang, "N3-07")},
        OTHER,
        now=t0,
    ).id
    store.act(cid, "hold", Actor("s01", "t1"), reason="owner away", now=t0 + timedelta(seconds=50))
    (c,) = open_cases(store)
    assert c.status == "held"
    vm = ViewModel(gudang, Strings("en"))
    policy = Policy(gudang)
    for later in (51, 60, 3600):  # past the deadline the running clock would have had
        now = t0 + timedelta(seconds=later)
        want = policy.clock_state(c, now)
        assert (want.clock, want.state, want.paused) == ("respond", "at_risk", True)
        live = LiveState(vm)
        live.load([c], now)
        row = live.rows[cid]
        assert (row.clock, row.held_at) == (want.clock, t0 + timedelta(seconds=50))
        assert live.light[cid] == want.state
        assert live.advance(now + timedelta(days=1)) == [] and live.light[cid] == want.state
        assert (live.counts().at_risk, live.counts().breached) == (1, 0)


# ---- the demo ---------------------------------------------------------------------------------
def test_demo_seeds_a_backlog_and_its_feed_posts_through_intake(tmp_path: Path) -> None:
    from tafang.console.demo import DemoFeed, DemoOptions, make_demo_store, prepare

    store, d, path = make_demo_store(tmp_path)
    opts = DemoOptions(speed=600, backlog=12, seed=3)
    prepare(store, opts)
    backlog = store.cases("open")
    assert len(backlog) == 12
    assert len({c.status for c in backlog}) >= 3  # varied states
    assert {c.source for c in backlog} <= d.channel_codes
    feed = DemoFeed(store, opts)
    feed.start()
    try:
        t0 = time.monotonic()
        while len(store.cases("all")) < 14 and time.monotonic() - t0 < 5:
            time.sleep(0.05)
    finally:
        feed.stop()
    assert not feed.is_alive()
    fresh = [c for c in store.cases("all") if c.id > max(b.id for b in backlog)]
    assert fresh and all(c.external_id.startswith("demo-") for c in fresh)
    assert path.exists()


def test_fast_open_case_load_matches_the_store(db, gudang) -> None:
    from tafang.store.queries import open_cases

    store, _ = db
    a = new_case(store, gudang, title="[x] 引号\"'", location="地点")
    new_case(store, gudang, grid=None, category=None)
    store.act(a, "dispatch", OTHER, to="2-03")
    store.act(a, "supervise", LEAD, reason="快")
    closed = new_case(store, gudang)
    store.act(closed, "void", LEAD, reason="dup")
    assert open_cases(store) == store.cases("open")


def test_todays_compliance_counts_met_and_missed_stages(db, gudang) -> None:
    from tafang.store.queries import todays_compliance

    store, _ = db
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    on_time = store.create({"source": "hotline", "title": "a"}, OTHER, now=t0).id
    store.act(on_time, "ack", OTHER, now=t0 + timedelta(seconds=30))  # respond met
    store.act(on_time, "dispatch", OTHER, to="1-01", now=t0 + timedelta(seconds=400))  # late
    store.create({"source": "hotline", "title": "b"}, OTHER, now=t0)  # nothing done: 3 missed
    voided = store.create({"source": "hotline", "title": "c"}, OTHER, now=t0).id
    store.act(voided, "void", LEAD, reason="test", now=t0 + timedelta(seconds=5))
    now = t0 + timedelta(minutes=9)
    # respond: met 1 + missed 1; dispatch: late 1 + missed 1; arrive: missed 2 (on_time's
    # arrive clock ran out while dispatched, b's while new); the void case counts nowhere.
    assert todays_compliance(store, t0 - timedelta(seconds=1), now) == (1, 6)


@pytest.mark.parametrize(("env", "fps"), [(None, "120"), ("45", "45")])
def test_console_raises_textual_frame_rate_unless_told(env: str | None, fps: str) -> None:
    """The console's entry module sets TEXTUAL_FPS before Textual reads it (once, at import);
    an explicit setting wins. A fresh interpreter, as `tafang console` starts."""
    environ = {k: v for k, v in os.environ.items() if k != "TEXTUAL_FPS"}
    if env is not None:
        environ["TEXTUAL_FPS"] = env
    code = (
        "import console.cli, console.app; from textual import constants; print(constants.MAX_FPS)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parent.parent,
        env=environ,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == fps


async def test_a_deployment_can_remap_keys(tmp_path: Path, gudang) -> None:
    """[ui] keymap in config.toml rebinds an action by its binding id."""
    dep = gudang.model_copy(
        update={"ui": gudang.ui.model_copy(update={"keymap": {"tafang.ack": "k"}})}
    )
    store = Store(make_engine(f"sqlite:///{tmp_path / 'k.db'}"), dep)
    cid = new_case(store, dep)
    app = TafangApp(store, dep, operator="d01", poll_interval=0.05)
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.dash.queue.cursor_case_id == cid)
        await pilot.press("a")  # the old key does nothing now: no move, no worker started
        await pilot.pause()
        assert not [w for w in app.workers if w.group == "act"]
        assert store.get(cid).status == "new"
        await pilot.press("k")
        await until(pilot, lambda: store.get(cid).status == "acknowledged")
        app.action_help()
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert ("k", app.t("action.ack"), True) in app.screen.keys
