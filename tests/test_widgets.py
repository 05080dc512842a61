"""The console widgets through a tiny App each: real Textual, plain rows in, messages out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.segment import Segment
from tafang.console.i18n import Strings
from tafang.store.config import load_config
from tafang.widgets.countdown import countdown
from tafang.widgets.event_queue import EventQueue
from tafang.widgets.grid_map import GridMap
from tafang.widgets.rows import CellSpec, CellState, OfficerRow, PartnerRow, QueueRow
from tafang.widgets.squad_panel import SquadPanel
from tafang.widgets.text import fit, safe
from textual.app import App, ComposeResult
from textual.message import Message
from textual.strip import Strip

ZH = Strings("zh").words()  # the labels the console hands its widgets
EN = Strings("en").words()

pytestmark = pytest.mark.anyio  # the async tests run on anyio's pytest plugin (asyncio backend)

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2024, 5, 6, 1, 0, 0, tzinfo=UTC)  # 09:00 in Hangzhou


def qrow(case_id: int, due_in: float | None, **kw: object) -> QueueRow:
    """A queue row whose running clock (60 s budget) is due `due_in` seconds from NOW."""
    fields: dict[str, object] = dict(
        case_id=case_id,
        version=1,
        status="new",
        status_label="待受理",
        channel="平安通",
        category="共享单车乱停放",
        grid_label="N3-07",
        grid_code="33010600700810",
        title=f"case {case_id}",
        assignee="",
        clock="respond" if due_in is not None else None,
        due=NOW + timedelta(seconds=due_in) if due_in is not None else None,
        budget_seconds=60.0 if due_in is not None else None,
        escalation_level=0,
        triage=False,
        supervised=False,
        priority="normal",
    )
    fields.update(kw)
    return QueueRow(**fields)  # type: ignore[arg-type]


class WidgetApp(App[None]):
    """Hosts one widget and keeps every message it posts."""

    def __init__(self, widget_factory: object) -> None:
        super().__init__()
        self._factory = widget_factory
        self.messages: list[Message] = []

    def compose(self) -> ComposeResult:
        yield self._factory()  # type: ignore[operator]

    def on_event_queue_cursor_moved(self, m: EventQueue.CursorMoved) -> None:
        self.messages.append(m)

    def on_event_queue_case_chosen(self, m: EventQueue.CaseChosen) -> None:
        self.messages.append(m)

    def on_grid_map_cell_highlighted(self, m: GridMap.CellHighlighted) -> None:
        self.messages.append(m)

    def on_grid_map_cell_chosen(self, m: GridMap.CellChosen) -> None:
        self.messages.append(m)

    def on_squad_panel_officer_chosen(self, m: SquadPanel.OfficerChosen) -> None:
        self.messages.append(m)


def lines(widget: EventQueue | GridMap | SquadPanel) -> list[Strip]:
    return [widget.render_line(y) for y in range(widget.scrollable_content_region.height)]


def segment_with(strip: Strip, needle: str) -> Segment:
    for seg in strip:
        if needle in seg.text:
            return seg
    raise AssertionError(f"{needle!r} not in {strip.text!r}")


# --- text helpers -----------------------------------------------------------------------------


def test_safe_makes_controls_and_bidi_visible() -> None:
    assert safe("\x1b[31mX") == "␛[31mX"
    assert safe("a\x00b\x7fc") == "a␀b␡c"
    assert safe("\u202eevil") == "<U+202E>evil"
    assert safe("\x9bq") == "<U+009B>q"
    assert safe("古荡 ok [red]") == "古荡 ok [red]"
    assert safe(safe("\x1b")) == safe("\x1b")


@pytest.mark.parametrize("text", ["古荡东区abc", "a古b荡c", "abcdefghij", "", "古"])
@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 7, 12])
def test_fit_is_exactly_width_cells(text: str, width: int) -> None:
    out = fit(text, width)
    assert cell_len(out) == width
    if cell_len(text) > width:
        assert out.rstrip().endswith("…")


def test_countdown_text() -> None:
    assert countdown(NOW + timedelta(seconds=59.5), NOW) == "0:59"
    assert countdown(NOW + timedelta(seconds=60), NOW) == "1:00"
    assert countdown(NOW, NOW) == "0:00"
    assert countdown(NOW - timedelta(seconds=83), NOW) == "-1:23"
    assert countdown(NOW + timedelta(hours=2, seconds=3), NOW) == "2:00:03"
    assert countdown(NOW - timedelta(hours=13, minutes=5, seconds=9), NOW) == "-13h05m"
    assert countdown(NOW + timedelta(days=3, hours=4), NOW) == "3d04h"
    assert countdown(None, NOW) == ""


# --- event queue ------------------------------------------------------------------------------


async def test_queue_sorts_breached_first_then_nearest_deadline() -> None:
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(140, 20)) as pilot:
        queue = app.query_one(EventQueue)
        queue.set_rows(
            [qrow(1, 30), qrow(2, None), qrow(3, -5), qrow(4, 10), qrow(5, -90), qrow(6, 10)],
            NOW,
        )
        await pilot.pause()
        assert [r.case_id for r in queue.rows] == [5, 3, 4, 6, 1, 2]
        shown = [s.text for s in lines(queue)[1:7]]
        assert "-1:30" in shown[0] and "-0:05" in shown[1] and "0:30" in shown[4]
        assert shown[5].split()[0] == "2"  # no running clock: no countdown, no clock name


async def test_cursor_stays_on_its_case_across_reorders_and_removals() -> None:
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(140, 20)) as pilot:
        queue = app.query_one(EventQueue)
        queue.focus()
        queue.set_rows([qrow(1, 10), qrow(2, 20), qrow(3, 30)], NOW)
        await pilot.press("down")
        assert queue.cursor_case_id == 2
        # Two new cases sort above it, one below: the cursor follows case 2.
        queue.set_rows([qrow(1, 10), qrow(2, 20), qrow(3, 30), qrow(7, -1), qrow(8, 0.5)], NOW)
        assert queue.cursor_case_id == 2
        assert queue.cursor_row == 3
        # Its deadline moved (acknowledged): it re-sorts to the end, still under the cursor.
        queue.set_rows([qrow(1, 10), qrow(2, 500), qrow(3, 30)], NOW)
        assert queue.cursor_case_id == 2 and queue.cursor_row == 2
        # It leaves the queue: the cursor lands on a neighbour, and says so.
        app.messages.clear()
        queue.set_rows([qrow(1, 10), qrow(3, 30)], NOW)
        await pilot.pause()
        assert queue.cursor_case_id == 3
        moved = [m for m in app.messages if isinstance(m, EventQueue.CursorMoved)]
        assert [m.case_id for m in moved] == [3]


async def test_cached_lines_follow_every_change() -> None:
    """Finished lines are reused between frames; each thing a line shows must still redraw it:
    the row's content, the countdown, the cursor, focus, and the same line scrolled in again."""
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(140, 8)) as pilot:
        queue = app.query_one(EventQueue)
        queue.focus()
        queue.set_rows([qrow(i, 10 * i) for i in range(1, 21)], NOW)
        await pilot.pause()
        first = lines(queue)[1]
        assert lines(queue)[1] is first  # unchanged: the very same strip
        cursor = queue.get_component_rich_style("event-queue--cursor", partial=True)
        assert segment_with(first, "case 1").style.bgcolor == cursor.bgcolor  # type: ignore[union-attr]
        # The cursor leaves, focus leaves: the highlight does.
        await pilot.press("down")
        assert all(seg.style.bgcolor != cursor.bgcolor for seg in lines(queue)[1])  # type: ignore[union-attr]
        assert segment_with(lines(queue)[2], "case 2").style.bgcolor == cursor.bgcolor  # type: ignore[union-attr]
        # The content changes: the line does.
        assert "case 4" in lines(queue)[4].text
        queue.update_rows([qrow(4, 40, status_label="已受理", title="renamed")], [], NOW)
        assert queue.row_for(4) is not None and queue.row_for(4).title == "renamed"  # type: ignore[union-attr]
        assert "renamed" in lines(queue)[4].text and "已受理" in lines(queue)[4].text
        # Time passes: the countdown does.
        assert "0:30" in lines(queue)[3].text
        queue.tick(NOW + timedelta(seconds=3))
        assert "0:07" in lines(queue)[1].text and "0:27" in lines(queue)[3].text
        queue.blur()
        await pilot.pause()
        blurred = queue.get_component_rich_style("event-queue--cursor-blurred", partial=True)
        assert segment_with(lines(queue)[2], "case 2").style.bgcolor == blurred.bgcolor  # type: ignore[union-attr]
        # Scrolled away and back: the right rows on the right lines.
        queue.focus()
        await pilot.press("end")
        assert "case 20" in lines(queue)[-1].text
        await pilot.press("home")
        assert [ln.text.split()[2] for ln in lines(queue)[1:4]] == ["1", "2", "3"]
        assert queue.row_for(99) is None


