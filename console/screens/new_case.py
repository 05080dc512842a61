"""The phone-report form (12345 hotline and walk-ins): typed by a dispatcher → `store.create`."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from tafang.console.i18n import Strings
from tafang.console.screens.confirm import ConfirmScreen, relabel
from tafang.store.config import PRIORITIES, Deployment
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, TextArea


class NewCaseScreen(ModalScreen[dict[str, Any] | None]):
    """Dismisses with the fields for `Store.create`, or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
        Binding("ctrl+s", "save", "Save", id="form.save", priority=True),
    ]

    def __init__(self, d: Deployment, strings: Strings) -> None:
        super().__init__()
        self.d = d
        self.t = strings
        relabel(self, {"form.cancel": strings("form.cancel"), "form.save": strings("form.save")})

    def compose(self) -> ComposeResult:
        t = self.t
        cats = [(f"{c.code} {t.pick(c.name, c.name_en)}", c.code) for c in self.d.categories]
        grids = [(f"{g.label} {g.community}", g.code) for g in self.d.tower.grids]
        prios = [(t(f"priority.{p}"), p) for p in PRIORITIES]
        with VerticalScroll(id="form-box", classes="modal-box"):
            yield Label(Text(t("form.title")), classes="form-title")
            yield Label(t("form.case_title"))
            yield Input(id="f-title")
            yield Label(t("form.description"))
            yield TextArea(id="f-description")
            yield Label(t("form.category"))
            yield Select(cats, id="f-category", prompt="—")
            yield Label(t("form.grid"))
            yield Select(grids, id="f-grid", prompt="—")
            yield Input(id="f-grid-label", placeholder="N3-07")
            yield Label(t("form.priority"))
            yield Select(prios, id="f-priority", value="normal", allow_blank=False)
            yield Label(t("form.location"))
            yield Input(id="f-location")
            yield Label(t("form.reporter"))
            yield Input(id="f-reporter")
            yield Label("", id="f-error")
            with Horizontal(classes="form-buttons"):
                yield Button(t("form.save"), id="f-save", variant="primary")
                yield Button(t("form.cancel"), id="f-cancel")

    def on_mount(self) -> None:
        self.query_one("#f-title", Input).focus()

    def fields(self) -> dict[str, Any] | str:
        """The case fields, or the reason they cannot be saved yet."""
        title = self.query_one("#f-title", Input).value.strip()
        desc = self.query_one("#f-description", TextArea).text.strip()
        if not title and not desc:
            return self.t("form.need_title")
        out: dict[str, Any] = {
            "source": "hotline",
            "title": title,
            "description": desc,
            "location": self.query_one("#f-location", Input).value.strip(),
            "reporter": self.query_one("#f-reporter", Input).value.strip(),
            "priority": self.query_one("#f-priority", Select).value,
        }
        cat = self.query_one("#f-category", Select).value
        if isinstance(cat, str):
            out["category"] = cat
        label = self.query_one("#f-grid-label", Input).value.strip()
        grid = self.query_one("#f-grid", Select).value
        if label:
            g = self.d.grids_by_label.get(label.upper()) or self.d.grids_by_code.get(label)
            if g is None:
                return self.t("form.bad_grid", grid=label)
            out["grid"] = g.code
        elif isinstance(grid, str):
            out["grid"] = grid
        return out

    def action_save(self) -> None:
        f = self.fields()
        if isinstance(f, str):
            self.query_one("#f-error", Label).update(Text(f, style="bold red"))
            return
        self.dismiss(f)

    @on(Button.Pressed, "#f-save")
    def _save(self) -> None:
        self.action_save()

    def touched(self) -> bool:
        """Has anything been typed or chosen? Then Esc asks before throwing it away."""
        typed = any(
            self.query_one(f"#{i}", Input).value.strip()
            for i in ("f-title", "f-grid-label", "f-location", "f-reporter")
        )
        chosen = any(
            isinstance(self.query_one(f"#{i}", Select).value, str) for i in ("f-category", "f-grid")
        )
        return typed or chosen or bool(self.query_one("#f-description", TextArea).text.strip())

    @on(Button.Pressed, "#f-cancel")
    def action_cancel(self) -> None:
        if not self.touched():
            self.dismiss(None)
            return

        def answer(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        t = self.t
        words = (t("confirm.discard"), t("confirm.hint"), t("confirm.yes"), t("confirm.no"))
        self.app.push_screen(ConfirmScreen(*words), answer)
