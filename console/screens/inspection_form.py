"""`n` on the inspections screen: a new plan — enterprise, window, checklist items by department.

Dismisses with plain fields for `store.inspections.create_plan` (the enterprise as typed: id,
credit code or name), or None. Items are one a line, `DEPT:TEXT` (market:价格公示).
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

from rich.text import Text
from tafang.console.i18n import Strings
from tafang.console.screens.confirm import relabel
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, TextArea


class PlanForm(ModalScreen[dict[str, Any] | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "save", "Save", id="form.save", priority=True),
    ]

    def __init__(self, strings: Strings) -> None:
        super().__init__()
        self.t = strings
        relabel(self, {"form.cancel": strings("form.cancel"), "form.save": strings("form.save")})

    def compose(self) -> ComposeResult:
        t = self.t
        with VerticalScroll(id="plan-form", classes="modal-box"):
            yield Label(Text(t("inspection.new_plan")), classes="form-title")
            yield Label(t("inspection.enterprise"))
            yield Input(id="p-enterprise", placeholder=t("inspection.enterprise_hint"))
            yield Label(t("inspection.window"))
            with Horizontal(classes="form-dates"):
                yield Input(id="p-first", placeholder="2026-12-07")
                yield Input(id="p-last", placeholder="2026-12-11")
            yield Label(t("inspection.items_hint"))
            yield TextArea(id="p-items")
            yield Label("", id="p-error")
            with Horizontal(classes="form-buttons"):
                yield Button(t("form.save"), id="p-save", variant="primary")
                yield Button(t("form.cancel"), id="p-cancel")

    def on_mount(self) -> None:
        self.query_one("#p-enterprise", Input).focus()

    def fields(self) -> dict[str, Any] | str:
        """The plan's fields, or why they cannot be saved yet."""
        ent = self.query_one("#p-enterprise", Input).value.strip()
        if not ent:
            return self.t("inspection.need_enterprise")
        try:
            first = date.fromisoformat(self.query_one("#p-first", Input).value.strip())
            last = date.fromisoformat(self.query_one("#p-last", Input).value.strip())
        except ValueError:
            return self.t("inspection.bad_dates")
        items: list[tuple[str, str]] = []
        for line in self.query_one("#p-items", TextArea).text.splitlines():
            if not line.strip():
                continue
            dept, sep, text = line.partition(":")
            if not sep or not text.strip():
                return self.t("inspection.bad_item", line=line.strip())
            items.append((dept.strip(), text.strip()))
        if not items:
            return self.t("inspection.need_items")
        return {
            "enterprise": ent,
            "first": first,
            "last": last,
            "items": items,
            "departments": sorted({d for d, _ in items}),
        }

    def action_save(self) -> None:
        f = self.fields()
        if isinstance(f, str):
            self.query_one("#p-error", Label).update(Text(f, style="bold red"))
            return
        self.dismiss(f)

    @on(Button.Pressed, "#p-save")
    def _save(self) -> None:
        self.action_save()

    @on(Button.Pressed, "#p-cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