async def test_keys_move_cursor_and_enter_chooses() -> None:
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(140, 12)) as pilot:
        queue = app.query_one(EventQueue)
        queue.focus()
        queue.set_rows([qrow(i, i) for i in range(1, 51)], NOW)
        await pilot.pause()
        app.messages.clear()
        await pilot.press("down", "down", "enter")
        await pilot.pause()
        assert queue.cursor_case_id == 3
        assert [type(m) for m in app.messages] == [
            EventQueue.CursorMoved,
            EventQueue.CursorMoved,
            EventQueue.CaseChosen,
        ]
        assert app.messages[-1].case_id == 3  # type: ignore[attr-defined]
        await pilot.press("end")
        assert queue.cursor_case_id == 50
        last = lines(queue)[-1].text
        assert "case 50" in last  # scrolled into view
        await pilot.press("home")
        assert queue.cursor_case_id == 1
        assert queue.select_case(42) and queue.cursor_case_id == 42
        assert not queue.select_case(999)


async def test_countdown_colours_follow_the_lights_the_console_hands_in() -> None:
    """The widget decides no light: it colours each countdown by the state it is given."""
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(140, 10)) as pilot:
        queue = app.query_one(EventQueue)
        rows = [
            qrow(1, 50, budget_seconds=100.0),
            qrow(2, 15, budget_seconds=100.0),
            qrow(3, -10, budget_seconds=100.0),
            qrow(4, -900, budget_seconds=100.0),
        ]
        queue.lights = {1: "ok", 2: "at_risk", 3: "breached", 4: "breached"}
        queue.set_rows(rows, NOW)
        await pilot.pause()
        by_text = {s.text.split()[0]: s for s in lines(queue)[1:5]}
        ok = queue.get_component_rich_style("event-queue--ok", partial=True)
        amber = queue.get_component_rich_style("event-queue--at-risk", partial=True)
        red = queue.get_component_rich_style("event-queue--breached", partial=True)
        assert len({ok.color, amber.color, red.color}) == 3
        assert segment_with(by_text["0:50"], "0:50").style.color == ok.color  # type: ignore[union-attr]
        assert segment_with(by_text["0:15"], "0:15").style.color == amber.color  # type: ignore[union-attr]
        assert segment_with(by_text["-0:10"], "-0:10").style.color == red.color  # type: ignore[union-attr]
        # Time passes and the console says row 1 turned amber: the next tick shows it.
        queue.lights = {**queue.lights, 1: "at_risk"}
        queue.tick(NOW + timedelta(seconds=35))
        await pilot.pause()
        strip = next(s for s in lines(queue)[1:5] if "0:15" in s.text and "-" not in s.text[:8])
        assert segment_with(strip, "0:15").style.color == amber.color  # type: ignore[union-attr]


