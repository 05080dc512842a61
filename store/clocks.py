"""SLA clock arithmetic the store needs to keep each case's deadlines in its columns.

Which clocks run in which state, how hold pauses them and how return / rework / reopen
restart them lives here, so that every writer (the lifecycle, intake, the sweep) agrees.
Working-hour calendars for resolve limits plug in through `ClockRules.resolve_deadline`
(`sla.policy` supplies the holiday-aware one); the default counts plain time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal

from tafang.store.config import Deployment, ResolveLimit

STAGES = ("respond", "dispatch", "arrive")
CLOCKS = (*STAGES, "resolve")  # every RUNNING tuple lists its clocks in this order

# Clocks that run in each state; a clock that stops running was met (or the case left).
RUNNING: dict[str, tuple[str, ...]] = {
    "new": ("respond", "dispatch", "arrive", "resolve"),
    "acknowledged": ("dispatch", "arrive", "resolve"),
    "dispatched": ("arrive", "resolve"),
    "on_scene": ("resolve",),
    "handled": (),
    "held": (),
    "closed": (),
    "void": (),
    "merged": (),
}
DUE_COLUMNS = tuple(f"{c}_due" for c in CLOCKS)
_DUE = dict(zip(CLOCKS, DUE_COLUMNS, strict=True))
MAX_LEVEL = 4

Light = Literal["none", "ok", "at_risk", "breached"]


@dataclass(frozen=True, slots=True)
class ClockState:
    """What a countdown shows: the clock that runs out first, and how close it is."""

    clock: str | None  # respond | dispatch | arrive | resolve; None = no clock runs
    due: datetime | None
    budget_seconds: float
    remaining_seconds: float  # negative once breached; frozen while held
    state: Light  # "none" when no clock runs
    paused: bool = False  # held: the clock stands still
    at: datetime | None = None  # when the clock was read: `now`, or the hold while held


def at_risk_from(due: datetime, budget_seconds: float, at_risk: float) -> datetime:
    """The instant a clock turns amber: once the `at_risk` share of its budget has run."""
    return due - timedelta(seconds=budget_seconds * (1 - at_risk))


def light_at(
    due: datetime | None, budget_seconds: float | None, at_risk: float, at: datetime
) -> Light:
    """The SLA light, the one rule: breached from the deadline on (as the escalation sweep
    sees it), at risk from `at_risk_from`, ok before; "none" when no clock runs. Told in
    instants, so the console's schedule of light changes and this rule never disagree."""
    if due is None:
        return "none"
    if at >= due:
        return "breached"
    if budget_seconds and at >= at_risk_from(due, budget_seconds, at_risk):
        return "at_risk"
    return "ok"


