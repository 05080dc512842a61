"""The wall's figures: the day's counts in big digits and the 1-3-5 table by stage.

Plain data in (`DayFigures`, `StageRow`), words handed in by the caller; no keys, no focus:
a wall display is read from across the room, never driven.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from rich.text import Text
from tafang.widgets.text import fit
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widget import Widget
from textual.widgets import Digits, Label

KPIS = ("received", "closed", "open", "at_risk", "overdue", "rate")
"""The big figures, left to right (each names its word in the words mapping)."""


@dataclass(frozen=True, slots=True)
class DayFigures:
    """Today so far (local day) and now: what the counts row shows."""

    received: int = 0
    closed: int = 0
    open: int = 0
    at_risk: int = 0
    overdue: int = 0
    met: int = 0  # 1-3-5 stages done on time today
    due: int = 0  # 1-3-5 stages that came due today

    @property
    def rate(self) -> int | None:
        """The 1-3-5 rate in whole percent (None: nothing came due yet)."""
        return round(100 * self.met / self.due) if self.due else None


@dataclass(frozen=True, slots=True)
class StageRow:
    """One SLA stage: open cases whose clock it is, at risk and overdue, today's on-time rate."""

    name: str  # the stage's name, shown
    open: int
    at_risk: int
    overdue: int
    met: int | None = None  # None: no 1-3-5 rate for this stage (resolve)
    due: int | None = None

    @property
    def rate_text(self) -> str:
        if self.met is None or not self.due:
            return "—"
        return f"{round(100 * self.met / self.due)}% ({self.met}/{self.due})"


def _figure(value: int | None) -> str:
    return "-" if value is None else str(value)


class DayCounts(Widget):
    """A row of big figures with their words; `set_figures` repaints only what changed."""

    def __init__(self, words: Mapping[str, str], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.words = words
        self.figures = DayFigures()

    def compose(self) -> ComposeResult:
        with Horizontal(classes="kpi-row"):
            for key in KPIS:
                with Vertical(classes=f"kpi kpi-{key}"):
                    yield Label(self.words.get(key, key), classes="kpi-word")
                    yield Digits(self._value(key), id=f"kpi-{key}")

    def _value(self, key: str) -> str:
        f = self.figures
        return _figure(f.rate) if key == "rate" else str(getattr(f, key))

    def set_figures(self, figures: DayFigures) -> None:
        """Show new figures; a number that did not change is not touched."""
        old, self.figures = self.figures, figures
        if not self.is_mounted:
            return
        for key in KPIS:
            if getattr(old, key) != getattr(figures, key):
                self.query_one(f"#kpi-{key}", Digits).update(self._value(key))
        for key in ("at_risk", "overdue"):
            self.query_one(f".kpi-{key}").set_class(getattr(figures, key) > 0, "-alert")


class StageTable(Widget):
    """Open, at risk and overdue by stage, with today's on-time rate: a few lines of text."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "stage-table--head",
        "stage-table--at-risk",
        "stage-table--overdue",
    }
    DEFAULT_CSS = """
    StageTable { height: auto; text-wrap: nowrap; text-overflow: ellipsis; }
    StageTable > .stage-table--head { text-style: bold; color: $text-muted; }
    StageTable > .stage-table--at-risk { color: $text-warning; text-style: bold; }
    StageTable > .stage-table--overdue { color: $text-error; text-style: bold; }
    """

    def __init__(self, words: Mapping[str, str], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.words = words
        self.rows: tuple[StageRow, ...] = ()

    def set_rows(self, rows: Sequence[StageRow]) -> None:
        if tuple(rows) != self.rows:
            self.rows = tuple(rows)
            self.refresh(layout=True)  # its height is its number of rows

    def render(self) -> Text:
        w = self.words
        style = self.get_component_rich_style
        out = Text(no_wrap=True, overflow="ellipsis")
        head = (
            fit(w.get("stage", "stage"), 10)
            + fit(w.get("open", "open"), 8, "right")
            + fit(w.get("at_risk", "at risk"), 8, "right")
            + fit(w.get("overdue", "overdue"), 8, "right")
            + "  "
            + w.get("on_time", "on time")
        )
        out.append(head + "\n", style=style("stage-table--head"))
        for r in self.rows:
            out.append(fit(r.name, 10) + fit(str(r.open), 8, "right"))
            out.append(
                fit(str(r.at_risk), 8, "right"),
                style=style("stage-table--at-risk") if r.at_risk else "",
            )
            out.append(
                fit(str(r.overdue), 8, "right"),
                style=style("stage-table--overdue") if r.overdue else "",
            )
            out.append("  " + r.rate_text + "\n")
        out.rstrip()
        return out