async def test_held_row_shows_its_clock_standing_still_below_running_ones() -> None:
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(140, 10)) as pilot:
        queue = app.query_one(EventQueue)
        held = qrow(1, -100, status="held", held_at=NOW - timedelta(seconds=130))
        queue.lights = {1: "ok", 2: "ok"}
        queue.set_rows([held, qrow(2, 500)], NOW)
        await pilot.pause()
        assert [r.case_id for r in queue.rows] == [2, 1]  # stood still: after running clocks
        queue.tick(NOW + timedelta(seconds=600))
        await pilot.pause()
        shown = [s.text for s in lines(queue)[1:3]]
        assert shown[1].split()[:2] == ["0:30", "响应"]  # as at the hold, 10 min later


async def test_untrusted_text_is_shown_literally() -> None:
    app = WidgetApp(lambda: EventQueue(words=ZH))
    titles = ["[red]FAKE[/red]", "\x1b[31mX", "[@click=app.bell]x[/]"]
    async with app.run_test(size=(160, 10)) as pilot:
        queue = app.query_one(EventQueue)
        queue.set_rows(
            [
                qrow(i, 10 * i, title=t, channel="[b]c[/]", category="\x1b]0;pwn\x07")
                for i, t in enumerate(titles, 1)
            ]
            + [qrow(9, -100)],  # tops the queue, so the cursor is not on a tested row
            NOW,
        )
        await pilot.pause()
        shown = lines(queue)
        text = "\n".join(s.text for s in shown)
        assert "[red]FAKE[/red]" in text
        assert "␛[31mX" in text
        assert "[@click=app.bell]x[/]" in text
        assert "[b]c[/]" in text
        assert "␛]0;pwn␇" in text
        assert "\x1b" not in text and "\x07" not in text
        for strip in shown:
            for seg in strip:
                style = seg.style
                assert style is None or (not style.link and not style.meta.get("@click"))
                if "FAKE" in seg.text:
                    assert style == queue.rich_style  # the plain row style, nothing from markup


