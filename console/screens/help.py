"""`?`: every key of the console and the command-line shorthand, in the UI language."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from rich.text import Text
from tafang.console.i18n import Strings
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

SHORTHAND = (
    ("a ID", "ack"),
    ("d ID WHO", "dispatch"),
    ("ar ID", "arrive"),
    ("h ID", "handle"),
    ("c ID", "close"),
    ("p ID REASON", "hold"),
    ("u ID", "resume"),
    ("v ID REASON", "void"),
    ("m ID into TARGET", "merge"),
    ("s ID OPINION", "supervise"),
    ("e ID REASON", "escalate"),
    ("r ID REASON", "return"),
    ("w ID REASON", "rework"),
    ("o ID", "open"),
    ("f TEXT", "filter"),
)


class HelpScreen(ModalScreen[None]):
    """A list of keys; any of escape, q or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,question_mark", "close", "Close", id="help.close")
    ]

    def __init__(self, keys: Sequence[tuple[str, str]], strings: Strings) -> None:
        super().__init__()
        self.keys = keys
        self.t = strings

    def compose(self) -> ComposeResult:
        keys = Table(title=self.t("help.title"), show_header=False, box=None, expand=True)
        keys.add_column(style="bold", no_wrap=True)
        keys.add_column()
        for k, what in self.keys:
            keys.add_row(Text(k), Text(what))
        cmds = Table(title=self.t("help.command"), show_header=False, box=None, expand=True)
        cmds.add_column(style="bold", no_wrap=True)
        cmds.add_column()
        for k, action in SHORTHAND:
            cmds.add_row(Text(k), Text(self.t(f"action.{action}")))
        with VerticalScroll(id="help-box", classes="modal-box"):
            yield Static(keys)
            yield Static(cmds)

    def action_close(self) -> None:
        self.dismiss(None)
