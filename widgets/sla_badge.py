"""SLA countdowns: the one place that decides "0:59", "-1:23" and green / amber / red.

The queue, the map and the case screen must agree on when a clock turns amber or red, so the
rule lives here as pure functions; `SlaBadge` shows one clock for a case detail view.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from rich.text import Text
from tafang.widgets.words import Words
from textual.widget import Widget

SlaState = Literal["none", "ok", "at_risk", "breached"]

DEFAULT_AT_RISK = 0.8


def sla_state(
    due: datetime | None,
    budget_seconds: float | None,
    now: datetime,
    at_risk: float = DEFAULT_AT_RISK,
) -> SlaState:
    """State of a running clock: breached from the deadline on (as the escalation sweep sees
    it), at risk once `at_risk` of the budget has elapsed, ok before; "none" if no clock."""
    if due is None:
        return "none"
    remaining = (due - now).total_seconds()
    if remaining <= 0:
        return "breached"
    if (
        budget_seconds
        and budget_seconds > 0
        and (budget_seconds - remaining) >= (at_risk * budget_seconds)
    ):
        return "at_risk"
    return "ok"


def countdown(due: datetime | None, now: datetime) -> str:
    """Time left as "0:59", "1:02:03", "13h05m", "3d04h"; overdue with a minus: "-1:23".

    Whole seconds, truncated toward the deadline, so a 60 s clock reads "1:00" at receipt,
    "0:59" a moment later and "0:00" (already red) at the deadline itself. At most 8 cells.
    """
    if due is None:
        return ""
    left = (due - now).total_seconds()
    s = int(abs(left))
    sign = "-" if left < 0 and s > 0 else ""  # less than a second over still reads "0:00"
    if s < 3600:
        body = f"{s // 60}:{s % 60:02d}"
    elif s < 36000:
        body = f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    elif s < 86400:
        body = f"{s // 3600}h{s % 3600 // 60:02d}m"
    else:
        body = f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return sign + body


class SlaBadge(Widget):
    """One clock of one case, e.g. "响应 0:42", coloured by its state; `tick(now)` each second.

    Clock names come in `words`, already in the UI language.
    """

    DEFAULT_CSS = """
    SlaBadge { width: auto; height: 1; }
    SlaBadge.-ok { color: $success; }
    SlaBadge.-at_risk { color: $warning; text-style: bold; }
    SlaBadge.-breached { color: $text; background: $error; text-style: bold; }
    SlaBadge.-none { color: $text-muted; }
    """

    def __init__(
        self,
        *,
        words: Words | None = None,
        at_risk: float = DEFAULT_AT_RISK,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.words = words or Words()
        self.at_risk = at_risk
        self._clock: str | None = None
        self._due: datetime | None = None
        self._budget: float | None = None
        self._text = ""
        self.state: SlaState = "none"

    def set_clock(
        self, clock: str | None, due: datetime | None, budget_seconds: float | None, now: datetime
    ) -> None:
        """Show another clock (or none)."""
        self._clock, self._due, self._budget = clock, due, budget_seconds
        self.tick(now)

    def tick(self, now: datetime) -> None:
        """Recompute the countdown; repaints only when the text or the state changed."""
        state = sla_state(self._due, self._budget, now, self.at_risk)
        text = f"{self.words.clock(self._clock)} {countdown(self._due, now)}".strip()
        if state != self.state:
            self.remove_class(f"-{self.state}")
            self.state = state
        self.add_class(f"-{state}")
        if text != self._text:
            self._text = text
            self.refresh(layout=True)

    def render(self) -> Text:
        return Text(self._text or "—", no_wrap=True, end="")
