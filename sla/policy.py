"""SLA policy: working-hour deadlines on the Chinese calendar (`WorkCalendar`: config
`[calendar]` entries, then chinese_calendar) and escalation steps.

Pure code over the deployment and an injected `now`: the sweep asks `plan_escalation` what to
do with a due case. Column updates of the lifecycle (hold, resume, return, rework, reopen) and
the SLA light (`clock_state`, inherited) live in `store.clocks`; this subclass only swaps in
the holiday-aware reading of resolve limits, so the light counts working time too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tafang.sla.calendar import WorkCalendar
from tafang.store.clocks import MAX_LEVEL, ClockRules
from tafang.store.config import LEVELS, Deployment, ResolveLimit
from tafang.store.views import CASE_FIELDS, CaseView


def _parse_periods(periods: list[str]) -> list[tuple[time, time]]:
    out = []
    for p in periods:
        a, b = p.split("-")
        ah, am = (int(x) for x in a.split(":"))
        bh, bm = (int(x) for x in b.split(":"))
        end = time.max if (bh, bm) == (24, 0) else time(bh, bm)
        out.append((time(ah, am), end))
    return sorted(out)


@dataclass(frozen=True, slots=True)
class Step:
    """One escalation to make now: raise the case to `level` because `clock` breached."""

    clock: str
    from_level: int
    level: int
    level_name: str
    due_at: datetime  # when this level became due (lateness = fired - due_at)
    catch_up: bool  # more than one level at once (the daemon was down)


class Policy(ClockRules):
    """Deadlines and escalation steps of one deployment (clock states: `ClockRules`)."""

    def __init__(self, deployment: Deployment) -> None:
        super().__init__(deployment)
        self.calendar = WorkCalendar(deployment.calendar)
        self.tz = ZoneInfo(deployment.timezone)
        self.periods = _parse_periods(deployment.sla.working_hours.periods)
        self.day_seconds = sum(
            (datetime.combine(date.min, b) - datetime.combine(date.min, a)).total_seconds()
            for a, b in self.periods
        )
        self._days: dict[date, tuple[tuple[datetime, datetime], ...]] = {}

    # ---- working-time deadlines ------------------------------------------------------------
    def resolve_deadline(self, start: datetime, limit: ResolveLimit) -> datetime:
        """Plain units count wall time; working_hours / working_days count working time only.

        One working day is the length of the configured periods (e.g. 8 h), so "1 working
        day" received on Friday 16:00 ends on the next working day at 16:00.
        """
        if not limit.unit.startswith("working_"):
            return super().resolve_deadline(start, limit)
        per = 3600.0 if limit.unit == "working_hours" else self.day_seconds
        return self.add_working_time(start, timedelta(seconds=limit.amount * per))

    def add_working_time(self, start: datetime, amount: timedelta) -> datetime:
        """The instant at which `amount` of working time has passed since `start`."""
        left = amount
        cursor = start.astimezone(UTC)
        day = cursor.astimezone(self.tz).date()
        for _ in range(3700):  # ten years of days: a guard, never reached with real data
            for p0, p1 in self._working_periods(day):
                if p1 <= cursor:
                    continue
                begin = max(p0, cursor)
                room = p1 - begin
                if left <= room:
                    return begin + left
                left -= room
                cursor = p1
            day += timedelta(days=1)
        raise ValueError(f"no working time found within ten years after {start.isoformat()}")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Working time inside [start, end): for reports and share-elapsed of resolve limits."""
        if end <= start:
            return timedelta(0)
        total = timedelta(0)
        s, e = start.astimezone(UTC), end.astimezone(UTC)
        day = s.astimezone(self.tz).date()
        last = e.astimezone(self.tz).date()
        while day <= last:
            for p0, p1 in self._working_periods(day):
                lo, hi = max(p0, s), min(p1, e)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def _working_periods(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """The working periods of a local calendar day as UTC instants; none on a day off.
        Cached per day: intake asks for every record it reads."""
        periods = self._days.get(day)
        if periods is None:
            periods = self._days[day] = (
                tuple(
                    (
                        datetime.combine(day, a, self.tz).astimezone(UTC),
                        datetime.combine(day, b, self.tz).astimezone(UTC),
                    )
                    for a, b in self.periods
                )
                if self.calendar.is_working_day(day)
                else ()
            )
        return periods

    # ---- escalation ------------------------------------------------------------------------
    def plan_escalation(self, case: CaseView | Mapping[str, Any], now: datetime) -> Step | None:
        """Which level the case must be raised to now, or None.

        A fresh breach raises one level, each further interval one more; after downtime the
        level the overdue time warrants is reached in one step, never beyond the top (4).
        """
        c = _as_mapping(case)
        level = c.get("escalation_level") or 0
        best: tuple[int, datetime, str] | None = None
        for clock, first in self.escalation_due(c):
            if first > now:
                continue
            # One level at `first` (the deadline, or an interval after the last raise), one
            # more per interval since then, never beyond the top.
            target = min(level + 1 + (now - first) // self.interval, MAX_LEVEL)
            step_due = first + self.interval * (target - level - 1)
            if best is None or target > best[0] or (target == best[0] and step_due < best[1]):
                best = (target, step_due, clock)
        if best is None:
            return None
        target, step_due, clock = best
        return Step(clock, level, target, LEVELS[target], step_due, target - level > 1)


def _as_mapping(case: CaseView | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(case, CaseView):
        return {f: getattr(case, f) for f in CASE_FIELDS}
    return case
