"""The dispatch modal: who should take this case, best first, with the reasons shown.

The ranking is a pure function (tested without a screen): available officers of the case's
enforcement circle first, then those of the category's case group, then the fewest open
cases in hand, then the shortest grid distance. Partner teams that take the category and
whole squads follow. Enter takes the top one; typing filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from tafang.console.i18n import Strings
from tafang.store.config import Deployment
from tafang.store.views import CaseView, OfficerView
from tafang.widgets.text import fit, safe
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

FAR = 999


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


def grid_distance(d: Deployment, case_grid: str | None, officer: OfficerView) -> int:
    """Cells between the case and the officer: from the officer's current cell when known,
    else from the nearest cell of the officer's home circle (Manhattan on the map)."""
    g = d.grids_by_code.get(case_grid or "")
    if g is None:
        return FAR
    here = d.grids_by_code.get(officer.grid or "")
    cells = [here] if here is not None else [c for c in d.tower.grids if c.circle == officer.circle]
    if not cells:
        return FAR
    return min(abs(c.row - g.row) + abs(c.col - g.col) for c in cells)


def rank(
    case: CaseView, officers: Sequence[OfficerView], d: Deployment, t: Strings
) -> list[Choice]:
    """Candidates for `case`, best first; each carries the reasons a dispatcher reads."""
    grid = d.grids_by_code.get(case.grid or "")
    circle = grid.circle if grid is not None else None
    cat = d.categories_by_code.get(case.category or "")
    group = cat.group if cat is not None else None
    group_names = {g.code: t.pick(g.name, g.name_en) for g in d.case_groups}
    out: list[Choice] = []
    for o in officers:
        if o.status != "available":
            continue
        same_circle = circle is not None and o.circle == circle
        same_group = group is not None and o.group == group
        dist = grid_distance(d, case.grid, o)
        reasons: list[str] = []
        if same_circle:
            reasons.append(t("assign.same_circle", circle=o.circle))
        reasons.append(t("assign.group", group=group_names.get(o.group, o.group)))
        reasons.append(t("assign.load", n=o.load))
        if dist != FAR:
            reasons.append(t("assign.distance", n=dist))
        out.append(
            Choice(
                code=o.code,
                kind="officer",
                name=o.name,
                reasons=tuple(reasons),
                rank=(0, -int(same_circle), -int(same_group), o.load, dist),
            )
        )
    for p in d.partners:
        if case.category and case.category in p.categories:
            out.append(
                Choice(
                    p.code,
                    "partner",
                    t.pick(p.name, p.name_en),
                    (t("assign.partner"),),
                    (1, 0, 0, 0, 0),
                )
            )
    for i, s in enumerate(d.squads):
        out.append(
            Choice(
                s.code, "squad", t.pick(s.name, s.name_en), (t("assign.squad"),), (2, 0, 0, 0, i)
            )
        )
    out.sort(key=lambda c: (c.rank, c.code))
    return out


def choice_text(c: Choice) -> Text:
    """One line of the list: code, name, reasons; literal text throughout."""
    line = Text()
    line.append(f"{c.code:<9}", style="bold")
    line.append(fit(c.name, 12))
    line.append(" ")
    line.append(" · ".join(c.reasons), style="dim")
    return line


class AssignScreen(ModalScreen[str | None]):
    """Pick who takes the case; dismisses with the officer / partner / squad code or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="assign.cancel"),
        Binding("down", "move(1)", show=False, priority=True),
        Binding("up", "move(-1)", show=False, priority=True),
    ]

    def __init__(self, case: CaseView, choices: list[Choice], strings: Strings) -> None:
        super().__init__()
        self.case = case
        self.choices = choices
        self.t = strings
        self.shown: list[Choice] = list(choices)

    def compose(self) -> ComposeResult:
        with Vertical(id="assign-box", classes="modal-box"):
            yield Label(
                Text(self.t("assign.title", id=self.case.id, title=safe(self.case.display_title))),
                id="assign-title",
            )
            yield Input(placeholder=self.t("assign.filter"), id="assign-filter")
            yield OptionList(*self._options(), id="assign-list")

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        if self.shown:
            ol.highlighted = 0
        self.query_one(Input).focus()

    def _options(self) -> list[Option]:
        if not self.shown:
            return [Option(Text(self.t("assign.none")), disabled=True)]
        return [Option(choice_text(c), id=c.code) for c in self.shown]

    @on(Input.Changed, "#assign-filter")
    def _filter(self, event: Input.Changed) -> None:
        words = event.value.lower().split()
        self.shown = [c for c in self.choices if all(w in c.search_text for w in words)]
        ol = self.query_one(OptionList)
        ol.clear_options()
        ol.add_options(self._options())
        if self.shown:
            ol.highlighted = 0

    def action_move(self, step: int) -> None:
        ol = self.query_one(OptionList)
        if not self.shown:
            return
        cur = ol.highlighted if ol.highlighted is not None else 0
        ol.highlighted = max(0, min(len(self.shown) - 1, cur + step))

    @on(Input.Submitted, "#assign-filter")
    def _take(self, _event: Input.Submitted) -> None:
        ol = self.query_one(OptionList)
        if not self.shown:
            return
        i = ol.highlighted if ol.highlighted is not None else 0
        self.dismiss(self.shown[i].code)

    @on(OptionList.OptionSelected, "#assign-list")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
