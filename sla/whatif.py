"""What-if replay: a period's real arrivals re-run with another roster or shift plan.

The cases received in the period (store/arrivals.py) arrive again at their real times. Each
is acknowledged and handed over by the dispatcher, and travelled to and handled by whoever
the dispatch order (store/dispatch_order.py, the console's ranking) puts first among the
officers the roster has on duty then (store/duty.py `takes_cases`; store/roster.py shifts).
The deadlines and the escalations are the SLA policy's (sla/policy.py `Policy.start`,
`plan_escalation`, on the working calendar). The 1-3-5 figures use store/assessment.py's
definitions (due = the deadline passed by the period's end or the stage was reached; met =
reached by the deadline), for what happened and for the replay alike.

The model of time (`fit`), from the period's own record, per case group:
- respond, decide (acknowledged → dispatched), travel (dispatched → arrived) and handle
  (arrived → handled) are one real case's times, drawn together (they go together: a slow
  night is slow at every stage) with a seeded random draw per case; the same case draws the
  same times under every roster (common random numbers: rosters compare, noise does not);
- travel moves with grid distance only when the record supports it (least squares of travel
  on the assignee's distance, used when t ≥ 2), else the distance is ignored;
- an officer carries at most `capacity` cases at once, the most one officer held in the
  record; a case sent to an officer who is full waits for the first to finish;
- partner teams (shared bikes) have no such limit; with nobody on duty the case is sent to a
  squad and nobody arrives in the period (`unserved`).
The dispatcher's side (respond, decide) does not depend on the roster in this model.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tafang.sla.policy import Policy
from tafang.sla.whatif_model import Model, Sample, fit
from tafang.sla.whatif_roster import Roster
from tafang.store.clocks import MAX_LEVEL
from tafang.store.dispatch_order import fit as order_fit
from tafang.store.dispatch_order import grid_distance, is_candidate, partners_for

CLOCK_REACHED = (
    ("respond", "respond_due", "acknowledged_at"),
    ("dispatch", "dispatch_due", "dispatched_at"),
    ("arrive", "arrive_due", "arrived_at"),
    ("handled_on_time", "resolve_due", "handled_at"),
)
TIMES = ("acknowledged_at", "dispatched_at", "arrived_at", "handled_at")
_STATUS_AFTER = ("acknowledged", "dispatched", "on_scene", "handled")

__all__ = ["Figures", "Model", "Outcome", "Sample", "figures", "fit", "replay", "what_happened"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One case's stage times (None: not reached in the period) and who took it."""

    id: int
    received_at: datetime
    category: str | None
    priority: str
    times: tuple[datetime | None, ...]  # TIMES order
    assignee: str | None = None


@dataclass
class Figures:
    """1-3-5 and 按期处置 as met/due, breaches, escalations: one column of the report."""

    cases: int = 0
    met: dict[str, int] = field(default_factory=dict)
    due: dict[str, int] = field(default_factory=dict)
    breached_cases: int = 0
    escalated_cases: int = 0
    escalation_steps: int = 0
    top_level_cases: int = 0  # raised to the command centre (level 4)
    unserved: int = 0

    def rate(self, clock: str) -> float | None:
        due = self.due.get(clock, 0)
        return self.met.get(clock, 0) / due if due else None


# ---- what happened -------------------------------------------------------------------------
def what_happened(rows: Iterable[Mapping[str, Any]], end: datetime) -> list[Outcome]:
    """The record's cases as outcomes (stage times at or after `end` are not reached)."""
    return [
        Outcome(
            r["id"],
            r["received_at"],
            r["category"],
            r["priority"] or "normal",
            tuple(r[t] if r[t] is not None and r[t] < end else None for t in TIMES),
            r["assignee"],
        )
        for r in rows
    ]


# ---- the replay ----------------------------------------------------------------------------
@dataclass
class _Officer:
    """An officer as the dispatch order reads one, kept up to date by the replay."""

    code: str
    group: str
    circle: str
    grid: str | None = None
    status: str = "available"
    load: int = 0
    duty: str = "off_duty"
    open: list[tuple[datetime, datetime]] = field(default_factory=list)  # (arrives, handled)