async def test_cjk_columns_align() -> None:
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(120, 12)) as pilot:
        queue = app.query_one(EventQueue)
        queue.set_rows(
            [
                qrow(
                    1,
                    10,
                    channel="基层治理四平台",
                    category="装修消防安全",
                    title="古荡东区 楼道堆物",
                ),
                qrow(22, 20, channel="hotline", category="Noise", title="plain ascii title"),
                qrow(333, 30, channel="平安通", category="共享单车乱停放x", grid_label="?东区7号"),
                qrow(4444, 40, assignee="张三丰（一中队）", status_label="已派遣"),
            ],
            NOW,
        )
        await pilot.pause()
        shown = lines(queue)[:5]
        widths = {cell_len(s.text) for s in shown}
        assert len(widths) == 1
        # The category column starts at the same cell on every line: no wide character
        # straddles a column edge, whatever the mix of CJK and ASCII before it.
        header = shown[0].text
        col = cell_len(header[: header.index("类别")])
        starts = set()
        for s in shown[1:]:
            prefix = ""
            for ch in s.text:
                if cell_len(prefix) >= col:
                    break
                prefix += ch
            starts.add(cell_len(prefix))
        assert starts == {col}


async def test_narrow_queue_drops_minor_columns_to_keep_the_title() -> None:
    app = WidgetApp(lambda: EventQueue(words=ZH, hidden_columns=("flags",)))
    async with app.run_test(size=(60, 8)) as pilot:
        queue = app.query_one(EventQueue)
        queue.set_rows([qrow(1, 10, title="bikes block the fire lane")], NOW)
        await pilot.pause()
        header, first = (s.text for s in lines(queue)[:2])
        assert "标题" in header and "bikes block" in first
        assert "渠道" not in header and "标记" not in header
        assert "网格" in header and "N3-07" in first


async def test_english_clock_names_and_flags() -> None:
    app = WidgetApp(lambda: EventQueue(lang="en", words=EN))
    async with app.run_test(size=(160, 8)) as pilot:
        queue = app.query_one(EventQueue)
        queue.set_rows(
            [qrow(9, -3, clock="dispatch", triage=True, supervised=True, escalation_level=2)], NOW
        )
        await pilot.pause()
        header, first = (s.text for s in lines(queue)[:2])
        assert "Clock" in header and "dispatch" in first
        assert "?S ↑2" in first


async def test_flash_highlights_a_row_then_stops() -> None:
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(140, 8)) as pilot:
        queue = app.query_one(EventQueue)
        queue.set_rows([qrow(1, 10), qrow(2, -1)], NOW)
        queue.flash(1, seconds=60)  # long enough that a loaded CI machine can't miss it
        await pilot.pause()
        flash = queue.get_component_rich_style("event-queue--flash", partial=True)
        row1 = next(s for s in lines(queue) if "case 1" in s.text)
        assert segment_with(row1, "case 1").style.bgcolor == flash.bgcolor  # type: ignore[union-attr]

        def flashing() -> bool:
            row = next(s for s in lines(queue) if "case 1" in s.text)
            return segment_with(row, "case 1").style.bgcolor == flash.bgcolor  # type: ignore[union-attr]

        queue.flash(1, seconds=0.05)  # a fresh, short flash replaces the long one
        for _ in range(250):  # the flash timer ends it; wait for that, not a fixed time
            if not flashing():
                break
            await pilot.pause(0.02)
        assert not flashing()


async def test_ten_thousand_rows_and_page_down() -> None:
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(120, 36)) as pilot:
        queue = app.query_one(EventQueue)
        queue.focus()
        rows = [qrow(i, (i * 7919) % 20000 - 5000) for i in range(1, 10_001)]
        queue.set_rows(rows, NOW)
        await pilot.pause()
        first = queue.cursor_case_id
        await pilot.press("pagedown", "pagedown")
        assert queue.cursor_row == 2 * (queue.scrollable_content_region.height - 1)
        assert queue.cursor_case_id != first
        await pilot.press("end")
        assert queue.cursor_row == 9_999
        queue.set_rows([replace(r, version=2) for r in rows[::-1]], NOW + timedelta(seconds=1))
        assert queue.cursor_row == 9_999


# --- grid map -----------------------------------------------------------------------------------


def gudang_cells() -> list[CellSpec]:
    d = load_config(ROOT / "config.toml")
    names = {c.code: c.name for c in d.tower.enforcement_circles}
    return [
        CellSpec(g.code, g.label, g.circle, names[g.circle], g.half, g.row, g.col)
        for g in d.tower.grids
    ]


async def test_grid_map_renders_every_label_and_the_road() -> None:
    cells = gudang_cells()
    app = WidgetApp(lambda: GridMap(cells, divider_label="文三西路", words=ZH))
    async with app.run_test(size=(60, 20)) as pilot:
        grid_map = app.query_one(GridMap)
        await pilot.pause()
        shown = [s.text for s in lines(grid_map)]
        text = "\n".join(shown)
        assert len(cells) == 105
        for c in cells:
            assert c.label in text, c.label
        road = [line for line in shown if "文三西路" in line]
        assert len(road) == 1 and "━" in road[0]
        assert shown.index(road[0]) == 6
        assert "北一综合执法圈" in text  # the cursor cell's circle, on the info line
        assert all(cell_len(line) == 60 for line in shown)


