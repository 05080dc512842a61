"""The shift in the real console (Pilot): duty keys on the squad panel, off-duty and on-break
officers out of the dispatch ranking, the handover screen and its ack on the record, and the
spoken alarm running a real command."""

from __future__ import annotations

import json
import stat
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tafang.console.app import TafangApp
from tafang.console.screens.ask import AskScreen
from tafang.console.screens.handover import HandoverScreen
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment, Voice
from tafang.store.db import make_engine
from tafang.store.models import AuditEntry
from tafang.widgets.dispatch_panel import DispatchPanel
from tafang.widgets.squad_panel import SquadPanel

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]
OTHER = Actor("d02", "terminal-2")
SIZE = (120, 36)


@pytest.fixture
def store(tmp_path: Path, gudang: Deployment) -> Iterator[Store]:
    engine = make_engine(f"sqlite:///{tmp_path / 'shift.db'}")
    yield Store(engine, gudang)
    engine.dispose()


async def until(pilot, cond: Callable[[], object], timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.02)


def new_case(store: Store, d: Deployment, **kw: object) -> int:
    fields = {"source": "ping_an", "title": "店外经营占道", "category": "0502"}
    fields.update({"grid": d.grids_by_label["N3-07"].code, **kw})
    return store.create(fields, OTHER).id


def entries(store: Store, action: str) -> list[dict]:
    a = AuditEntry.__table__
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(a.c.operator, a.c.detail).where(a.c.action == action).order_by(a.c.seq)
        )
        return [{"operator": r.operator, **json.loads(r.detail)} for r in rows]


def duty(store: Store, code: str) -> str:
    return next(o.duty for o in store.officers() if o.code == code)


async def test_off_duty_and_on_break_officers_are_not_offered(
    store: Store, gudang: Deployment
) -> None:
    cid = new_case(store, gudang)
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="zh")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and cid in app.state.cases)
        app.action_move("dispatch", app.state.cases[cid])
        panel = app.dash.query_one(DispatchPanel)
        await until(pilot, lambda: panel.is_open)
        first, second = [c.code for c in panel.shown if c.kind == "officer"][:2]
        await pilot.press("escape")
        store.set_officer_status(first, "off_duty", OTHER)
        store.set_officer_status(second, "on_break", OTHER)
        await until(
            pilot, lambda: {o.code: o.duty for o in app.state.officers}[second] == "on_break"
        )
        app.action_move("dispatch", app.state.cases[cid])
        await until(pilot, lambda: panel.is_open)
        offered = {c.code for c in panel.shown if c.kind == "officer"}
        assert first not in offered and second not in offered
        assert len(offered) == len(gudang.officers_by_code) - 2


async def test_the_duty_keys_on_the_squad_panel(store: Store, gudang: Deployment) -> None:
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="zh")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.ready)
        await pilot.press("b")  # the queue has focus: the key says where to go, changes nothing
        await pilot.pause(0.05)
        assert "Tab" in "\n".join(n.message for n in app._notifications)
        panel = app.dash.query_one(SquadPanel)
        panel.focus()
        await until(pilot, lambda: panel.cursor_code is not None)
        code = panel.cursor_code
        await pilot.press("b")
        await until(pilot, lambda: duty(store, code) == "on_break")
        await until(
            pilot, lambda: {o.code: o.status for o in app.state.officers}[code] == "on_break"
        )
        await pilot.press("b")
        await until(pilot, lambda: duty(store, code) == "on_duty")
        await pilot.press("B")
        await until(pilot, lambda: duty(store, code) == "off_duty")
        assert [
            (e["operator"], e["officer"], e["duty"]) for e in entries(store, "officer_status")
        ] == [
            ("d01", code, "on_break"),
            ("d01", code, "on_duty"),
            ("d01", code, "off_duty"),
        ]


async def test_a_viewer_is_refused_the_duty_key(store: Store, gudang: Deployment) -> None:
    app = TafangApp(store, gudang, operator="v01", terminal="wall", lang="zh")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.ready)
        panel = app.dash.query_one(SquadPanel)
        panel.focus()
        await until(pilot, lambda: panel.cursor_code is not None)
        await pilot.press("b")
        await until(pilot, lambda: any("调度员" in n.message for n in app._notifications))
        assert entries(store, "officer_status") == []


EVENING = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)  # 19:00 local: the handover to the night


