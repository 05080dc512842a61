"""Shift context for the header: which shift, who is at the terminal in which role, the day's
flow, overdue cases per stage, the 1-3-5 rates and a sparkline of the last hours; and the
alert rules (mute for N minutes, a distinct bell pattern for critical cases).

Pure functions over plain data; the app gathers the figures in a worker and draws the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

SHIFTS: tuple[tuple[str, time, time], ...] = (
    ("day", time(8, 0), time(20, 0)),
    ("night", time(20, 0), time(8, 0)),
)
"""The command centre's two 12-hour shifts (assumed: 白班 08–20, 夜班 20–08)."""

SPARK = "▁▂▃▄▅▆▇█"
HOURS = 8
"""Hours the header's sparkline covers (received cases per hour)."""
MUTE_STEPS = (15, 30, 60, 0)
"""Each press of the mute key: 15, 30, 60 minutes, then the bell on again."""


@dataclass(frozen=True, slots=True)
class DayFigures:
    """What the header shows of the day so far (local midnight on)."""

    received: int = 0
    closed: int = 0
    rates: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # stage: (met, due)
    per_hour: Sequence[int] = ()  # received per hour, oldest first


def shift_of(local: datetime) -> tuple[str, str]:
    """(shift key, its hours 'HH:MM–HH:MM') for a local time."""
    for key, start, end in SHIFTS:
        t = local.time()
        inside = start <= t < end if start < end else (t >= start or t < end)
        if inside:
            return key, f"{start:%H:%M}–{end:%H:%M}"
    return SHIFTS[0][0], ""


def person(name: str) -> str:
    """The person's name without a role title in front (`值班调度员 张敏` → `张敏`): the
    header says the role from the roster, once."""
    return name.split()[-1] if name.split() else name


def sparkline(values: Sequence[int]) -> str:
    """One block character per value, scaled to the largest."""
    top = max(values, default=0)
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, v * (len(SPARK) - 1) // top)] for v in values)


def rate(met: int, due: int) -> str:
    """A stage's on-time share in whole percent, or `—` when nothing was due."""
    return f"{100 * met // due}%" if due else "—"


def overdue_by_stage(lights: Mapping[int, str], clocks: Mapping[int, str | None]) -> dict[str, int]:
    """Breached open cases per running clock (respond / dispatch / arrive / resolve)."""
    out: dict[str, int] = {}
    for cid, light in lights.items():
        if light == "breached":
            clock = clocks.get(cid) or "resolve"
            out[clock] = out.get(clock, 0) + 1
    return out


def hour_starts(now: datetime, hours: int = HOURS) -> list[datetime]:
    """The starts of the last `hours` whole hours up to now (oldest first), `now`'s zone."""
    top = now.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=h) for h in range(hours - 1, -1, -1)]


def per_hour(received_since: Iterable[int]) -> list[int]:
    """Cumulative 'received since hour start' counts (oldest first) → per-hour counts."""
    xs = list(received_since)
    return [a - b for a, b in zip(xs, [*xs[1:], 0], strict=True)]


def bell_pattern(priorities: Iterable[str]) -> int:
    """How many rings for a batch of new breaches: three when a critical case is among them."""
    ps = list(priorities)
    if not ps:
        return 0
    return 3 if "critical" in ps else 1


def next_mute(current_minutes: int) -> int:
    """The mute step after `current_minutes` (0 = not muted)."""
    if current_minutes not in MUTE_STEPS:
        return MUTE_STEPS[0]
    return MUTE_STEPS[(MUTE_STEPS.index(current_minutes) + 1) % len(MUTE_STEPS)]