async def test_grid_map_shading_counts_and_mark() -> None:
    cells = gudang_cells()
    by_label = {c.label: c for c in cells}
    app = WidgetApp(lambda: GridMap(cells, divider_label="文三西路", words=ZH))
    async with app.run_test(size=(80, 20)) as pilot:
        grid_map = app.query_one(GridMap)
        n307, s105 = by_label["N3-07"], by_label["S1-05"]
        grid_map.set_state(
            {
                n307.code: CellState(n307.code, 3, "breached", officers=1),
                s105.code: CellState(s105.code, 1, "at_risk"),
            }
        )
        grid_map.mark(s105.code)
        await pilot.pause()
        shown = lines(grid_map)
        seg = segment_with(shown[n307.row], "N3-07")
        red = grid_map.get_component_rich_style("grid-map--breached", partial=True)
        assert seg.style.bgcolor == red.bgcolor  # type: ignore[union-attr]
        # Label, a space, then the count and the officer mark in their own style: the count
        # never reads as part of the code ("N3-073").
        assert "N3-07 3•" in shown[n307.row].text
        count = segment_with(shown[n307.row], "3•")
        assert count is not seg and count.style.reverse  # type: ignore[union-attr]
        marked = segment_with(shown[s105.row], "S1-05")
        assert marked.style.reverse  # type: ignore[union-attr]
        plain = segment_with(shown[s105.row], "S1-06")
        assert not plain.style.reverse  # type: ignore[union-attr]
        grid_map.mark(None)
        assert not segment_with(grid_map.render_line(s105.row), "S1-05").style.reverse  # type: ignore[union-attr]


async def test_grid_map_narrow_cells_set_the_count_apart_and_show_a_legend() -> None:
    cells = gudang_cells()
    by_label = {c.label: c for c in cells}
    app = WidgetApp(lambda: GridMap(cells, divider_label="文三西路", words=ZH))
    async with app.run_test(size=(60, 20)) as pilot:  # 6-cell cells: no room for a space
        grid_map = app.query_one(GridMap)
        n201 = by_label["N2-01"]
        grid_map.set_state({n201.code: CellState(n201.code, 1, "ok")})
        await pilot.pause()
        assert grid_map.cell_width == 6
        row = grid_map.render_line(n201.row)
        segs = list(row)
        at = next(i for i, seg in enumerate(segs) if seg.text == "N2-01")
        label, count = segs[at], segs[at + 1]
        assert count.text == "1" and "N2-011" in row.text
        assert count.style != label.style  # set apart by colour where a space does not fit
        shown = [line.text for line in lines(grid_map)]
        assert ZH.map_legend in shown[-1]  # the legend names the digits and the dot
        for state in ("ok", "at_risk", "breached"):
            assert ZH.sla_state(state) in shown[-1]


async def test_grid_map_arrows_move_to_nearest_cell_and_post() -> None:
    cells = gudang_cells()
    by_code = {c.code: c for c in cells}
    app = WidgetApp(lambda: GridMap(cells, divider_label="文三西路", words=ZH))
    async with app.run_test(size=(70, 20)) as pilot:
        grid_map = app.query_one(GridMap)
        grid_map.focus()
        await pilot.pause()
        assert by_code[grid_map.cursor_code].label == "N1-01"  # type: ignore[index]
        await pilot.press("right", "down")
        assert by_code[grid_map.cursor_code].label == "N1-07"  # type: ignore[index]
        for _ in range(4):
            await pilot.press("down")
        assert by_code[grid_map.cursor_code].label == "N3-12"  # type: ignore[index]
        await pilot.press("down")
        # From row 5 down over the road to the south half.
        assert by_code[grid_map.cursor_code].label == "S1-02"  # type: ignore[index]
        await pilot.press("enter")
        await pilot.pause()
        highlighted = [m for m in app.messages if isinstance(m, GridMap.CellHighlighted)]
        assert [by_code[m.grid_code].label for m in highlighted] == [
            "N1-02",
            "N1-07",
            "N1-12",
            "N3-02",
            "N3-07",
            "N3-12",
            "S1-02",
        ]
        chosen = [m for m in app.messages if isinstance(m, GridMap.CellChosen)]
        assert [by_code[m.grid_code].label for m in chosen] == ["S1-02"]
        await pilot.press("left", "left")  # no cell to the left of S1-01: stays
        assert by_code[grid_map.cursor_code].label == "S1-01"  # type: ignore[index]


