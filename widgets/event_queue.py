"""The live event queue: every open case, most urgent first, with its SLA countdown.

A `DataTable` takes seconds to show 10k rows and its cursor follows the position, not the case,
after a re-sort; this widget uses the Line API instead (`ScrollView.render_line`): only the
visible rows are drawn, each row's static part is cached as a `Strip`, and the countdown column
is drawn fresh on every `tick`. The cursor is tied to a case id, so re-sorts, inserts and
removals never move it to another case. All text comes from feeds and is drawn literally.

Repaints are kept to what changed (a key press must repaint within a frame with 10k rows):
a cursor step redraws its two lines, a `tick` only the countdown column, and `update_rows`
moves single rows into place by bisection instead of re-sorting everything.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar, Literal

from rich.segment import Segment
from rich.style import Style
from tafang.widgets.countdown import countdown
from tafang.widgets.picked import Picked
from tafang.widgets.rows import QueueRow
from tafang.widgets.text import fit
from tafang.widgets.words import Words
from textual import events
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

_PRIORITY_RANK = {"critical": 0, "urgent": 1, "normal": 2}
_FAR = datetime.max.replace(tzinfo=UTC)
FLASH_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Column:
    """One queue column: its key and width in cells per language (titles come in `Words`)."""

    key: str
    width_zh: int
    width_en: int
    align: Literal["left", "right"] = "left"
    wide: int = 0  # extra cells when the queue is wide (names shown whole)

    def width(self, lang: str) -> int:
        return self.width_zh if lang == "zh" else self.width_en


COLUMNS: tuple[Column, ...] = (
    Column("countdown", 8, 8, "right"),
    Column("clock", 4, 8),
    Column("case", 6, 6, "right"),
    Column("priority", 2, 2),
    Column("flags", 5, 5),
    Column("channel", 8, 10, wide=4),
    Column("category", 12, 14, wide=6),
    Column("grid", 7, 7),
    Column("status", 8, 10, wide=2),
    Column("assignee", 8, 10, wide=6),
    Column("title", 12, 12),  # takes the rest of the width
)
_SEP = " "
DROP_ORDER = ("channel", "assignee", "category", "status")
"""Columns given up, in this order, when the widget is too narrow to show a readable title."""
MIN_TITLE = 16
WIDE_TITLE = 36
"""Cells the title keeps before other columns are widened (names shown whole)."""
WIDEN_ORDER = ("channel", "assignee", "category", "status")
MIN_SCROLLED = 3
"""Lines kept for the scrolled part below the pinned band of breached cases."""


def sort_key(row: QueueRow) -> tuple[bool, datetime, int, int]:
    """Breached first, then nearest deadline, rows without a running clock (none, or one
    standing still while held) last.

    Ordering by the deadline alone already puts every breached row (deadline in the past)
    before every running one, and the order never changes while time passes: `tick` needs
    no re-sort. Ties: higher priority first, then the older case.
    """
    return (
        row.due is None or row.held_at is not None,
        row.due or _FAR,
        _PRIORITY_RANK.get(row.priority, 3),
        row.case_id,
    )


class EventQueue(ScrollView, can_focus=True):
    """Open cases, one per line, sorted by SLA urgency; plain `QueueRow`s in, messages out."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "event-queue--header",
        "event-queue--cursor",
        "event-queue--cursor-blurred",
        "event-queue--flash",
        "event-queue--ok",
        "event-queue--at-risk",
        "event-queue--breached",
        "event-queue--none",
        "event-queue--urgent",
        "event-queue--critical",
        "event-queue--flags",
        "event-queue--triage",
        "event-queue--pinned-edge",
        "event-queue--hint",
    }

    DEFAULT_CSS = """
    EventQueue {
        height: 1fr;
        background: $surface;
        color: $foreground;
        overflow-x: hidden;  /* lines are built to the width there is: never a sideways bar */
    }
    EventQueue > .event-queue--header { background: $panel; color: $text-muted; text-style: bold; }
    EventQueue > .event-queue--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    EventQueue > .event-queue--cursor-blurred { background: $block-cursor-blurred-background; }
    EventQueue > .event-queue--flash { background: $error 60%; text-style: bold; }
    EventQueue > .event-queue--ok { color: $text-success; }
    EventQueue > .event-queue--at-risk { color: $text-warning; text-style: bold; }
    EventQueue > .event-queue--breached { color: $text-error; text-style: bold reverse; }
    EventQueue > .event-queue--none { color: $text-muted; }
    EventQueue > .event-queue--urgent { color: $text-warning; text-style: bold; }
    EventQueue > .event-queue--critical { color: $text-error; text-style: bold; }
    EventQueue > .event-queue--flags { color: $text-accent; }
    EventQueue > .event-queue--triage { color: $text-warning; text-style: italic; }
    EventQueue > .event-queue--pinned-edge { text-style: underline; }
    EventQueue > .event-queue--hint { color: $text-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False, id="queue.up"),
        Binding("down", "cursor_down", "Down", show=False, id="queue.down"),
        Binding("pageup", "page_up", "Page up", show=False, id="queue.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="queue.page_down"),
        Binding("home", "first", "First", show=False, id="queue.first"),
        Binding("end", "last", "Last", show=False, id="queue.last"),
        Binding("enter", "choose", "Open", show=False, id="queue.choose"),
    ]

    lang: reactive[str] = reactive("zh", init=False)
    """Column widths: "zh" or "en" (the words themselves come in `words`)."""

    class CursorMoved(Picked[int | None]):
        """The cursor is on another case (`case_id`; None when the queue became empty)."""

        @property
        def case_id(self) -> int | None:
            return self.value

    class CaseChosen(Picked[int]):
        """Enter on a case (`case_id`): open it."""

        @property
        def case_id(self) -> int:
            return self.value

    def __init__(
        self,
        *,
        lang: str = "zh",
        words: Words | None = None,
        hidden_columns: Sequence[str] = (),
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.set_reactive(EventQueue.lang, lang)
        self.words = words or Words()
        """Column titles, clock names and the 督办 flag, already in the UI language."""
        self.lights: Mapping[int, str] = {}
        """Each case's SLA light (ok | at_risk | breached | none), as the console reads the
        store's rule; it keeps this current before it sets rows or ticks. Missing: none."""
        self.hidden_columns: frozenset[str] = frozenset(hidden_columns)
        self._rows: list[QueueRow] = []
        self._by_id: dict[int, QueueRow] = {}
        self._now = datetime.now(UTC)
        self._cursor = 0
        self._cursor_id: int | None = None
        self._pinned = 0
        """How many breached rows (most overdue first) stand pinned under the header,
        whatever the scroll; the rest of the queue scrolls beneath them."""
        self._flash: dict[int, float] = {}
        self._cache: LRUCache[int, tuple[QueueRow, list[Segment]]] = LRUCache(1024)
        self._strips: LRUCache[int, tuple[tuple[object, ...], Strip]] = LRUCache(1024)
        """Finished lines per case: the same `Strip` object again lets Textual reuse what it
        derived from it (crop, colour filter, terminal string), so a scroll or a cursor
        step redraws only lines whose text or style changed."""
        self._layout: list[tuple[Column, int]] = []
        self._layout_width = -1
        self._styles: dict[str, Style] = {}
        self._frame: tuple[Style, int] | None = None
        """(base style, width) while a frame is drawn: both cost more than a row to compute."""

    # Public API ------------------------------------------------------------------------
    @property
    def rows(self) -> Sequence[QueueRow]:
        """The rows in display order."""
        return self._rows

    def row_for(self, case_id: int) -> QueueRow | None:
        """The row the queue holds for a case (None if it is not shown)."""
        return self._by_id.get(case_id)

    @property
    def cursor_case_id(self) -> int | None:
        """The case under the cursor, or None when the queue is empty."""
        return self._cursor_id

    @property
    def cursor_row(self) -> int:
        """Position of the cursor in display order."""
        return self._cursor

    @property
    def pinned(self) -> int:
        """How many rows the pinned band shows (the breached ones, up to what fits)."""
        return self._pinned

    def visible_lines(self) -> list[str]:
        """The lines on screen as plain text, header first (for tests and logs)."""
        return [self.render_line(y).text for y in range(self.scrollable_content_region.height)]

    def advance_from(self, case_id: int) -> None:
        """After an action on the cursor's case (its row already showing the new state): on
        to the case that needs action most, the first row with a running clock (the sort puts
        breached ones first). That is the same case when it is still the most urgent, so
        acknowledge-then-dispatch stays on one case; the cursor never rides a row down."""
        if self._cursor_id != case_id:
            return
        for index, row in enumerate(self._rows):
            if row.due is not None and row.held_at is None:
                self._move_to(index)
                return
        self._scroll_cursor_into_view()  # nothing needs action: stay with the case, in view

    def set_rows(self, rows: Sequence[QueueRow], now: datetime) -> None:
        """Replace the data; the cursor stays on its case (or its old place if the case left)."""
        self._now = now
        self._rows = sorted(rows, key=sort_key)
        self._by_id = {r.case_id: r for r in self._rows}
        self._settle_cursor()
        self.refresh()

    def update_rows(
        self,
        rows: Iterable[QueueRow],
        removed: Iterable[int],
        now: datetime,
        *,
        follow: bool = True,
    ) -> None:
        """Put a few changed rows in place and take rows out, without re-sorting the rest.

        Same outcome as `set_rows` with the whole new set (the cursor stays on its case), at
        the cost of a bisection per row; only the lines between the first and the last
        position that moved are repainted. `follow=False`: the view does not scroll after
        the cursor's row (the caller moves the cursor on next, `advance_from`), so an acted
        row sorting far down does not drag the page there for a frame.
        """
        self._now = now
        lo, hi, ops = len(self._rows) + 1, -1, 0
        for case_id in removed:
            old = self._by_id.pop(case_id, None)
            if old is not None:
                pos = self._position(old)
                del self._rows[pos]
                lo, hi, ops = min(lo, pos), len(self._rows), ops + 1
        for row in rows:
            old = self._by_id.get(row.case_id)
            if old == row:
                continue
            if old is not None:
                pos = self._position(old)
                del self._rows[pos]
                lo, hi = min(lo, pos), max(hi, pos)
            pos = bisect_left(self._rows, sort_key(row), key=sort_key)
            self._rows.insert(pos, row)
            self._by_id[row.case_id] = row
            lo = min(lo, pos)
            hi = max(hi, pos) if old is not None else len(self._rows)
            ops += 1
        if not ops:
            return
        if ops > 1:  # earlier positions may have shifted since: repaint down to the end
            hi = len(self._rows)
        old_cursor = self._cursor
        self._settle_cursor(follow=follow)
        lo, hi = min(lo, old_cursor, self._cursor), max(hi, old_cursor, self._cursor)
        self._refresh_positions(lo, hi)

    def tick(self, now: datetime) -> None:
        """Advance the countdowns; the order does not depend on `now`, so nothing is re-sorted
        and only the countdown column of the visible rows is drawn again."""
        self._now = now
        if not self.is_mounted:
            return
        if self._update_pinned():
            return  # the band changed: the whole view was repainted
        layout = self._columns()
        if not layout or layout[0][0].key != "countdown":
            return  # no countdown column: nothing on screen depends on the time
        height = self.scrollable_content_region.height
        self.refresh(Region(0, 1, layout[0][1], max(height - 1, 0)))

    def select_case(self, case_id: int) -> bool:
        """Put the cursor on `case_id`; False if it is not in the queue."""
        row = self._by_id.get(case_id)
        if row is None:
            return False
        index = self._position(row)
        self._move_to(index)
        return True

    def flash(self, case_id: int, seconds: float = FLASH_SECONDS) -> None:
        """Highlight a row for a moment (a fresh breach), wherever it sits."""
        self._flash[case_id] = time.monotonic() + seconds
        self.set_timer(seconds, self._end_flash)
        self.refresh()

    def is_flashing(self, case_id: int) -> bool:
        return self._flash.get(case_id, 0.0) > time.monotonic()

    # Cursor ------------------------------------------------------------------------------
    def _position(self, row: QueueRow) -> int:
        """Where a row in the queue sits (sort keys are unique: they end with the case id)."""
        return bisect_left(self._rows, sort_key(row), key=sort_key)

    def _settle_cursor(self, *, follow: bool = True) -> None:
        """After the rows changed: back onto the cursor's case, or its old place if it left;
        scrolled into view unless not `follow`."""
        old_id = self._cursor_id
        old = self._by_id.get(old_id) if old_id is not None else None
        if old is not None:
            self._cursor = self._position(old)
        else:
            self._cursor = min(self._cursor, max(len(self._rows) - 1, 0))
        self._cursor_id = self._rows[self._cursor].case_id if self._rows else None
        self._update_virtual_size()
        self._update_pinned(follow=follow)
        if follow:
            self._scroll_cursor_into_view()
        if self._cursor_id != old_id:
            self.post_message(self.CursorMoved(self, self._cursor_id))

    def _refresh_positions(self, lo: int, hi: int) -> None:
        """Repaint the visible lines showing rows `lo`..`hi` (display positions)."""
        if not self.is_mounted:
            self.refresh()
            return
        pinned = self._pinned
        if lo < pinned:  # rows in the band: line = position + 1
            end = min(hi, pinned - 1)
            self.refresh_lines(lo + 1, end - lo + 1)
        top = int(self.scroll_offset.y)  # rows below it: line = position - top + 1
        lo, hi = max(lo, pinned + top), min(hi, top + self._page - 1)
        if lo <= hi:
            self.refresh_lines(lo - top + 1, hi - lo + 1)

    @property
    def _page(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)

    def _move_to(self, index: int) -> None:
        if not self._rows:
            return
        index = max(0, min(index, len(self._rows) - 1))
        old = self._cursor
        self._cursor = index
        self._scroll_cursor_into_view()  # a scroll repaints the whole view by itself
        self._refresh_positions(old, old)
        self._refresh_positions(index, index)
        case_id = self._rows[index].case_id
        if case_id != self._cursor_id:
            self._cursor_id = case_id
            self.post_message(self.CursorMoved(self, case_id))

    def _scroll_cursor_into_view(self) -> None:
        if not self.is_mounted:
            return  # on_resize brings it into view once laid out
        if self._cursor < self._pinned:
            return  # the band never scrolls
        top = int(self.scroll_offset.y)
        if self._cursor - self._pinned < top:
            self.scroll_to(y=self._cursor - self._pinned, animate=False, immediate=True)
        elif self._cursor >= top + self._page:
            self.scroll_to(y=self._cursor - self._page + 1, animate=False, immediate=True)

    def _update_pinned(self, *, follow: bool = True) -> bool:
        """Count the leading breached rows that the band shows (leaving `MIN_SCROLLED`
        lines to scroll); True, and a full repaint, when the count changed."""
        cap = max(self._page - MIN_SCROLLED, 0) if self.is_mounted else 0
        n = 0
        for row in self._rows:
            if n >= cap or self.lights.get(row.case_id) != "breached":
                break
            n += 1
        if n == self._pinned:
            return False
        self._pinned = n
        self._strips.clear()
        if follow:
            self._scroll_cursor_into_view()
        self.refresh()
        return True

    def action_cursor_up(self) -> None:
        self._move_to(self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._move_to(self._cursor + 1)

    def action_page_up(self) -> None:
        self._move_to(self._cursor - self._page)

    def action_page_down(self) -> None:
        self._move_to(self._cursor + self._page)

    def action_first(self) -> None:
        self._move_to(0)

    def action_last(self) -> None:
        self._move_to(len(self._rows) - 1)

    def action_choose(self) -> None:
        if self._cursor_id is not None:
            self.post_message(self.CaseChosen(self, self._cursor_id))

    def on_click(self, event: events.Click) -> None:
        index = self._index_at(event.y)
        if event.y >= 1 and 0 <= index < len(self._rows):
            self._move_to(index)
            if event.chain >= 2:
                self.action_choose()

    def _end_flash(self) -> None:
        now = time.monotonic()
        self._flash = {k: v for k, v in self._flash.items() if v > now}
        self.refresh()

    # Layout ------------------------------------------------------------------------------
    def _columns(self) -> list[tuple[Column, int]]:
        """Visible columns and their widths; the title column takes what is left. A wide
        queue widens the name columns first (a channel or an officer shown whole) while the
        title keeps `WIDE_TITLE` cells; a narrow one drops the least needed columns before
        the title gets squeezed."""
        avail = self._frame[1] if self._frame else self.scrollable_content_region.width
        if self._layout_width == avail and self._layout:
            return self._layout
        cols = [c for c in COLUMNS if c.key not in self.hidden_columns]

        def fixed_width() -> int:
            return sum(c.width(self.lang) for c in cols if c.key != "title") + len(_SEP) * (
                len(cols) - 1
            )

        for key in DROP_ORDER:
            if avail <= 0 or fixed_width() + MIN_TITLE <= avail:
                break
            cols = [c for c in cols if c.key != key]
        spare = avail - fixed_width() - WIDE_TITLE
        bonus: dict[str, int] = {}
        for c in sorted(
            cols, key=lambda c: WIDEN_ORDER.index(c.key) if c.key in WIDEN_ORDER else 99
        ):
            bonus[c.key] = min(c.wide, max(spare, 0))
            spare -= bonus[c.key]
        fixed = fixed_width() + sum(bonus.values())
        layout = []
        for c in cols:
            w = c.width(self.lang) + bonus.get(c.key, 0)
            if c.key == "title":
                w = max(w, avail - fixed)
            layout.append((c, w))
        self._layout, self._layout_width = layout, avail
        self._cache.clear()
        self._strips.clear()
        return layout

    def _line_width(self) -> int:
        layout = self._columns()
        return sum(w for _, w in layout) + len(_SEP) * (len(layout) - 1)

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self._line_width(), len(self._rows) + 1)

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()
        self._update_pinned()
        self._scroll_cursor_into_view()

    def _index_at(self, y: int) -> int:
        """The display position drawn on line `y` (1 = first row): the band, then the rest."""
        return y - 1 if y <= self._pinned else int(self.scroll_offset.y) + y - 1

    def watch_lang(self) -> None:
        self._layout = []
        self._cache.clear()
        self._strips.clear()
        self._update_virtual_size()
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()
        self._strips.clear()

    # Rendering ---------------------------------------------------------------------------
    def _style(self, component: str) -> Style:
        style = self._styles.get(component)
        if style is None:
            style = self.get_component_rich_style(f"event-queue--{component}", partial=True)
            self._styles[component] = style
        return style

    def _header_segments(self, base: Style) -> list[Segment]:
        style = base + self._style("header")
        text = _SEP.join(fit(self.words.column(c.key), w, c.align) for c, w in self._columns())
        return [Segment(text, style)]

    def _static_segments(
        self, row: QueueRow, base: Style, layout: list[tuple[Column, int]]
    ) -> list[Segment]:
        """Everything but the countdown: cached per case until the row object changes."""
        cached = self._cache.get(row.case_id)
        if cached is not None and cached[0] == row:
            return cached[1]
        flags = ("?" if row.triage else " ") + (
            self.words.supervised_flag if row.supervised else "  "
        )
        flags += f"↑{row.escalation_level}" if row.escalation_level > 0 else "  "
        values = {
            "clock": (self.words.clock(row.clock), None),
            "case": (str(row.case_id), None),
            "priority": (
                {"critical": "!!", "urgent": "!"}.get(row.priority, ""),
                row.priority if row.priority in ("critical", "urgent") else None,
            ),
            "flags": (flags, "flags"),
            "channel": (row.channel, None),
            "category": (row.category, "triage" if row.triage else None),
            "grid": (row.grid_label, "triage" if row.grid_code is None else None),
            "status": (row.status_label, None),
            "assignee": (row.assignee, None),
            "title": (f"≈{row.dupes} {row.title}" if row.dupes else row.title, None),
        }
        segments: list[Segment] = []
        for col, w in layout:
            if col.key == "countdown":
                continue
            text, component = values[col.key]
            style = base + self._style(component) if component else base
            segments.append(Segment(_SEP, base))
            segments.append(Segment(fit(text, w, col.align), style))
        # Runs of one style as one segment: fewer segments for every later pass per frame.
        segments = list(Segment.simplify(segments))
        self._cache[row.case_id] = (row, segments)
        return segments

    def _row_strip(self, index: int, base: Style, scroll_x: int, width: int) -> Strip:
        row = self._rows[index]
        layout = self._columns()
        with_countdown = bool(layout) and layout[0][0].key == "countdown"
        text = state = ""
        if with_countdown:
            state = self.lights.get(row.case_id, "none")
            at = row.held_at or self._now  # a held clock stands still
            text = fit(countdown(row.due, at), layout[0][1], "right", sanitize=False)
        post: str | None = None
        if index == self._cursor:
            post = "cursor" if self.has_focus else "cursor-blurred"
        elif self._flash and self.is_flashing(row.case_id):
            post = "flash"
        edge = index == self._pinned - 1 and len(self._rows) > self._pinned
        key = (text, state, post, edge, scroll_x, width, base)
        cached = self._strips.get(row.case_id)
        if cached is not None and cached[0][0] is row and cached[0][1:] == key:
            return cached[1]
        static = self._static_segments(row, base, layout)
        segments: list[Segment] = []
        if with_countdown:
            segments.append(Segment(text, base + self._style(state.replace("_", "-"))))
            segments.extend(static)
        else:
            # No countdown: the first column's leading separator goes (it may share a
            # segment with that column's text when both have the same style).
            if static:
                first, *rest = static
                if first.text != _SEP:
                    segments.append(Segment(first.text[len(_SEP) :], first.style))
                segments.extend(rest)
        if post is not None:
            segments = list(Segment.apply_style(segments, post_style=self._style(post)))
        if edge:  # the band's last row draws the line between it and the scrolled rows
            segments = list(Segment.apply_style(segments, post_style=self._style("pinned-edge")))
        strip = Strip(segments, self._line_width()).crop_extend(scroll_x, scroll_x + width, base)
        self._strips[row.case_id] = ((row, *key), strip)
        return strip

    def render_lines(self, crop: Region) -> list[Strip]:
        """Draw the dirty lines of one frame, with the widget's style and width read once
        (`rich_style` walks the DOM: read per line it cost more than drawing the row)."""
        self._frame = (self.rich_style, self.scrollable_content_region.width)
        try:
            return super().render_lines(crop)
        finally:
            self._frame = None

    def render_line(self, y: int) -> Strip:
        scroll_x = self.scroll_offset.x
        if self._frame is not None:
            base, width = self._frame
        else:
            base, width = self.rich_style, self.scrollable_content_region.width
        if y == 0:
            strip = Strip(self._header_segments(base))
        elif not self._rows:
            strip = self._hint_line(y, base)
        else:
            index = self._index_at(y)
            if index >= len(self._rows):
                return Strip.blank(width, base)
            return self._row_strip(index, base, scroll_x, width)
        return strip.crop_extend(scroll_x, scroll_x + width, base)

    def _hint_line(self, y: int, base: Style) -> Strip:
        """An empty queue says what to do (ingest a file, start the demo, add a report)."""
        lines = self.words.empty_hint.splitlines()
        text = lines[y - 2] if 2 <= y < len(lines) + 2 else ""
        return Strip([Segment("  " + text if text else "", base + self._style("hint"))])

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
