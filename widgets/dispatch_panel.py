"""The dispatch panel: who should take this case, best first, with the reasons shown.

A panel on its screen's top layer, not a modal screen: opening and closing it repaints its
own lines only. A modal screen composes the whole dashboard behind its tint, and closing it
repaints the whole dashboard: the Enter that dispatched waited 130–360 ms for those frames
(bench/console.py, issue 9). The queue stays in sight above it while the dispatcher chooses.

It takes plain choices (ranked by the console) and posts `Picked` or `Closed`; typing filters,
↑/↓ move, Enter takes the highlighted one, Esc (or focus leaving the panel) closes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from tafang.widgets.text import fit, safe, width_of
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.events import DescendantBlur
from textual.message import Message
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option


@dataclass(frozen=True, slots=True)
class Choice:
    """One candidate for a dispatch: an officer, a partner team or a squad."""

    code: str
    kind: str  # officer | partner | squad
    name: str
    reasons: tuple[str, ...]
    rank: tuple[int, ...]

    @property
    def search_text(self) -> str:
        return f"{self.code} {self.name} {' '.join(self.reasons)}".lower()


NAME_CELLS = (12, 24)
"""The name column: at least 12 cells, as wide as the longest name shown, up to 24."""


def name_width(choices: Sequence[Choice]) -> int:
    """Cells for the name column: the longest name in the UI language (`Support squad`
    was cut to `Support squ…` at a fixed 12), within NAME_CELLS."""
    widest = max((width_of(safe(c.name)) for c in choices), default=0)
    return max(NAME_CELLS[0], min(widest, NAME_CELLS[1]))


def choice_text(c: Choice, name_cells: int = NAME_CELLS[0]) -> Text:
    """One line of the list: code, name, reasons; literal text throughout. Busy officers dim."""
    busy = c.kind == "officer" and c.rank[1] > 0
    line = Text(style="dim" if busy else "")
    line.append(f"{c.code:<10}", style="bold")
    line.append(fit(c.name, name_cells))
    line.append(" ")
    line.append(" · ".join(c.reasons), style="dim" if not busy else "")
    return line


class DispatchPanel(Vertical):
    """Pick who takes a case. Hidden until `open`; posts `Picked(case_id, code)` or
    `Closed(case_id)` and hides itself."""

    SAYS_ITS_KEYS: ClassVar[bool] = True  # its filter's placeholder does: the footer stays
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "close", "Cancel", id="assign.cancel", show=False),
        Binding("down", "move(1)", show=False, priority=True),
        Binding("up", "move(-1)", show=False, priority=True),
        Binding("pagedown", "move(10)", show=False, priority=True),
        Binding("pageup", "move(-10)", show=False, priority=True),
    ]

    @dataclass
    class Picked(Message):
        """The dispatcher chose `code` for case `case_id`."""

        case_id: int
        code: str

    @dataclass
    class Closed(Message):
        """The panel closed without a choice."""

        case_id: int

    def __init__(self, *, placeholder: str, none: str, **kw: str) -> None:
        super().__init__(**kw)
        self.placeholder = placeholder
        self.none = none
        self.case_id: int | None = None
        self.choices: list[Choice] = []
        self.shown: list[Choice] = []
        self._cells = NAME_CELLS[0]

    def compose(self) -> ComposeResult:
        yield Label(id="assign-title")
        yield Input(placeholder=self.placeholder, id="assign-filter")
        options = OptionList(id="assign-list")
        options.can_focus = False  # ↑/↓ reach it from the filter; Tab must not strand focus
        yield options

    @property
    def is_open(self) -> bool:
        return self.case_id is not None

    def open(self, case_id: int, title: Text, choices: Sequence[Choice]) -> None:
        """Show the choices for `case_id`, best first, the top one highlighted."""
        self.case_id = case_id
        self.choices = list(choices)
        self.shown = list(choices)
        self._cells = name_width(self.choices)  # one width while filtering: columns stay put
        self.query_one("#assign-title", Label).update(title)
        box = self.query_one("#assign-filter", Input)
        with box.prevent(Input.Changed):
            box.value = ""
        self._fill()
        self.display = True
        box.focus()

    def _fill(self) -> None:
        ol = self.query_one(OptionList)
        ol.clear_options()
        if not self.shown:
            ol.add_option(Option(Text(self.none), disabled=True))
            return
        ol.add_options([Option(choice_text(c, self._cells), id=c.code) for c in self.shown])
        ol.highlighted = 0

    @on(Input.Changed, "#assign-filter")
    def _filter(self, event: Input.Changed) -> None:
        event.stop()
        words = event.value.lower().split()
        self.shown = [c for c in self.choices if all(w in c.search_text for w in words)]
        self._fill()

    def action_move(self, step: int) -> None:
        if not self.shown:
            return
        ol = self.query_one(OptionList)
        cur = ol.highlighted if ol.highlighted is not None else 0
        ol.highlighted = max(0, min(len(self.shown) - 1, cur + step))

    @on(Input.Submitted, "#assign-filter")
    def _take(self, event: Input.Submitted) -> None:
        event.stop()
        if not self.shown:
            return
        i = self.query_one(OptionList).highlighted or 0
        self._end(self.Picked, self.shown[i].code)

    @on(OptionList.OptionSelected, "#assign-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self._end(self.Picked, event.option.id)

    def action_close(self) -> None:
        self._end(self.Closed)

    def _on_descendant_blur(self, _event: DescendantBlur) -> None:
        # Focus went elsewhere (a click on the queue, Tab): the panel is a popup, it closes.
        # Checked after the refresh: focus moves between the panel's own widgets too.
        self.call_after_refresh(self._close_if_left)

    def _close_if_left(self) -> None:
        if self.is_open and not self.has_focus_within:
            self.action_close()

    def _end(self, message: type[Picked] | type[Closed], *args: str) -> None:
        if self.case_id is None:
            return
        case_id, self.case_id = self.case_id, None
        self.display = False
        self.post_message(message(case_id, *args))
