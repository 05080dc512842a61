"""The what-if replay's model of time, fitted from the period's own record (sla/whatif.py).

Per case group, the cases that reached the scene give samples of (respond, decide, travel,
handle) drawn together; handle is drawn from the group's handled cases when the drawn case
was not handled in the period. Travel follows grid distance only when the record supports it
(least-squares slope of travel on the assignee's distance from home, t ≥ 2). An officer's
capacity is the most cases one officer held at once (dispatched → handled) in the record.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tafang.store.config import Deployment
from tafang.store.dispatch_order import FAR, grid_distance

MIN_POOL = 20  # a group with fewer reached cases draws from all groups
T_SUPPORTED = 2.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One real case's stage times, and its assignee's grid distance (FAR: unknown)."""

    respond: timedelta
    decide: timedelta
    travel: timedelta
    handle: timedelta
    distance: int = FAR


@dataclass
class Model:
    pools: dict[str, list[Sample]]
    every: list[Sample]
    handles: dict[str, list[timedelta]]
    capacity: int
    per_cell: float | None  # seconds of travel per grid cell; None: not supported
    slope_t: float | None
    groups: Mapping[str, str] = field(default_factory=dict)  # category → group

    def draw(self, row: Mapping[str, Any], rng: random.Random) -> Sample:
        """A sample for `row`'s case group (seeded by the caller per case)."""
        group = self.groups.get(row["category"] or "", "")
        pool = self.pools.get(group) or self.every
        s = pool[rng.randrange(len(pool))]
        if s.handle < timedelta(0):  # not handled in the period: one that was, same group
            hs = self.handles.get(group) or self.handles.get("", []) or [timedelta(hours=1)]
            s = Sample(s.respond, s.decide, s.travel, hs[rng.randrange(len(hs))], s.distance)
        return s

    def travel(self, s: Sample, distance: int) -> timedelta:
        """The drawn travel, moved by the distance difference when the record supports it."""
        if self.per_cell is None or distance == FAR or s.distance == FAR:
            return s.travel
        secs = s.travel.total_seconds() + self.per_cell * (distance - s.distance)
        return timedelta(seconds=max(secs, 10.0))


class _Home:
    """An officer at home (no current cell), for the distance of the record's assignee."""

    def __init__(self, circle: str) -> None:
        self.circle, self.grid = circle, None


def fit(rows: Sequence[Mapping[str, Any]], d: Deployment, end: datetime) -> Model:
    """The model from the period's record (`rows`: store/arrivals.py)."""
    groups = {c.code: c.group for c in d.categories}
    pools: dict[str, list[Sample]] = defaultdict(list)
    handles: dict[str, list[timedelta]] = defaultdict(list)
    every: list[Sample] = []
    for r in rows:
        t = [
            r["received_at"],
            r["acknowledged_at"],
            r["dispatched_at"],
            r["arrived_at"],
            r["handled_at"],
        ]
        t = [x if x is not None and x < end else None for x in t]
        g = groups.get(r["category"] or "", "")
        if t[4] is not None and t[3] is not None:
            handles[g].append(t[4] - t[3])
            handles[""].append(t[4] - t[3])
        if any(x is None for x in t[:4]):
            continue
        handle = t[4] - t[3] if t[4] is not None else timedelta(seconds=-1)
        s = Sample(t[1] - t[0], t[2] - t[1], t[3] - t[2], handle, _distance(d, r))
        pools[g].append(s)
        every.append(s)
    if not every:
        raise ValueError("no case in the period reached the scene: nothing to fit a model to")
    per_cell, slope_t = _slope(every)
    return Model(
        {g: p for g, p in pools.items() if len(p) >= MIN_POOL},
        every,
        dict(handles),
        capacity(rows, end),
        per_cell if slope_t is not None and slope_t >= T_SUPPORTED else None,
        slope_t,
        groups,
    )


def _distance(d: Deployment, r: Mapping[str, Any]) -> int:
    found = d.officers_by_code.get(r["assignee"] or "")
    if found is None:
        return FAR
    return grid_distance(d, r["grid"], _Home(found[1].circle))  # type: ignore[arg-type]


def _slope(samples: Sequence[Sample]) -> tuple[float, float | None]:
    """Least-squares seconds of travel per cell, and its t statistic (None: cannot tell)."""
    pts = [(s.distance, s.travel.total_seconds()) for s in samples if s.distance != FAR]
    n = len(pts)
    if n < 10:
        return 0.0, None
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx == 0:
        return 0.0, None
    b = sum((x - mx) * (y - my) for x, y in pts) / sxx
    resid = sum((y - my - b * (x - mx)) ** 2 for x, y in pts)
    se = math.sqrt(resid / (n - 2) / sxx) if resid > 0 else 0.0
    return b, (b / se if se > 0 else None)


def capacity(rows: Sequence[Mapping[str, Any]], end: datetime) -> int:
    """The most cases one officer held at once (dispatched → handled) in the record."""
    events: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for r in rows:
        if r["assignee"] and r["dispatched_at"] is not None and r["dispatched_at"] < end:
            h = r["handled_at"] if r["handled_at"] is not None and r["handled_at"] < end else end
            events[r["assignee"]] += [(r["dispatched_at"], 1), (h, -1)]
    most = 1
    for ev in events.values():
        held = 0
        for _t, k in sorted(ev):
            held += k
            most = max(most, held)
    return most
