"""The dispatch modal: who should take this case, best first, with the reasons shown.

The ranking is a pure function (tested without a screen); its order is store/dispatch_order.py's,
the one rule the what-if replay follows too. Competence first: partner teams that take the
category (shared bikes: the bike operators), then free officers of the category's case group,
then of the case's enforcement circle, then the fewest open cases in hand, then the shortest
grid distance; busy officers follow with their status, squads last.
Enter takes the top one; typing filters.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from tafang.console.i18n import Strings
from tafang.store.config import Deployment
from tafang.store.dispatch_order import FAR, is_candidate, partners_for
from tafang.store.dispatch_order import fit as order_fit
from tafang.store.views import CaseView, OfficerView
from tafang.widgets.text import fit, safe, width_of
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
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


def officer_choice(
    o: OfficerView, case: CaseView, d: Deployment, t: Strings, group_names: dict[str, str]
) -> Choice:
    """One officer as a candidate: competence (the case group) first, then circle, load,
    distance; the reasons say each of these, with the officer's agency and status."""
    f = order_fit(o, case.category, case.grid, d)
    same_group, same_circle, dist = f.same_group, f.same_circle, f.distance
    reasons = [
        t.known(f"agency.{o.agency}", o.agency),
        t(f"officer.{o.status}"),
        ("✓ " if same_group else "") + t("assign.group", group=group_names.get(o.group, o.group)),
    ]
    if same_circle:
        reasons.append(t("assign.same_circle", circle=o.circle))
    reasons.append(t("assign.load", n=o.load))
    if dist != FAR:
        reasons.append(t("assign.distance", n=dist))
    return Choice(o.code, "officer", o.name, tuple(reasons), f.order)


def rank(
    case: CaseView, officers: Sequence[OfficerView], d: Deployment, t: Strings
) -> list[Choice]:
    """Candidates for `case`, best first; each carries the reasons a dispatcher reads.

    Partner teams that take the category lead (the config gives them those cases; one named
    in the report first), then officers, free before busy, each by case group, circle, load and
    distance; whole squads last."""
    group_names = {g.code: t.pick(g.name, g.name_en) for g in d.case_groups}
    out = [officer_choice(o, case, d, t, group_names) for o in officers if is_candidate(o)]
    said = f"{case.display_title}".lower()
    for p in partners_for(d, case.category):
        names = (p.name[:2], p.code, p.name_en.lower() or p.code)
        named = any(n in said for n in names)
        reasons = (t("assign.partner"), t("assign.partner_takes"))
        out.append(Choice(p.code, "partner", t.pick(p.name, p.name_en), reasons, (0, -named)))
    for i, s in enumerate(d.squads):
        name = t.pick(s.name, s.name_en)
        out.append(Choice(s.code, "squad", name, (t("assign.squad"),), (2, i)))
    out.sort(key=lambda c: (c.rank, c.code))
    return out


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
        cells = name_width(self.choices)  # one width while filtering: columns stay put
        return [Option(choice_text(c, cells), id=c.code) for c in self.shown]

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
