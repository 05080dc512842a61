"""A labelled feed for the duplicate matcher: events reported once or several times.

Each event is a real happening (a category, a cell, a place); 30 % are reported again by
other channels within half an hour, as people do: another of the category's usual titles,
the channel's preamble (【智能告警】, 市民来电反映), the place written another way (full-width
digits, 附近, the crossing's roads swapped), sometimes the neighbouring cell, sometimes a
related category of the same group; alarms and patrols carry a position. Busy categories
(stalls, bikes, rubbish) make the unrelated reports nearby that must not be suggested.
Deterministic for a seed (tests, `bench/dupes.py`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tafang.console.demo import PLACES, TITLES
from tafang.store.config import Deployment, Grid

PREAMBLE = {
    "hotline": ("市民来电反映：", "来电称", ""),
    "ping_an": ("群众报称", "平安通上报：", ""),
    "smart_alarm": ("【智能告警】", ""),
    "xihu_code": ("西湖码反映", ""),
    "grid_app": ("网格员巡查发现", ""),
    "patrol": ("巡查发现", ""),
    "city_ops": ("", "数字城管立案："),
}
WITH_POSITION = {"smart_alarm", "patrol", "grid_app"}
BUSY = ("0501", "0502", "0504", "0590", "0102")
FULL = str.maketrans("0123456789", "０１２３４５６７８９")
ORIGIN = (30.2790, 120.1180)  # 古荡, the map's top-left corner (approximate)
CELL_M = 220.0


@dataclass(frozen=True)
class SimReport:
    """One report and the event it is about (the label)."""

    id: int
    event: int
    channel: str
    received_at: datetime
    grid: str
    category: str
    title: str
    location: str
    lat: float | None
    lon: float | None


class DupeFeed:
    """`reports(n_events)`: reports in arrival order, with their events' ids as labels."""

    def __init__(self, dep: Deployment, seed: int = 7, start: datetime | None = None) -> None:
        self.rng = random.Random(seed)
        self.dep = dep
        self.grids = list(dep.tower.grids)
        self.at = {(g.row, g.col): g for g in self.grids}
        self.groups = {c.code: c.group for c in dep.categories}
        self.cats = [c for c in TITLES if c in self.groups]
        self.start = start or datetime(2026, 11, 2, 0, 0, tzinfo=UTC)

    def reports(self, n_events: int, per_hour: float = 12.0) -> list[SimReport]:
        rng, out = self.rng, []
        t = self.start
        for event in range(n_events):
            t += timedelta(minutes=rng.expovariate(per_hour / 60))
            cat = rng.choice(BUSY) if rng.random() < 0.35 else rng.choice(self.cats)
            grid, place = rng.choice(self.grids), self._place()
            copies = 1 + (rng.choice((1, 1, 1, 2, 3)) if rng.random() < 0.3 else 0)
            when = t
            for k in range(copies):
                if k:
                    when = t + timedelta(minutes=min(30.0, rng.expovariate(1 / 8)))
                out.append(self._report(event, k, when, cat, grid, place))
        out.sort(key=lambda r: r.received_at)
        return [SimReport(i + 1, *_fields(r)) for i, r in enumerate(out)]

    def _place(self) -> tuple[str, str, int]:
        rng = self.rng
        a, b = rng.sample(PLACES, 2)
        return a, b, rng.randint(1, 300)

    def _report(
        self, event: int, k: int, when: datetime, cat: str, grid: Grid, place: tuple[str, str, int]
    ) -> SimReport:
        rng = self.rng
        channel = rng.choice(tuple(PREAMBLE))
        if k and rng.random() < 0.2:
            grid = self._neighbour(grid)
        if k and rng.random() < 0.1:
            cat = rng.choice([c for c in self.cats if self.groups[c] == self.groups[cat]])
        title = rng.choice(PREAMBLE[channel]) + rng.choice(TITLES[cat])
        lat = lon = None
        if channel in WITH_POSITION:
            lat = ORIGIN[0] - (grid.row + rng.random()) * CELL_M / 111_000
            lon = ORIGIN[1] + (grid.col + rng.random()) * CELL_M / 96_000
        return SimReport(
            0, event, channel, when, grid.code, cat, title, self._written(place), lat, lon
        )

    def _written(self, place: tuple[str, str, int]) -> str:
        """The same place as different people write it."""
        rng = self.rng
        a, b, n = place
        if n % 3 == 0:  # a crossing
            return rng.choice((f"{a}与{b}交叉口", f"{b}{a}路口", f"{a}{b}口附近"))
        number = f"{n}".translate(FULL) if rng.random() < 0.2 else f"{n}"
        return f"{a}{number}号" + rng.choice(("", "附近", "门口", "旁边"))

    def _neighbour(self, g: Grid) -> Grid:
        near = [
            self.at[(g.row + dr, g.col + dc)]
            for dr in (-1, 0, 1)
            for dc in (-1, 0, 1)
            if (dr or dc) and (g.row + dr, g.col + dc) in self.at
        ]
        return self.rng.choice(near) if near else g


def _fields(r: SimReport) -> tuple[object, ...]:
    return (
        r.event,
        r.channel,
        r.received_at,
        r.grid,
        r.category,
        r.title,
        r.location,
        r.lat,
        r.lon,
    )


@dataclass(frozen=True)
class Quality:
    """How the matcher did on a labelled feed."""

    suggested: int  # suggestions made (pairs)
    right: int  # of them, the same event
    duplicates: int  # reports whose event was already reported (and still open)
    found: int  # of them, with an earlier report of their event suggested

    @property
    def precision(self) -> float:
        return self.right / self.suggested if self.suggested else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.duplicates if self.duplicates else 1.0


def evaluate(dep: Deployment, reports: list[SimReport]) -> Quality:
    """Feed the reports in arrival order; each is matched against every earlier one."""
    from tafang.store.dupes import DupeIndex, report_of

    index = DupeIndex(dep)
    seen: dict[int, int] = {}  # event -> reports so far
    event_of = {r.id: r.event for r in reports}
    suggested = right = duplicates = found = 0
    for r in reports:
        rep = report_of(r)
        hits = index.suggest(rep)
        suggested += len(hits)
        good = sum(1 for h in hits if event_of[h.case_id] == r.event)
        right += good
        if seen.get(r.event):
            duplicates += 1
            found += good > 0
        seen[r.event] = seen.get(r.event, 0) + 1
        index.add(rep)
    return Quality(suggested, right, duplicates, found)