async def test_grid_map_other_deployment_and_small_size_scrolls() -> None:
    d = load_config(ROOT / "tests" / "fixtures" / "tiny.toml")
    names = {c.code: c.name for c in d.tower.enforcement_circles}
    cells = [
        CellSpec(g.code, g.label, g.circle, names[g.circle], g.half, g.row, g.col)
        for g in d.tower.grids
    ]
    app = WidgetApp(lambda: GridMap(cells, words=ZH))
    async with app.run_test(size=(40, 6)) as pilot:
        grid_map = app.query_one(GridMap)
        await pilot.pause()
        text = "\n".join(s.text for s in lines(grid_map))
        for label in ("W-1", "W-2", "E-1", "E-2"):
            assert label in text
        assert "━" not in text  # one half only: no road
    gudang = gudang_cells()
    app = WidgetApp(lambda: GridMap(gudang, divider_label="文三西路", words=ZH))
    async with app.run_test(size=(40, 8)) as pilot:
        grid_map = app.query_one(GridMap)
        grid_map.focus()
        await pilot.pause()
        for _ in range(11):
            await pilot.press("down")
        text = "\n".join(s.text for s in lines(grid_map))
        assert "S1-13" in text  # scrolled to the cursor


# --- squad panel --------------------------------------------------------------------------------


def officers() -> list[OfficerRow]:
    since = NOW - timedelta(minutes=12)
    spec = [
        ("G101", "王建国", "Z1", "一中队", "综合执法", "available", "空闲", None),
        ("G102", "李明", "Z1", "一中队", "公安", "en_route", "出警", 1043),
        ("G103", "[b]赵", "Z1", "一中队", "交警", "on_scene", "处置中", 1044),
        ("G201", "陈静", "Z2", "二中队", "市场监管", "off_duty", "下班", None),
    ]
    return [
        OfficerRow(code, name, sq, sqn, agency, "基础组", st, label, case, since, 0)
        for code, name, sq, sqn, agency, st, label, case in spec
    ]


async def test_squad_panel_shows_squads_statuses_and_partners() -> None:
    app = WidgetApp(lambda: SquadPanel(words=ZH))
    async with app.run_test(size=(70, 16)) as pilot:
        panel = app.query_one(SquadPanel)
        panel.set_data(officers(), [PartnerRow("meituan", "美团单车", 3, 12)], NOW)
        await pilot.pause()
        text = [s.text for s in lines(panel)]
        joined = "\n".join(text)
        assert ZH.column("since") in text[0] and ZH.column("agency") in text[0]  # headings
        assert "一中队" in text[1] and "空闲 1 · 出警 1 · 处置中 1 · 下班 0" in text[1]
        assert "#1043" in joined and "12m" in joined and "[b]赵" in joined
        assert "二中队" in joined and "下班 1" in joined
        assert "美团单车" in joined and "今日处置 12" in joined
        en_route = panel.get_component_rich_style("squad-panel--en_route", partial=True)
        li = next(s for s in lines(panel) if "G102" in s.text)
        assert segment_with(li, "出警").style.color == en_route.color  # type: ignore[union-attr]


async def test_squad_panel_cursor_skips_headers_and_chooses() -> None:
    app = WidgetApp(lambda: SquadPanel(words=ZH))
    async with app.run_test(size=(70, 16)) as pilot:
        panel = app.query_one(SquadPanel)
        panel.focus()
        panel.set_data(officers(), [], NOW)
        await pilot.pause()
        assert panel.cursor_code == "G101"
        await pilot.press("down", "down", "down", "enter")
        await pilot.pause()
        assert panel.cursor_code == "G201"  # over the 二中队 header
        chosen = [m for m in app.messages if isinstance(m, SquadPanel.OfficerChosen)]
        assert [m.code for m in chosen] == ["G201"]
        # New data keeps the cursor on the same officer.
        panel.set_data(list(reversed(officers())), [], NOW + timedelta(minutes=1))
        assert panel.cursor_code == "G201"


async def test_squad_panel_agency_column_fits_the_longest_label() -> None:
    """In English `emergency` (9 cells) showed as `emergen…`: the column is as wide as the
    longest agency label in the UI language, and the heading lines up with it."""
    since = NOW - timedelta(minutes=3)
    rows = [
        OfficerRow("1-10", "Wu Bin", "Z1", "Squad 1", agency, "emergency_fire", "available",
                   "available", None, since, 0)
        for agency in ("emergency", "police")
    ]  # fmt: skip
    app = WidgetApp(lambda: SquadPanel(lang="en", words=EN))
    async with app.run_test(size=(70, 16)) as pilot:
        panel = app.query_one(SquadPanel)
        panel.set_data(rows, [], NOW)
        await pilot.pause()
        text = panel.lines_text
        assert "emergen…" not in "\n".join(text)
        line = next(t for t in text if " emergency " in t)
        heading = text[0]
        assert heading.index(EN.column("agency")) == line.index("emergency")
        assert heading.index(EN.column("status")) == line.index("available")