async def test_handover_screen_note_and_ack_on_the_record(store: Store, gudang: Deployment) -> None:
    held = new_case(store, gudang)
    store.act(held, "hold", Actor("s01", "t9"), reason="当事人外出")
    app = TafangApp(store, gudang, operator="s02", terminal="t-8", lang="zh", now=lambda: EVENING)
    async with app.run_test(size=(130, 40)) as pilot:
        await until(pilot, lambda: app.loaded)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, HandoverScreen) and app.screen.view)
        screen = app.screen
        assert [c.id for c in screen.view.held] == [held]
        body = str(screen.query_one("#handover-body").render())
        assert "夜班" in body and "尚未接班确认" in body and f"#{held}" in body
        roster = str(screen.query_one("#handover-roster").render())
        assert "今日排班" in roster and "▶ 白班" in roster and "三中队" in roster
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press(*"N1-03", "enter")
        await until(pilot, lambda: len(entries(store, "handover_note")) == 1)
        await until(pilot, lambda: len(screen.view.notes) == 1)
        await pilot.press("a")
        await until(pilot, lambda: screen.view.ack is not None)
        [ack] = entries(store, "handover_ack")
        assert (ack["operator"], ack["handover"], ack["stand_in"], ack["held"]) == (
            "s02",
            "2026-12-03/night",
            False,
            1,
        )
        assert "已由 s02" in str(screen.query_one("#handover-body").render())
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HandoverScreen))


# ---- the spoken alarm in the console ------------------------------------------------------
@pytest.fixture
def speaker(tmp_path: Path) -> tuple[Path, Path]:
    """A real command standing in for espeak-ng: appends its last argument to a file."""
    out = tmp_path / "said.txt"
    script = tmp_path / "speak"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"open({str(out)!r}, 'a', encoding='utf-8').write(sys.argv[-1] + '\\n')\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, out


def said(out: Path) -> list[str]:
    return out.read_text(encoding="utf-8").splitlines() if out.exists() else []


async def test_a_new_critical_case_is_said_unless_muted(
    store: Store, gudang: Deployment, speaker: tuple[Path, Path]
) -> None:
    script, out = speaker
    d = gudang.model_copy(
        update={"voice": Voice(enabled=True, command=[str(script)], min_interval=0)}
    )
    app = TafangApp(store, d, operator="d01", terminal="t-1", lang="zh")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded)
        assert app.voice is not None and app.voice.available
        new_case(
            store, d, category="0402", priority="critical", grid=d.grids_by_label["N1-03"].code
        )
        await until(pilot, lambda: said(out), timeout=10)
        assert said(out) == ["特急案件，北一综合执法圈 N1-03，路面塌陷"]
        new_case(store, d, title="一般案件")  # not critical: not said
        await pilot.press("z")  # the alert mute silences the voice too
        new_case(store, d, category="0402", priority="critical")
        await until(pilot, lambda: len(app.state.cases) == 3)
        app.voice.wait(5)
        assert len(said(out)) == 1


async def test_without_the_command_one_line_and_the_bell(
    store: Store, gudang: Deployment, tmp_path: Path
) -> None:
    d = gudang.model_copy(update={"voice": Voice(enabled=True, command=[str(tmp_path / "nope")])})
    app = TafangApp(store, d, operator="d01", terminal="t-1", lang="zh")
    rang: list[float] = []
    app.bell = lambda: rang.append(time.monotonic())  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded)
        missing = [n.message for n in app._notifications if "nope" in n.message]
        assert len(missing) == 1
        new_case(store, d, category="0402", priority="critical")
        await until(pilot, lambda: rang)


def test_voice_config_defaults_to_espeak_mandarin_and_off(gudang: Deployment) -> None:
    assert gudang.voice.enabled is False
    assert gudang.voice.command[:3] == ["espeak-ng", "-v", "cmn"]
    assert timedelta(seconds=gudang.voice.min_interval) >= timedelta(seconds=5)


async def test_a_breach_is_said_with_how_late(
    store: Store, gudang: Deployment, speaker: tuple[Path, Path]
) -> None:
    """The console's tick finds the breach (frozen clock moved on): the sentence says where,
    what and how late, e.g. 北一综合执法圈 N1-03，路面塌陷，已超时两分钟."""
    script, out = speaker
    d = gudang.model_copy(
        update={"voice": Voice(enabled=True, command=[str(script)], min_interval=0)}
    )
    cid = new_case(store, d, category="0402", grid=d.grids_by_label["N1-03"].code)
    due = store.get(cid).respond_due
    clock = [due - timedelta(seconds=5)]
    app = TafangApp(
        store, d, operator="d01", terminal="t-1", lang="zh", now=lambda: clock[0], tick_seconds=0.05
    )
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.loaded and cid in app.state.cases)
        await pilot.pause(0.1)
        assert said(out) == []
        clock[0] = due + timedelta(minutes=2, seconds=10)
        await until(pilot, lambda: said(out), timeout=10)
        assert said(out) == ["北一综合执法圈 N1-03，路面塌陷，已超时两分钟"]
