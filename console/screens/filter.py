"""The filter modal: status, channel, circle and free text for the live queue."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from tafang.console.i18n import Strings
from tafang.console.queue_filter import Filter
from tafang.store.config import Deployment
from tafang.store.models import OPEN_STATUSES
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select


class FilterScreen(ModalScreen[Filter | None]):
    """Dismisses with the new filter (Enter in the text box), or None on escape."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="filter.cancel"),
        Binding("ctrl+s", "apply", "Apply", id="filter.apply", priority=True),
    ]

    def __init__(self, current: Filter, d: Deployment, strings: Strings) -> None:
        super().__init__()
        self.current = current
        self.d = d
        self.t = strings

    def compose(self) -> ComposeResult:
        t, cur = self.t, self.current
        statuses = [(t(f"status.{s}"), s) for s in OPEN_STATUSES]
        channels = [(t.pick(c.name, c.name_en), c.code) for c in self.d.channels]
        circles = [(f"{c.code} {c.name}", c.code) for c in self.d.tower.enforcement_circles]
        with Vertical(id="filter-box", classes="modal-box"):
            yield Label(Text(t("filter.title")), classes="form-title")
            yield Label(t("filter.status"))
            yield Select(
                statuses, id="q-status", prompt=t("filter.any"), value=cur.status or Select.NULL
            )
            yield Label(t("filter.channel"))
            yield Select(
                channels, id="q-channel", prompt=t("filter.any"), value=cur.channel or Select.NULL
            )
            yield Label(t("filter.circle"))
            yield Select(
                circles, id="q-circle", prompt=t("filter.any"), value=cur.circle or Select.NULL
            )
            yield Label(t("filter.text"))
            yield Input(value=cur.text, id="q-text", placeholder=t("filter.apply"))

    def on_mount(self) -> None:
        self.query_one("#q-text", Input).focus()

    def _value(self, wid: str) -> str:
        v = self.query_one(wid, Select).value
        return v if isinstance(v, str) else ""

    @on(Input.Submitted, "#q-text")
    def action_apply(self) -> None:
        self.dismiss(
            Filter(
                status=self._value("#q-status"),
                channel=self._value("#q-channel"),
                circle=self._value("#q-circle"),
                text=self.query_one("#q-text", Input).value.strip(),
                cell=self.current.cell,
            )
        )

    def action_cancel(self) -> None:
        self.dismiss(None)