# --- pinned breaches, next case, hints (issue 9) ------------------------------------------------
def breached_queue(n_breached: int, n_total: int) -> tuple[list[QueueRow], dict[int, str]]:
    """Rows 1..n_breached overdue (row 1 the most), the rest running on time."""
    rows = [
        qrow(i, -100.0 * (n_breached - i + 1) if i <= n_breached else 10.0 * i)
        for i in range(1, n_total + 1)
    ]
    lights = {r.case_id: "breached" if r.case_id <= n_breached else "ok" for r in rows}
    return rows, lights


def shown_ids(queue: EventQueue) -> list[int]:
    return [int(line.split()[2]) for line in queue.visible_lines()[1:] if line.strip()]


async def test_breached_rows_stay_pinned_whatever_the_scroll() -> None:
    rows, lights = breached_queue(4, 60)
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(100, 14)) as pilot:
        queue = app.query_one(EventQueue)
        queue.focus()
        queue.lights = lights
        queue.set_rows(rows, NOW)
        await pilot.pause()
        assert queue.pinned == 4
        await pilot.press("end")
        await pilot.pause()
        ids = shown_ids(queue)
        assert ids[:4] == [1, 2, 3, 4]  # most overdue first, still on screen
        assert ids[-1] == 60 and queue.cursor_case_id == 60  # the cursor's row is in view
        await pilot.press("pageup", "pageup")
        assert shown_ids(queue)[:4] == [1, 2, 3, 4]
        # A click on a pinned line picks that case, not the one scrolled beneath it.
        await pilot.click(EventQueue, offset=(20, 2))
        assert queue.cursor_case_id == 2


async def test_the_band_leaves_room_to_scroll_when_many_are_breached() -> None:
    rows, lights = breached_queue(30, 40)
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(100, 14)) as pilot:
        queue = app.query_one(EventQueue)
        queue.focus()
        queue.lights = lights
        queue.set_rows(rows, NOW)
        await pilot.pause()
        page = queue.scrollable_content_region.height - 1
        assert queue.pinned == page - 3  # three lines still scroll
        await pilot.press("end")
        assert shown_ids(queue)[: queue.pinned] == list(range(1, queue.pinned + 1))
        assert queue.cursor_case_id in shown_ids(queue)


async def test_a_new_breach_joins_the_band_on_the_tick() -> None:
    rows, lights = breached_queue(1, 30)
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(100, 14)) as pilot:
        queue = app.query_one(EventQueue)
        queue.lights = lights
        queue.set_rows(rows, NOW)
        await pilot.pause()
        assert queue.pinned == 1
        queue.lights = {**lights, 2: "breached"}
        queue.tick(NOW + timedelta(seconds=21))
        assert queue.pinned == 2


async def test_after_an_action_the_cursor_goes_to_the_next_case_needing_action() -> None:
    rows = [qrow(1, -50), qrow(2, None), qrow(3, -10), qrow(4, 30)]
    rows[1] = replace(rows[1], status="handled")  # no running clock: nothing to do
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(100, 14)) as pilot:
        queue = app.query_one(EventQueue)
        queue.set_rows(rows, NOW)
        await pilot.pause()
        assert queue.cursor_case_id == 1
        queue.advance_from(4)  # not the cursor's case: the cursor stays
        assert queue.cursor_case_id == 1
        queue.advance_from(1)  # the acted-on case is still the most urgent: stay with it
        assert queue.cursor_case_id == 1
        queue.update_rows([replace(rows[0], due=NOW + timedelta(seconds=170))], [], NOW)
        queue.advance_from(1)  # its row moved down: on to the case needing action most
        assert queue.cursor_case_id == 3


async def test_an_acted_row_sorting_far_down_does_not_drag_the_view_there() -> None:
    """`a` on the top case moves its row to the end; the cursor goes on to the next case and
    the page stays where it was (following the row first scrolled ~40 rows down and back
    for one frame, and the frame showed the wrong page)."""
    rows = [qrow(i, 10 * i) for i in range(1, 41)]
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(100, 14)) as pilot:
        queue = app.query_one(EventQueue)
        queue.set_rows(rows, NOW)
        await pilot.pause()
        assert queue.cursor_case_id == 1 and queue.scroll_offset.y == 0
        moved = replace(rows[0], due=NOW + timedelta(hours=2))
        queue.update_rows([moved], [], NOW, follow=False)
        assert queue.scroll_offset.y == 0  # the view did not follow the row
        queue.advance_from(1)
        await pilot.pause()
        assert queue.cursor_case_id == 2 and queue.scroll_offset.y == 0
        assert shown_ids(queue)[0] == 2
        back = replace(moved, due=NOW + timedelta(seconds=5))
        queue.select_case(1)
        queue.update_rows([replace(back, due=NOW + timedelta(hours=3))], [], NOW)
        await pilot.pause()
        assert queue.scroll_offset.y > 0  # by default the view follows the cursor's case
        assert queue.cursor_case_id == 1 and 1 in shown_ids(queue)
        quiet = [replace(r, due=None) for r in queue.rows]  # no clock runs anywhere
        queue.set_rows(quiet, NOW)
        queue.select_case(40)
        queue.scroll_to(y=0, animate=False, immediate=True)
        queue.update_rows([replace(quiet[-1], status="handled")], [], NOW, follow=False)
        queue.advance_from(40)  # nothing needs action: the cursor stays, scrolled into view
        await pilot.pause()
        top, page = queue.scroll_offset.y, queue.scrollable_content_region.height - 1
        assert queue.cursor_case_id == 40 and top <= queue.cursor_row < top + page


