"""`?`: every key of the console and the command-line shorthand, in the UI language."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from tafang.console.i18n import Strings
from tafang.console.keymap import SHORTHAND, usage
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


class HelpScreen(ModalScreen[None]):
    """A list of keys (those the operator's role may not use dimmed, marked as such); any of
    escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close")
    ]

    def __init__(
        self, keys: Sequence[tuple[str, str] | tuple[str, str, bool]], strings: Strings
    ) -> None:
        super().__init__()
        self.keys = keys
        self.t = strings

    def compose(self) -> ComposeResult:
        keys = Table(title=self.t("help.title"), show_header=False, box=None, expand=True)
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for k, what, *available in self.keys:
            dim = "dim" if available and not available[0] else ""  # the role may not
            keys.add_row(Text(k, style=dim), Text(what, style=dim))
        cmds = Table(title=self.t("help.command"), show_header=False, box=None, expand=True)
        cmds.add_column(style="bold", no_wrap=True)
        cmds.add_column()
        for action in dict.fromkeys(SHORTHAND.values()):  # aliases once
            cmds.add_row(Text(usage(action)), Text(self.t(f"action.{action}")))
        with VerticalScroll(id="help-box", classes="modal-box"):
            yield Static(keys)
            yield Static(cmds)

    def action_close(self) -> None:
        self.dismiss(None)
