"""The dispatcher's one screen: header, live queue, grid map, squads and the command line.

The dashboard only lays widgets out and hands them plain rows; the app owns the state and
the actions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Footer, Input

from console.i18n import Strings
from widgets.event_queue import EventQueue
from widgets.grid_map import GridMap
from widgets.rows import CellSpec, CellState, OfficerRow, PartnerRow, QueueRow
from widgets.squad_panel import SquadPanel


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
        at_risk: float,
        suggestions: Sequence[str],
    ) -> None:
        super().__init__(id="dashboard")
        self.cells = cells
        self.t = strings
        self.lang = lang
        self.at_risk = at_risk
        self.suggestions = suggestions

    def compose(self) -> ComposeResult:
        yield HeaderLine(Text(self.t("header.loading")), id="header")
        yield EventQueue(lang=self.lang, at_risk=self.at_risk, id="queue")
        with Horizontal(id="lower"):
            with Vertical(id="map-box"):
                yield GridMap(self.cells, lang=self.lang, id="map")
            with Vertical(id="squad-box"):
                yield SquadPanel(lang=self.lang, id="squads")
        yield Input(
            placeholder=self.t("command.placeholder"),
            suggester=SuggestFromList(self.suggestions, case_sensitive=False),
            id="command",
        )
        yield Footer()

    ready = False

    def on_mount(self) -> None:
        self.ready = True
        self.queue.focus()
        self.post_message(self.Ready())

    class Ready(Message):
        """The widgets exist: the app may hand them what it loaded meanwhile."""

    @property
    def queue(self) -> EventQueue:
        return self.query_one("#queue", EventQueue)

    @property
    def header(self) -> HeaderLine:
        return self.query_one("#header", HeaderLine)

    @property
    def command(self) -> Input:
        return self.query_one("#command", Input)

    def set_rows(self, rows: Sequence[QueueRow], now: datetime) -> None:
        self.queue.set_rows(rows, now)

    @property
    def map(self) -> GridMap:
        return self.query_one("#map", GridMap)

    @property
    def squads(self) -> SquadPanel:
        return self.query_one("#squads", SquadPanel)

    def set_map(self, states: Sequence[CellState]) -> None:
        self.map.set_state({s.code: s for s in states})

    def set_squads(
        self, officers: Sequence[OfficerRow], partners: Sequence[PartnerRow], now: datetime
    ) -> None:
        self.squads.set_data(officers, partners, now)