def replay(
    rows: Sequence[Mapping[str, Any]],
    roster: Roster,
    model: Model,
    seed: int,
    end: datetime,
) -> list[Outcome]:
    """The period's arrivals under `roster`: deterministic for a seed."""
    d = roster.d
    staff = {o.code: _Officer(o.code, o.group, o.circle) for o in roster.officers()}
    drawn = [(r, model.draw(r, random.Random(f"{seed}/{r['id']}"))) for r in rows]
    # The dispatcher's side does not depend on the roster: hand-overs happen in this order.
    drawn.sort(key=lambda x: (x[0]["received_at"] + x[1].respond + x[1].decide, x[0]["id"]))
    out = []
    for r, s in drawn:
        ack = r["received_at"] + s.respond
        sent = ack + s.decide
        duties = roster.duties_at(sent)
        for o in staff.values():
            _refresh(o, sent, model.capacity, duties.get(o.code, "off_duty"))
        arrives, who = _send(r, s, sent, staff, model, d)
        handled = arrives + s.handle if arrives is not None else None
        times = tuple(
            t if t is not None and t < end else None for t in (ack, sent, arrives, handled)
        )
        out.append(
            Outcome(r["id"], r["received_at"], r["category"], r["priority"] or "normal", times, who)
        )
    out.sort(key=lambda o: o.id)
    return out


def _refresh(o: _Officer, now: datetime, capacity: int, duty: str) -> None:
    """The officer's duty, load and status at `now` (cases handled by then are done)."""
    o.open = [(a, h) for a, h in o.open if h > now]
    o.load = len(o.open)
    o.duty = duty
    if o.load < capacity:
        o.status = "available"
    else:
        o.status = "en_route" if any(a > now for a, _h in o.open) else "on_scene"


def _send(
    r: Mapping[str, Any],
    s: Sample,
    sent: datetime,
    staff: dict[str, _Officer],
    model: Model,
    d: Any,
) -> tuple[datetime | None, str | None]:
    """Who takes the case and when they arrive (None: nobody on duty, a squad holds it)."""
    partners = partners_for(d, r["category"])
    if partners:
        return sent + s.travel, partners[0].code
    cands = [o for o in staff.values() if is_candidate(o)]
    if not cands:
        return None, None
    best = min(cands, key=lambda o: (order_fit(o, r["category"], r["grid"], d).order, o.code))
    travel = model.travel(s, grid_distance(d, r["grid"], best))
    start = sent
    if best.load >= model.capacity:  # full: the first of its cases to finish frees it
        start = max(sent, sorted(h for _a, h in best.open)[best.load - model.capacity])
    arrives = start + travel
    best.open.append((arrives, arrives + s.handle))
    best.grid = r["grid"] or best.grid
    return arrives, best.code


# ---- the figures ---------------------------------------------------------------------------
def figures(outcomes: Sequence[Outcome], policy: Policy, end: datetime) -> Figures:
    """Assessment definitions over the outcomes; escalations as the sweep would raise them."""
    f = Figures(cases=len(outcomes))
    for name, _due, _at in CLOCK_REACHED:
        f.met[name] = f.due[name] = 0
    for o in outcomes:
        dues = policy.start({"received_at": o.received_at, "category": o.category,
                             "priority": o.priority, "status": "new"})  # fmt: skip
        breached = False
        for (name, due_col, _at), reached in zip(CLOCK_REACHED, o.times, strict=True):
            due = dues[due_col]
            if reached is not None or due <= end:
                f.due[name] += 1
                ok = reached is not None and reached <= due
                f.met[name] += ok
                breached |= not ok
        f.breached_cases += breached
        f.unserved += o.times[1] is not None and o.assignee is None
        level, steps = escalations(policy, dues, o, end)
        f.escalated_cases += level > 0
        f.escalation_steps += steps
        f.top_level_cases += level >= MAX_LEVEL
    return f


def status_at(o: Outcome, t: datetime) -> str:
    """The case's state at `t` from its stage times."""
    status = "new"
    for reached, after in zip(o.times, _STATUS_AFTER, strict=True):
        if reached is None or reached > t:
            break
        status = after
    return status


def escalations(
    policy: Policy, dues: Mapping[str, Any], o: Outcome, end: datetime
) -> tuple[int, int]:
    """(level reached, steps raised) by the policy's sweep, run at each due check up to `end`."""
    case: dict[str, Any] = {**dues, "category": o.category, "priority": o.priority}
    case.update(status="new", escalation_level=0, escalated_at=None)
    steps = 0
    t = policy.next_check(case)
    for _ in range(4 * (MAX_LEVEL + 1)):  # each turn raises a level or stops a clock
        if t is None or t >= end:
            break
        case["status"] = status_at(o, t)
        nxt = policy.next_check(case)
        if nxt is None or nxt > t:
            t = nxt
            continue
        step = policy.plan_escalation(case, t)
        if step is None:
            break
        steps += step.level - step.from_level
        case.update(escalation_level=step.level, escalated_at=t)
        t = policy.next_check(case)
    return case["escalation_level"], steps


def period_bounds(start_day: Any, last_day: Any, tz: Any) -> tuple[datetime, datetime]:
    """[local midnight of the first day, local midnight after the last day)."""
    from datetime import UTC, time

    a = datetime.combine(start_day, time(0), tz).astimezone(UTC)
    b = datetime.combine(last_day + timedelta(days=1), time(0), tz).astimezone(UTC)
    return a, b
