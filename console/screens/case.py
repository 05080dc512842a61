"""A case in full: every field as the feed sent it, and the record of what happened to it,
under the dashboard's header line (the time and the overdue count stay in view)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from tafang.console.i18n import Strings
from tafang.console.screens.dashboard import HeaderLine
from tafang.console.view_model import ViewModel, clock_lines, local, timeline_words
from tafang.store.views import CaseView, TimelineEntry
from tafang.widgets.dispatch_panel import DispatchPanel
from tafang.widgets.text import safe
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Static


class TimelineLoaded(Message):
    def __init__(self, entries: Sequence[TimelineEntry]) -> None:
        super().__init__()
        self.entries = entries


def _lit(v: object) -> Text:
    """Any value as literal text: no markup, control characters made visible."""
    if v is None:
        return Text("—", style="dim")
    return Text(safe(str(v)))


class CaseScreen(Screen[None]):
    """Opened with `o`/Enter or `o ID`; the app's action keys act on this case."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Back", id="case.back")]

    def __init__(
        self,
        case: CaseView,
        vm: ViewModel,
        strings: Strings,
        load: Callable[[int], Sequence[TimelineEntry]],
    ) -> None:
        super().__init__()
        self.case = case
        self.vm = vm
        self.t = strings
        self.load = load
        self.entries: Sequence[TimelineEntry] = ()

    @property
    def case_id(self) -> int:
        return self.case.id

    def compose(self) -> ComposeResult:
        yield HeaderLine(Text(""), id="case-header")
        with VerticalScroll(id="case-body"):
            yield Static(id="case-fields")
            yield Static(id="case-timeline")
        yield Footer()
        yield DispatchPanel(
            placeholder=self.t("assign.filter"), none=self.t("assign.none"), id="dispatch"
        )

    def on_mount(self) -> None:
        self.show(self.case)
        self._sync_header()
        self.set_interval(1.0, self._sync_header)

    def _sync_header(self) -> None:
        """The app's header line (clock, counts, daemon), as on the dashboard."""
        text = getattr(self.app, "header_text", None)
        if callable(text):
            self.query_one("#case-header", HeaderLine).update(text())

    def show(self, case: CaseView) -> None:
        """Redraw for a newer version of the case and reload its record."""
        self.case = case
        self.query_one("#case-fields", Static).update(self._fields())
        self._load(case.id)

    @work(thread=True, exclusive=True, group="timeline")
    def _load(self, case_id: int) -> None:
        self.post_message(TimelineLoaded(self.load(case_id)))

    def on_timeline_loaded(self, message: TimelineLoaded) -> None:
        self.entries = message.entries
        self.query_one("#case-timeline", Static).update(self._timeline())

    def _time(self, at: datetime | None) -> str:
        return local(self.vm, at, "%m-%d %H:%M:%S")

    def _fields(self) -> Table:
        c = self.case
        tbl = Table(
            title=Text(self.t("case.title", id=c.id)), show_header=False, box=None, expand=True
        )
        tbl.add_column(style="bold", no_wrap=True, width=14)
        tbl.add_column(ratio=1)
        rows: list[tuple[str, object]] = [
            ("title", c.title),
            ("description", c.description),
            ("status", self.t(f"status.{c.status}")),
            ("source", self.vm.channels.get(c.source, c.source)),
            ("external_id", c.external_id),
            ("category", self.vm.category_name(c)),
            ("grid", self.vm.grid_label(c)),
            ("location", c.location),
            ("priority", self.t(f"priority.{c.priority}")),
            ("reporter", c.reporter),
            ("received_at", self._time(c.received_at)),
            ("assignee", self.vm.assignee(c)),
            ("escalation", self.t(f"level.{c.escalation_level}")),
            ("supervised", self.t(f"case.supervised_{'yes' if c.supervised else 'no'}")),
            (
                "triage",
                self.t("case.triage_yes", reason=c.triage_reason or "?")
                if c.triage
                else self.t("case.triage_no"),
            ),
        ]
        now = getattr(self.app, "now", None)
        for line in clock_lines(self.vm, c, now() if callable(now) else c.updated_at):
            rows.append(("clock", line.text))
        if c.raw_fields:
            rows.append(("raw", json.dumps(c.raw_fields, ensure_ascii=False)[:2000]))
        said_clocks = False  # one "时限" label over the clock rows, not one per row
        for k, v in rows:
            label = self.t(f"field.{k}")
            if k == "clock":
                label, said_clocks = ("" if said_clocks else self.t("case.clocks")), True
            tbl.add_row(Text(label), _lit(v))
        return tbl

    def _timeline(self) -> Table:
        tbl = Table(title=Text(self.t("case.timeline")), expand=True)
        for col in ("at", "action", "operator", "terminal"):
            tbl.add_column(self.t(f"field.{col}"), no_wrap=col != "action")
        operators = {o.code: o.name for o in self.vm.d.operators}
        for e in self.entries:  # plain words from the catalogue, local time
            tbl.add_row(
                Text(self._time(e.at)),
                _lit(timeline_words(self.vm, e)),
                _lit(operators.get(e.operator, e.operator)),
                _lit(e.terminal),
            )
        return tbl

    def action_close(self) -> None:
        self.dismiss(None)
