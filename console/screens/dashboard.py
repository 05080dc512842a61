"""The dispatcher's one screen: header, summary line, live queue with the case detail
beside it, grid map, squads and the command line.

The dashboard lays widgets out and hands them plain rows; the app owns the state and the
actions. The layout follows the terminal (breakpoint classes on the screen, rules in
tafang.tcss): the detail pane from 120 columns, the map and squads from 30 lines.
The detail pane follows the queue's cursor once it rests; the case's record is read in a
worker and cached per case version, so cursor moves never wait for the store.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from tafang.console.i18n import Strings
from tafang.console.view_model import case_detail, summary
from tafang.store.views import TimelineEntry
from tafang.widgets.detail_pane import DetailPane
from tafang.widgets.dispatch_panel import DispatchPanel
from tafang.widgets.event_queue import EventQueue
from tafang.widgets.footer import Footer
from tafang.widgets.grid_map import GridMap
from tafang.widgets.rows import CellSpec, CellState, OfficerRow, PartnerRow, QueueRow
from tafang.widgets.squad_panel import SquadPanel
from tafang.widgets.summary import SummaryLine
from textual import work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input

if TYPE_CHECKING:
    from tafang.console.live_state import LiveState
    from tafang.console.view_model import ViewModel

DETAIL_DELAY = 0.12
"""Seconds the cursor rests before the detail pane follows it (key repeat stays cheap)."""
TIMELINES_KEPT = 64


@dataclass
class TimelineRead(Message):
    """A worker read a case's record for the detail pane."""

    case_id: int
    version: int
    entries: Sequence[TimelineEntry]


class HeaderLine(Widget):
    """One line of status. Unlike `Static.update`, a new text repaints without a relayout
    (the line is always one row high), so the once-a-second clock costs one line."""

    def __init__(self, text: Text, **kw: Any) -> None:
        super().__init__(**kw)
        self.text = text

    def update(self, text: Text) -> None:
        if text != self.text:
            self.text = text
            self.refresh()

    def render(self) -> Text:
        return self.text