async def test_an_empty_queue_says_how_to_get_cases() -> None:
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(100, 14)) as pilot:
        queue = app.query_one(EventQueue)
        queue.set_rows([], NOW)
        await pilot.pause()
        text = "\n".join(queue.visible_lines())
        assert "tafang ingest" in text and "tafang demo" in text
        queue.set_rows([qrow(1, 30)], NOW)
        assert "tafang ingest" not in "\n".join(queue.visible_lines())


async def test_wide_queue_shows_names_whole() -> None:
    row = qrow(1, 30, channel="12345热线", assignee="2-11 谢芳芳")
    app = WidgetApp(lambda: EventQueue(words=ZH))
    async with app.run_test(size=(160, 8)) as pilot:
        queue = app.query_one(EventQueue)
        queue.set_rows([row], NOW)
        await pilot.pause()
        line = queue.visible_lines()[1]
        assert "12345热线" in line and "2-11 谢芳芳" in line and "…" not in line


async def test_squads_pack_as_chips_when_a_line_each_does_not_fit() -> None:
    many = [
        replace(o, code=f"{o.code}{n}", squad=sq, squad_name=name)
        for n in range(6)
        for o in officers()[:2]
        for sq, name in (("Z1", "一中队"), ("Z2", "二中队"), ("Z3", "三中队"), ("Z4", "支援队"))
    ]
    app = WidgetApp(lambda: SquadPanel(words=ZH))
    async with app.run_test(size=(70, 12)) as pilot:
        panel = app.query_one(SquadPanel)
        panel.focus()
        panel.set_data(many, [], NOW)
        await pilot.pause()
        assert panel.compact
        text = "\n".join(s.text for s in lines(panel))
        for name in ("一中队", "二中队", "三中队", "支援队"):
            assert name in text  # every squad on screen
        first = panel.cursor_code
        await pilot.press("down")
        assert panel.cursor_code != first  # the cursor walks the chips


async def test_summary_line_packs_whole_entries_to_the_width() -> None:
    from tafang.widgets.rows import Summary, SummaryEntry
    from tafang.widgets.summary import SummaryLine

    data = Summary(
        squads=tuple(SummaryEntry(n, 7, 3, 1) for n in ("一中队", "二中队", "三中队", "支援队")),
        groups=(SummaryEntry("自然资源环保组", 2, 0, 1),),
        partners=(PartnerRow("mt", "美团单车", 3, 12),),
    )
    app = WidgetApp(lambda: SummaryLine(words=ZH))
    async with app.run_test(size=(40, 10)) as pilot:
        line = app.query_one(SummaryLine)
        line.set_summary(data)
        await pilot.pause()
        packed = ["".join(t for t, _ in ln) for ln in line.packed(38)]
        assert len(packed) > 1 and all(cell_len(p) <= 38 for p in packed)
        assert any("一中队 7·3·1" in p for p in packed)  # an entry never splits
        assert any("美团单车 3/12" in p for p in packed)
        assert line.size.height == len(packed)


async def test_the_detail_panes_marks_are_never_split_across_lines() -> None:
    """At 120 columns "风险点网格（3 个）" folded after "（3": "个）" read as a mark of its own."""
    from tafang.widgets.detail_pane import DetailPane
    from tafang.widgets.rows import CaseDetail

    marks = (("升级层级 综合执法圈", "breached"), ("风险点网格（3 个）", "at_risk"))
    detail = CaseDetail(
        case_id=1,
        version=1,
        heading="案卷 1 · 已受理",
        title="共享单车堆积占用人行道",
        fields=(("类别", "共享单车乱停放"), ("网格", "N3-06 北一综合执法圈")),
        clocks_title="时限",
        clocks=(),
        timeline_title="最近记录",
        timeline=(),
        flags=marks,
    )
    app = WidgetApp(lambda: DetailPane())
    async with app.run_test(size=(38, 12)) as pilot:  # the first mark and "风险点网格（3" fit
        pane = app.query_one(DetailPane)
        pane.show(detail, NOW)
        await pilot.pause()
        lines = [pane.render_line(y).text.rstrip() for y in range(pane.size.height)]
        for text, _ in marks:
            assert any(text in line for line in lines), (text, lines)
