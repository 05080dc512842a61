"""A simulated year of Gudang history as `ingest --history` records (tests and bench/report.py).

Volumes and mix from DOMAIN.md: ≈ 59,400 cases a year, the 2023 channel mix (平安通 most),
a daytime peak, bikes and alarms in their categories. Each case goes through its stages with
delays that are mostly inside the 1-3-5 clocks (a few per cent late), the officer of the
case's group where there is one, a checker closing (now and then, as before the rule held, the
handler himself), and a few 回退 / 返工 / 延期 / 督办. A case whose next stage would fall
after the period stays open at the stage it reached.
Deterministic for a seed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tafang.console.demo import ALARM_CATEGORIES, BIKES, CHANNEL_MIX, PLACES, TITLES
from tafang.store.config import Deployment

# Share of the day's cases per local hour: quiet at night, a morning and an afternoon peak.
HOURLY = (1, 1, 1, 1, 1, 2, 4, 7, 10, 11, 10, 8, 6, 8, 10, 10, 9, 8, 6, 5, 4, 3, 2, 1)
DISPATCHERS = ("d01", "d02", "d03")
CHECKERS = ("c01", "c02")
SUPERVISORS = ("s01", "s02")


def _lognormal(rng: random.Random, median: float, spread: float = 0.6) -> float:
    return median * rng.lognormvariate(0.0, spread)


class HistorySim:
    """Records for `days` days from `start` (local midnight), `per_year` cases a year."""

    def __init__(self, d: Deployment, seed: int = 2023) -> None:
        self.d = d
        self.rng = random.Random(seed)
        self.tz = ZoneInfo(d.timezone)
        cats = [c.code for c in d.categories]
        self.titled = [c for c in cats if c in TITLES] or cats
        self.grids = [g.code for g in d.tower.grids]
        # a few hot cells (metro exits, the business towers) take a third of the cases
        self.hot = self.rng.sample(self.grids, min(8, len(self.grids)))
        known = d.channel_codes
        mix = [(c, n) for c, n in CHANNEL_MIX if c in known] or [(d.channels[0].code, 1)]
        self.channels = [c for c, _ in mix]
        self.channel_w = [n for _, n in mix]
        self.by_group: dict[str, list[str]] = {}
        for s in d.squads:
            for o in s.officers:
                self.by_group.setdefault(o.group, []).append(o.code)
        self.officers = [o.code for s in d.squads for o in s.officers]

    def records(
        self, start: datetime, days: int = 365, per_year: int = 59_400
    ) -> Iterator[dict[str, Any]]:
        """History records in receipt order."""
        rng = self.rng
        per_day = per_year / 365.0
        end = start + timedelta(days=days)
        n = 0
        for day in range(days):
            local = (start + timedelta(days=day)).astimezone(self.tz)
            midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
            count = max(0, round(rng.gauss(per_day, per_day**0.5)))
            times = sorted(
                midnight + timedelta(hours=h, seconds=rng.uniform(0, 3600))
                for h in rng.choices(range(24), weights=HOURLY, k=count)
            )
            for t in times:
                n += 1
                yield self.case(n, t.astimezone(UTC), end)

    def case(self, n: int, received: datetime, end: datetime) -> dict[str, Any]:
        rng = self.rng
        channel = rng.choices(self.channels, weights=self.channel_w)[0]
        if channel == "smart_alarm":
            cat = rng.choice([c for c in ALARM_CATEGORIES if c in self.titled] or self.titled)
        elif rng.random() < 0.18:
            cat = rng.choice([c for c in BIKES if c in self.titled] or self.titled)
        else:
            cat = rng.choice(self.titled)
        grid = rng.choice(self.hot) if rng.random() < 0.33 else rng.choice(self.grids)
        title = rng.choice(TITLES.get(cat, ("事件",)))
        rec: dict[str, Any] = {
            "source": channel,
            "external_id": f"H{received.astimezone(self.tz):%Y}-{n:06d}",
            "title": f"{rng.choice(PLACES)}{title}",
            "category": cat,
            "grid": grid,
            "location": rng.choice(PLACES),
            "received_at": received.isoformat(),
        }
        self._stages(rec, received, end, cat)
        return rec

    def _stages(self, rec: dict[str, Any], t0: datetime, end: datetime, cat: str) -> None:
        """Stage times and hands; a case stops at the first stage that lies past `end`."""
        rng = self.rng
        if rng.random() < 0.01:
            rec.update(status="void", acknowledged_at=_iso(t0 + timedelta(seconds=20)))
            return
        group = self.d.categories_by_code[cat].group if cat in self.d.categories_by_code else ""
        officer = rng.choice(self.by_group.get(group) or self.officers)
        disp = rng.choice(DISPATCHERS)
        late = rng.random() < 0.06
        steps = (
            ("acknowledged_at", _lognormal(rng, 25 if not late else 90)),
            ("dispatched_at", _lognormal(rng, 60 if not late else 200)),
            ("arrived_at", _lognormal(rng, 100, 0.5)),
            ("handled_at", _lognormal(rng, 2400, 0.9)),
            ("closed_at", _lognormal(rng, 1800, 0.8)),
        )
        t = t0
        for col, secs in steps:
            t = t + timedelta(seconds=secs)
            if t >= end:
                break
            rec[col] = _iso(t)
        if "dispatched_at" in rec:
            rec["assignee"] = officer
        closer = disp if rng.random() < 0.02 else rng.choice(CHECKERS)
        rec.update(
            acknowledged_by=disp,
            dispatched_by=disp,
            arrived_by=disp,
            handled_by=disp,
            closed_by=closer if "closed_at" in rec else "",
            returns=int(rng.random() < 0.03),
            reworks=int(rng.random() < 0.04),
            extensions=int(rng.random() < 0.02),
            supervisions=int(rng.random() < 0.01),
            escalation_level=int(late and rng.random() < 0.5),  # a late stage went up a level
        )


def _iso(t: datetime) -> str:
    return t.isoformat()


def write_year(d: Deployment, path: Path, year: int = 2023, seed: int = 2023) -> int:
    """A year of history (local calendar year) as JSON Lines at `path`; the number of lines."""
    start = datetime(year, 1, 1, tzinfo=ZoneInfo(d.timezone)).astimezone(UTC)
    days = (datetime(year + 1, 1, 1) - datetime(year, 1, 1)).days
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for rec in HistorySim(d, seed).records(start, days):
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n
