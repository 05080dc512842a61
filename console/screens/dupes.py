"""`m` on a case marked ≈N: its probable duplicates side by side, merged with one key.

The list holds the candidates best first with their score and reasons; below it, the case and
the highlighted candidate stand in two columns (channel, category, cell, place, title, times)
so the dispatcher sees why before merging. Enter merges this case into the chosen one (the
`merge` move, on the record); `n` types another case number; Escape leaves both open.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import ClassVar

from rich.text import Text
from tafang.console.i18n import Strings
from tafang.console.view_model import ViewModel
from tafang.store.dupes import Suggestion
from tafang.store.views import CaseView
from tafang.widgets.text import safe
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

OTHER = -1
"""Dismissed with this: the dispatcher wants to type the case number instead."""


def reasons_text(s: Suggestion, t: Strings) -> str:
    """The reasons in the dispatcher's language, joined: 同网格 N3-07 · 文字 0.82 · …"""
    return " · ".join(t(f"dupes.reason.{r.code}", value=r.value) for r in s.reasons)


def card(case: CaseView, vm: ViewModel, tz: tzinfo, t: Strings) -> Text:
    """One case as the comparison shows it; the feed's text literally."""
    out = Text()
    fields = (
        ("field.source", vm.channels.get(case.source, case.source)),
        ("field.category", vm.category_name(case)),
        ("field.grid", vm.grid_label(case)),
        ("field.location", case.location),
        ("field.title", case.display_title),
        ("field.received_at", case.received_at.astimezone(tz).strftime("%m-%d %H:%M")),
        ("field.status", t(f"status.{case.status}")),
    )
    for key, value in fields:
        out.append(f"{t.known(key, key.split('.')[-1])}  ", style="dim")
        out.append(safe(str(value)))
        out.append("\n")
    return out


class DupesScreen(ModalScreen[int | None]):
    """Choose the case this one duplicates; dismisses with its id, OTHER, or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="dupes.cancel"),
        Binding("n", "other", "Other", id="dupes.other"),
    ]

    def __init__(
        self,
        case: CaseView,
        found: list[tuple[CaseView, Suggestion]],
        vm: ViewModel,
        tz: tzinfo,
        strings: Strings,
    ) -> None:
        super().__init__()
        self.case, self.found, self.vm, self.tz, self.t = case, found, vm, tz, strings

    def compose(self) -> ComposeResult:
        t = self.t
        with Vertical(id="dupes-box", classes="modal-box"):
            yield Label(Text(t("dupes.title", id=self.case.id)), classes="form-title")
            yield OptionList(*self._options(), id="dupes-list")
            with Horizontal(id="dupes-side"):
                with Vertical(classes="dupes-card"):
                    yield Label(Text(t("dupes.this", id=self.case.id)), classes="dupes-head")
                    yield Static(card(self.case, self.vm, self.tz, t), id="dupes-this")
                with Vertical(classes="dupes-card"):
                    yield Label("", id="dupes-other-head", classes="dupes-head")
                    yield Static("", id="dupes-other")
            yield Label(Text(t("dupes.keys")), id="dupes-keys")

    def _options(self) -> list[Option]:
        if not self.found:
            return [Option(Text(self.t("dupes.none")), disabled=True)]
        out = []
        for other, s in self.found:
            line = Text()
            line.append(f"{other.id:>6}  ", style="bold")
            line.append(self.t("dupes.score", score=f"{s.score:.2f}") + "  ")
            line.append(reasons_text(s, self.t), style="dim")
            out.append(Option(line, id=str(other.id)))
        return out

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        if self.found:
            ol.highlighted = 0
            self._show(0)
        ol.focus()

    @on(OptionList.OptionHighlighted, "#dupes-list")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        self._show(event.option_index)

    def _show(self, i: int) -> None:
        other = self.found[i][0]
        self.query_one("#dupes-other-head", Label).update(Text(self.t("dupes.other", id=other.id)))
        self.query_one("#dupes-other", Static).update(card(other, self.vm, self.tz, self.t))

    @on(OptionList.OptionSelected, "#dupes-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_other(self) -> None:
        self.dismiss(OTHER)

    def action_cancel(self) -> None:
        self.dismiss(None)
