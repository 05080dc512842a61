"""Are you sure? A yes/no modal for moves that throw work away (void a dispatched case,
discard a half-filled report). Enter or y confirms; Esc or n keeps things as they are."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import Label


def relabel(node: DOMNode, words: dict[str, str]) -> None:
    """Footer words of a screen's bindings, by binding id, in the UI language (class-level
    bindings carry English placeholders; an empty word leaves one as it is)."""
    keys = node._bindings.key_to_bindings
    for k, bs in keys.items():
        keys[k] = [replace(b, description=words[b.id]) if words.get(b.id or "") else b for b in bs]


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses True (confirmed) or False; the question and hint arrive as plain words."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter,y", "answer(True)", "confirm", id="confirm.yes"),
        Binding("escape,n", "answer(False)", "keep", id="confirm.no"),
    ]

    def __init__(self, question: str, hint: str, yes: str = "", no: str = "") -> None:
        super().__init__()
        self.question = question
        self.hint = hint
        relabel(self, {"confirm.yes": yes, "confirm.no": no})

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box", classes="modal-box"):
            yield Label(Text(self.question, style="bold"), id="confirm-question")
            yield Label(Text(self.hint, style="dim"), id="confirm-hint")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
