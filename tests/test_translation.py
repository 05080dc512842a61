"""Everything a zh user sees is Chinese (command line, palette, Textual's own entries, footer
words); in en, circles and operators take `name_en`; the header names the role once; the
shift context and the alert rules."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tafang.console.app import TafangApp, parse_command
from tafang.console.i18n import Strings
from tafang.console.palette import TafangPalette, record_hits
from tafang.console.shift import (
    bell_pattern,
    next_mute,
    overdue_by_stage,
    per_hour,
    person,
    shift_of,
    sparkline,
)
from tafang.console.view_model import ViewModel
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from textual.command import CommandInput

from tests.conftest import migrated_sqlite

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]
OTHER = Actor("d02", "terminal-2")
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def store(tmp_path: Path, gudang: Deployment) -> Iterator[Store]:
    engine = make_engine(migrated_sqlite(tmp_path / "tr.db"))
    yield Store(engine, gudang)
    engine.dispose()


async def until(pilot, cond: Callable[[], object], timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        await pilot.pause(0.02)


def new_case(store: Store, d: Deployment) -> int:
    grid = d.grids_by_label["N3-07"].code
    fields = {"source": "ping_an", "title": "店外经营", "category": "0502", "grid": grid}
    return store.create(fields, OTHER).id


def test_command_line_errors_in_the_ui_language() -> None:
    zh = Strings("zh")
    assert parse_command("xyz 1", zh) == "不认识的命令：xyz"
    assert str(parse_command("o", zh)).startswith("用法：")
    assert str(parse_command("xyz 1")).startswith("unknown command")  # scripts: English
    assert parse_command("ar 7", zh) == parse_command("i 7", zh)  # the key's word, and the old


def test_shift_rules() -> None:
    assert shift_of(datetime(2026, 12, 2, 9, 0, tzinfo=SH))[0] == "day"
    assert shift_of(datetime(2026, 12, 2, 23, 0, tzinfo=SH)) == ("night", "20:00–08:00")
    assert shift_of(datetime(2026, 12, 2, 3, 0, tzinfo=SH))[0] == "night"
    assert person("带班领导 陈建国") == "陈建国" and person("张敏") == "张敏"
    assert sparkline([0, 4, 8]) == "▁▄█" and sparkline([0, 0]) == "▁▁"
    assert per_hour([10, 7, 3]) == [3, 4, 3]
    assert bell_pattern(["normal", "critical"]) == 3 and bell_pattern(["normal"]) == 1
    assert bell_pattern([]) == 0
    assert [next_mute(m) for m in (0, 15, 30, 60)] == [15, 30, 60, 0]
    lights = {1: "breached", 2: "breached", 3: "ok", 4: "breached"}
    clocks = {1: "respond", 2: "respond", 3: "respond", 4: "arrive"}
    assert overdue_by_stage(lights, clocks) == {"respond": 2, "arrive": 1}


def test_english_names_for_circles_and_operators(gudang: Deployment) -> None:
    vm = ViewModel(gudang, Strings("en"))
    assert vm.circle_names["E-N1"] == "North 1 enforcement circle"
    assert next(o for o in gudang.operators if o.code == "s01").name_en == "Chen Jianguo"


async def test_header_names_the_role_once(store: Store, gudang: Deployment) -> None:
    for operator, lang, want, not_want in (
        ("d01", "zh", "值班调度员 张敏", "值班调度员 值班调度员"),
        ("s01", "zh", "带班领导 陈建国", "带班领导 带班领导"),
        ("s01", "en", "supervisor Chen Jianguo", "陈建国"),
    ):
        app = TafangApp(store, gudang, operator=operator, terminal="t", lang=lang)
        async with app.run_test(size=(160, 30)) as pilot:
            await until(pilot, lambda a=app: a.loaded)
            text = app.header_text().plain
            assert want in text and not_want not in text, text


async def test_palette_speaks_chinese_and_finds_cases_officers_cells(store, gudang) -> None:
    cid = new_case(store, gudang)
    app = TafangApp(store, gudang, operator="d01", terminal="t", lang="zh")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded)
        shown = {b.description for bs in app._bindings.key_to_bindings.values() for b in bs}
        assert "命令面板" in shown and "palette" not in shown
        texts = [text for text, _ in record_hits(app, str(cid))]
        assert texts and texts[0].startswith(f"打开案件 {cid}")
        assert any("2-03" in text for text, _ in record_hits(app, "2-03"))
        assert any("N3-07" in text for text, _ in record_hits(app, "N3-07"))
        system = [c.title for c in app.get_system_commands(app.screen)]
        assert "退出" in system and "Quit" not in system
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, TafangPalette))
        field = app.screen.query_one(CommandInput)
        assert field.placeholder.startswith("搜索")
        await pilot.press(*"qqqzzz")
        options = app.screen.query_one("CommandList")
        await until(
            pilot,
            lambda: (
                options.option_count and "没有匹配项" in str(options.get_option_at_index(0).prompt)
            ),
        )
        await pilot.press("escape")
        await pilot.press("ctrl+p")
        await until(pilot, lambda: isinstance(app.screen, TafangPalette))
        await pilot.press(*"N3-07")
        await pilot.pause(0.4)
        await pilot.press("enter")
        await until(pilot, lambda: app.filter.cell == gudang.grids_by_label["N3-07"].code)


async def test_mute_silences_the_breach_bell(store, gudang) -> None:
    cid = new_case(store, gudang)
    app = TafangApp(store, gudang, operator="d01", terminal="t", lang="zh")
    rings: list[float] = []
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded)
        app.bell = lambda: rings.append(time.monotonic())  # type: ignore[method-assign]
        app._ring([cid])
        assert len(rings) == 1
        app.state.cases[cid] = __import__("dataclasses").replace(
            app.state.cases[cid], priority="critical"
        )
        app._ring([cid])
        await pilot.pause(0.7)
        assert len(rings) == 4  # three for a critical case
        await pilot.press("z")
        assert app.muted_until is not None and app.muted_until > datetime.now(UTC)
        assert "静音" in app.header_text().plain
        app._ring([cid])
        await pilot.pause(0.1)
        assert len(rings) == 4


async def test_header_shows_the_day_and_overdue_per_stage(store, gudang) -> None:
    cid = new_case(store, gudang)
    app = TafangApp(store, gudang, operator="d01", terminal="t", lang="zh", figures_after=0.1)
    async with app.run_test(size=(200, 30)) as pilot:
        await until(pilot, lambda: app.loaded and app.day.per_hour)
        text = app.header_text().plain
        assert "今日受理 1" in text and "1-3-5" in text and "█" in text  # this hour's case
        late = app.state.cases[cid].received_at + timedelta(minutes=2)
        app.now = lambda: late  # the respond clock ran out
        app._tick()
        assert "已超时 1 (响应1)" in app.header_text().plain