class ClockRules:
    """Deadlines for one deployment. Subclass and override `resolve_deadline` for calendars."""

    def __init__(self, deployment: Deployment) -> None:
        self.d = deployment
        self.interval = timedelta(seconds=deployment.sla.escalation_interval)
        self._budgets: dict[tuple[str | None, str], dict[str, int]] = {}
        self._steps_cache: dict[tuple[str | None, str], list[tuple[str, timedelta]]] = {}

    # Budgets ---------------------------------------------------------------------------
    def budgets(self, category: str | None, priority: str) -> dict[str, int]:
        """Seconds from receipt for respond / dispatch / arrive: category > priority > default.

        Cached per (category, priority) — intake asks once a record; treat it as read-only.
        """
        key = (category, priority)
        cached = self._budgets.get(key)
        if cached is None:
            cached = self._budgets[key] = self._layered_budgets(category, priority)
        return cached

    def _layered_budgets(self, category: str | None, priority: str) -> dict[str, int]:
        sla = self.d.sla
        out = {"respond": sla.respond, "dispatch": sla.dispatch, "arrive": sla.arrive}
        layers = [sla.priorities.get(priority)]
        cat = self.d.categories_by_code.get(category or "")
        if cat is not None:
            layers.append(cat.sla)
        for layer in layers:
            if layer is None:
                continue
            for k in STAGES:
                v = getattr(layer, k)
                if v is not None:
                    out[k] = v
        # A later stage can never be due before an earlier one.
        out["dispatch"] = max(out["dispatch"], out["respond"])
        out["arrive"] = max(out["arrive"], out["dispatch"])
        return out

    def resolve_limit(self, category: str | None) -> ResolveLimit:
        cat = self.d.categories_by_code.get(category or "")
        return cat.resolve if cat is not None and cat.resolve else self.d.sla.resolve

    def resolve_deadline(self, start: datetime, limit: ResolveLimit) -> datetime:
        """Plain-time reading of a limit; working hours/days count as calendar time here."""
        unit = limit.unit.removeprefix("working_")
        seconds = {"minutes": 60, "hours": 3600, "days": 86400}[unit]
        return start + timedelta(seconds=limit.amount * seconds)

    # Deadlines for the lifecycle ---------------------------------------------------------
    def start(self, case: Mapping[str, Any]) -> dict[str, Any]:
        """Deadlines of a new case, counted from receipt."""
        t0: datetime = case["received_at"]
        category = case.get("category")
        out: dict[str, Any] = {
            col: t0 + td for col, td in self._steps(category, case.get("priority") or "normal")
        }
        out["resolve_due"] = self.resolve_deadline(t0, self.resolve_limit(category))
        if (case.get("status") or "new") == "new" and not case.get("escalation_level"):
            out["next_check_at"] = min(out.values())  # all four clocks run, none escalated
        else:
            out["next_check_at"] = self.next_check({**case, **out})
        return out

    def _steps(self, category: str | None, priority: str) -> list[tuple[str, timedelta]]:
        steps = self._steps_cache.get((category, priority))
        if steps is None:
            b = self.budgets(category, priority)
            steps = [(f"{k}_due", timedelta(seconds=v)) for k, v in b.items()]
            self._steps_cache[(category, priority)] = steps
        return steps

    def after(self, action: str, case: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """Deadline changes after `action` moved `case` (already in its new state)."""
        out: dict[str, Any] = {}
        b = self.budgets(case.get("category"), case.get("priority") or "normal")
        if action == "resume" and case.get("held_at") is not None:
            paused = now - case["held_at"]
            for col in (*DUE_COLUMNS, "escalated_at"):
                if case.get(col) is not None:
                    out[col] = case[col] + paused  # the interval counts running time only
        elif action in ("return", "reopen"):
            # Back with the dispatcher: the hand-over and arrival clocks start again.
            out["dispatch_due"] = now + timedelta(seconds=b["dispatch"] - b["respond"])
            out["arrive_due"] = now + timedelta(seconds=b["arrive"] - b["respond"])
            if action == "reopen":
                out["resolve_due"] = self.resolve_deadline(
                    now, self.resolve_limit(case.get("category"))
                )
        elif action == "rework":
            out["arrive_due"] = now + timedelta(seconds=b["arrive"] - b["dispatch"])
        elif action == "recategorise":
            out.update({k: v for k, v in self.start(case).items() if k != "next_check_at"})
        out["next_check_at"] = self.next_check({**case, **out})
        return out

    def next_check(self, case: Mapping[str, Any]) -> datetime | None:
        """When the escalation sweep must look at the case next, or None."""
        return min((t for _clock, t in self.escalation_due(case)), default=None)

    def escalation_due(self, case: Mapping[str, Any]) -> Iterator[tuple[str, datetime]]:
        """Per running clock, when it next raises the case one level (None past the top).

        A running clock not yet escalated for is due at its deadline; once the case went up
        for a breach, the next level is due one escalation interval after the last one.
        `next_check` and the sweep's planner both count from here, so they always agree.
        """
        if (case.get("escalation_level") or 0) >= MAX_LEVEL:
            return  # at the command centre: nothing further to raise it to
        last: datetime | None = case.get("escalated_at")
        for clock, due in running_dues(case, case.get("status") or "new"):
            yield clock, due if last is None or due > last else last + self.interval

    # The light ---------------------------------------------------------------------------
    def clock_state(self, case: Mapping[str, Any] | object, now: datetime) -> ClockState:
        """The clock that runs out first and its light (`light_at`, from the configured
        at-risk share). Held cases show their clocks frozen at the hold. `case` is a mapping
        of case columns or a view with them as attributes (the console's 10k `CaseView`s
        are read as they are, not copied into dicts)."""
        get: Callable[[str], Any] = (
            case.get if isinstance(case, Mapping) else partial(getattr, case)
        )
        status = get("status")
        paused = status == "held"
        at = now
        if paused:
            status = get("hold_from") or "acknowledged"
            at = get("held_at") or now
        clock: str | None = None
        due: datetime | None = None
        for c in RUNNING.get(status, ()):  # the earliest deadline; on a tie the earlier clock
            d = get(_DUE[c])
            if d is not None and (due is None or d < due):
                clock, due = c, d
        if clock is None or due is None:
            return ClockState(None, None, 0.0, 0.0, "none", paused, at)
        b = self.budgets(get("category"), get("priority") or "normal")
        budget = clock_budget(
            clock,
            due,
            float(b.get(clock, 0)),
            get("received_at"),
            get("acknowledged_at"),
            get("dispatched_at"),
        )
        remaining = (due - at).total_seconds()
        state = light_at(due, budget, self.d.sla.at_risk, at)
        return ClockState(clock, due, budget, remaining, state, paused, at)


def running_dues(case: Mapping[str, Any], status: str) -> Iterator[tuple[str, datetime]]:
    """(clock, deadline) of each clock running in `status` that has a deadline, in CLOCKS order."""
    return _dues(case.get, status)


def _dues(get: Callable[[str], Any], status: str) -> Iterator[tuple[str, datetime]]:
    for clock in RUNNING.get(status, ()):
        due = get(_DUE[clock])
        if due is not None:
            yield clock, due


def stage_start(
    clock: str,
    received_at: datetime,
    acknowledged_at: datetime | None,
    dispatched_at: datetime | None,
) -> datetime:
    """When the stage a 1-3-5 clock measures began: a clock restarted by return or rework
    counts its share from the restart, not from receipt."""
    if clock == "dispatch":
        return acknowledged_at or received_at
    if clock == "arrive":
        return dispatched_at or received_at
    return received_at


def clock_budget(
    clock: str,
    due: datetime,
    budget: float,
    received_at: datetime,
    acknowledged_at: datetime | None,
    dispatched_at: datetime | None,
) -> float:
    """Seconds a running clock had: its configured budget, but no more than its stage has
    run; resolve limits (working time) count from receipt."""
    if clock == "resolve":
        return max((due - received_at).total_seconds(), 1.0)
    start = stage_start(clock, received_at, acknowledged_at, dispatched_at)
    return max(min(budget, (due - start).total_seconds()), 1.0)