class Dashboard(Screen[None]):
    """Header and summary lines, queue and case detail, map and squads, command line."""

    HORIZONTAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-narrow"),
        (120, "-wide"),
        (200, "-wall"),
    ]
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]] | None] = [
        (0, "-short"),
        (30, "-tall"),
        (60, "-huge"),
    ]

    def __init__(
        self,
        cells: Sequence[CellSpec],
        strings: Strings,
        lang: str,
        suggestions: Sequence[str],
        *,
        state: LiveState | None = None,
        vm: ViewModel | None = None,
        timeline: Callable[[int], Sequence[TimelineEntry]] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(id="dashboard")
        self.cells = cells
        self.t = strings
        self.lang = lang
        self.suggestions = suggestions
        self.state = state
        self.vm = vm
        self.read_timeline = timeline
        self.now = now
        self._timelines: OrderedDict[tuple[int, int], list[TimelineEntry]] = OrderedDict()
        self._detail_timer: Timer | None = None
        self._detail_due = 0.0
        self._detail_id: int | None = None
        self._map_states: tuple[CellState, ...] | None = None
        self._queue: EventQueue | None = None
        self._header: HeaderLine | None = None
        self._map: GridMap | None = None
        self._squads: SquadPanel | None = None

    def compose(self) -> ComposeResult:
        yield HeaderLine(Text(self.t("header.loading")), id="header")
        words = self.t.words()
        yield SummaryLine(words=words, id="summary")
        with Horizontal(id="main"):
            yield EventQueue(lang=self.lang, words=words, id="queue")
            yield DetailPane(id="detail")
        with Horizontal(id="lower"):
            with Vertical(id="map-box"):
                yield GridMap(self.cells, words=words, id="map")
            with Vertical(id="squad-box"):
                yield SquadPanel(lang=self.lang, words=words, id="squads")
        yield Input(
            placeholder=self.t("command.placeholder"),
            suggester=SuggestFromList(self.suggestions, case_sensitive=False),
            id="command",
        )
        yield Footer()
        yield DispatchPanel(
            placeholder=self.t("assign.filter"), none=self.t("assign.none"), id="dispatch"
        )

    ready = False

    def on_mount(self) -> None:
        # Held, not queried: a lookup per tick, key and poll answer costs a DOM walk, and a
        # poll answer that lands while the app shuts down (children already removed) must
        # find the widgets it updates, not raise NoMatches.
        self._queue = self.query_one("#queue", EventQueue)
        self._header = self.query_one("#header", HeaderLine)
        self._map = self.query_one("#map", GridMap)
        self._squads = self.query_one("#squads", SquadPanel)
        self._detail = self.query_one("#detail", DetailPane)
        self._summary = self.query_one("#summary", SummaryLine)
        self.ready = True
        self.queue.focus()
        self.post_message(self.Ready())
        if self.state is not None:
            self.set_interval(1.0, self._tick_detail)

    class Ready(Message):
        """The widgets exist: the app may hand them what it loaded meanwhile."""

    @property
    def queue(self) -> EventQueue:
        return self._queue if self._queue is not None else self.query_one("#queue", EventQueue)

    @property
    def header(self) -> HeaderLine:
        return self._header if self._header is not None else self.query_one("#header", HeaderLine)

    @property
    def command(self) -> Input:
        return self.query_one("#command", Input)

    def set_rows(self, rows: Sequence[QueueRow], now: datetime) -> None:
        self.queue.set_rows(rows, now)

    @property
    def map(self) -> GridMap:
        return self._map if self._map is not None else self.query_one("#map", GridMap)

    @property
    def squads(self) -> SquadPanel:
        return self._squads if self._squads is not None else self.query_one("#squads", SquadPanel)

    def set_map(self, states: Sequence[CellState]) -> None:
        """Hand the map its cells; unchanged states cost nothing (a map repaint is ~100
        cells: an acknowledgement or a tick that changes no cell must not pay for it)."""
        if self._map_states is not None and tuple(states) == self._map_states:
            return
        self._map_states = tuple(states)
        self.map.set_state({s.code: s for s in states})

    def set_squads(
        self, officers: Sequence[OfficerRow], partners: Sequence[PartnerRow], now: datetime
    ) -> None:
        self.squads.set_data(officers, partners, now)
        if self.vm is not None:
            self._summary.set_summary(summary(self.vm, officers, partners))

    # ---- the detail pane ---------------------------------------------------------------
    @property
    def detail(self) -> DetailPane:
        return self._detail

    def on_event_queue_cursor_moved(self, m: EventQueue.CursorMoved) -> None:
        """Follow the cursor once it rests. One timer, re-armed only when it fires early:
        a key repeat costs a clock read, not a timer (each is an asyncio task)."""
        self._detail_id = m.case_id
        self._detail_due = time.monotonic() + DETAIL_DELAY
        if self._detail_timer is None:
            self._detail_timer = self.set_timer(DETAIL_DELAY, self._detail_rested)

    def _detail_rested(self) -> None:
        self._detail_timer = None
        left = self._detail_due - time.monotonic()
        if left > 0.005:  # the cursor moved again meanwhile: wait for the rest of the pause
            self._detail_timer = self.set_timer(left, self._detail_rested)
            return
        self._refresh_detail()

    def _tick_detail(self) -> None:
        """Once a second: the countdowns move; the case is rebuilt only if the store sent a
        newer version (or the pane shows another case)."""
        shown = self._detail.detail
        case = self.state.cases.get(self._detail_id) if self.state and self._detail_id else None
        if shown is not None and case is not None and case.version == shown.version:
            if self.now is not None:
                self._detail.tick(self.now())
            return
        if self._detail_timer is None:
            self._refresh_detail()

    def _refresh_detail(self) -> None:
        """Draw the cursor's case from what the app holds (no I/O); its record comes from
        the cache, or a worker reads it."""
        if self.state is None or self.vm is None or self.now is None or not self.is_attached:
            return
        now = self.now()
        case = self.state.cases.get(self._detail_id) if self._detail_id is not None else None
        if case is None:
            self._detail.empty = self.t("no_case")
            self._detail.show(None, now)
            return
        key = (case.id, case.version)
        entries = self._timelines.get(key)
        if entries is None and self.read_timeline is not None:
            self._read(case.id, case.version)
        self._detail.show(case_detail(self.vm, case, now, entries), now)

    @work(thread=True, exclusive=True, group="detail", exit_on_error=False)
    def _read(self, case_id: int, version: int) -> None:
        assert self.read_timeline is not None
        entries = list(self.read_timeline(case_id))
        self.post_message(TimelineRead(case_id, version, entries))

    def on_timeline_read(self, m: TimelineRead) -> None:
        self._timelines[(m.case_id, m.version)] = list(m.entries)
        while len(self._timelines) > TIMELINES_KEPT:
            self._timelines.popitem(last=False)
        if m.case_id == self._detail_id:
            self._refresh_detail()
