"""The dispatcher's one screen: header, live queue, grid map, squads and the command line.

The dashboard only lays widgets out and hands them plain rows; the app owns the state and
the actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.text import Text
from tafang.console.i18n import Strings
from tafang.widgets.event_queue import EventQueue
from tafang.widgets.grid_map import GridMap
from tafang.widgets.rows import CellSpec, CellState, OfficerRow, PartnerRow, QueueRow
from tafang.widgets.squad_panel import SquadPanel
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Footer, Input


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
    """Header line, queue on top, map and squads below, command line, footer."""

    def __init__(
        self,
        cells: Sequence[CellSpec],
        strings: Strings,
        lang: str,
        suggestions: Sequence[str],
    ) -> None:
        super().__init__(id="dashboard")
        self.cells = cells
        self.t = strings
        self.lang = lang
        self.suggestions = suggestions
        self._map_states: tuple[CellState, ...] | None = None
        self._queue: EventQueue | None = None
        self._header: HeaderLine | None = None
        self._map: GridMap | None = None
        self._squads: SquadPanel | None = None

    def compose(self) -> ComposeResult:
        yield HeaderLine(Text(self.t("header.loading")), id="header")
        words = self.t.words()
        yield EventQueue(lang=self.lang, words=words, id="queue")
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

    ready = False

    def on_mount(self) -> None:
        # Held, not queried: a lookup per tick, key and poll answer costs a DOM walk, and a
        # poll answer that lands while the app shuts down (children already removed) must
        # find the widgets it updates, not raise NoMatches.
        self._queue = self.query_one("#queue", EventQueue)
        self._header = self.query_one("#header", HeaderLine)
        self._map = self.query_one("#map", GridMap)
        self._squads = self.query_one("#squads", SquadPanel)
        self.ready = True
        self.queue.focus()
        self.post_message(self.Ready())

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
