"""The duty roster (排班): which shift is on at a moment, its squads and 带班领导, and the
handover (交接班) between two shifts.

Shifts are data (`[[shifts]]` in config.toml, validated to tile the day); without any, the
command centre's two 12-hour shifts (白班 08–20, 夜班 20–08) of every squad, no leader named.
A shift *instance* is a shift on a date: the date is the local day it starts, so the night
shift that starts at 20:00 on 3 December and ends at 08:00 on the 4th is `2026-12-03/night`.
A handover is named by the instance it hands over to. Pure functions: no database here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from tafang.store.config import Deployment, Shift


@dataclass(frozen=True, slots=True)
class Slot:
    """One shift on one date: `start`/`end` are aware local times."""

    shift: Shift
    start: datetime
    end: datetime

    @property
    def key(self) -> str:
        """`YYYY-MM-DD/code`: the date it starts and the shift."""
        return f"{self.start.date().isoformat()}/{self.shift.code}"

    @property
    def hours(self) -> str:
        return f"{self.shift.start}–{self.shift.end}"


def shifts(d: Deployment) -> list[Shift]:
    """The configured shifts, or the default day and night shifts of every squad."""
    if d.shifts:
        return list(d.shifts)
    squads = [s.code for s in d.squads]
    return [
        Shift.model_construct(
            code="day", name="白班", name_en="Day", start="08:00", end="20:00",
            squads=squads, leader="", dispatchers=[],
        ),
        Shift.model_construct(
            code="night", name="夜班", name_en="Night", start="20:00", end="08:00",
            squads=squads, leader="", dispatchers=[],
        ),
    ]  # fmt: skip


def _clock(hhmm: str) -> time:
    h, m = hhmm.split(":")
    return time(int(h), int(m))


def slot_on(d: Deployment, shift: Shift, day: date) -> Slot:
    """`shift` as it starts on local `day` (a shift ending at or before its start ends the
    next day)."""
    tz = ZoneInfo(d.timezone)
    start = datetime.combine(day, _clock(shift.start), tz)
    end = datetime.combine(day, _clock(shift.end), tz)
    if end <= start:
        end += timedelta(days=1)
    return Slot(shift, start, end)


def slot_at(d: Deployment, when: datetime) -> Slot:
    """The shift instance on duty at `when` (any zone; shown in the deployment's)."""
    local = when.astimezone(ZoneInfo(d.timezone))
    for day in (local.date(), local.date() - timedelta(days=1)):
        for sh in shifts(d):
            s = slot_on(d, sh, day)
            if s.start <= local < s.end:
                return s
    raise ValueError(f"no shift covers {local.isoformat()}")  # config makes shifts tile the day


def next_slot(d: Deployment, slot: Slot) -> Slot:
    return slot_at(d, slot.end)


def previous_slot(d: Deployment, slot: Slot) -> Slot:
    return slot_at(d, slot.start - timedelta(seconds=1))


def day_slots(d: Deployment, day: date) -> list[Slot]:
    """Today's roster: the shifts starting on local `day`, in order."""
    return sorted((slot_on(d, sh, day) for sh in shifts(d)), key=lambda s: s.start)


@dataclass(frozen=True, slots=True)
class Handover:
    """The handover from `outgoing` to `incoming`; `key` is the incoming instance's."""

    outgoing: Slot
    incoming: Slot

    @property
    def key(self) -> str:
        return self.incoming.key

    @property
    def leader(self) -> str:
        """The incoming 带班领导 (operator code; "" when the roster names none)."""
        return self.incoming.shift.leader


def handover_at(d: Deployment, when: datetime) -> Handover:
    """The handover a person at `when` is concerned with: the nearest shift change. In the
    second half of a shift it is the one being prepared (to the next shift, notes go there);
    in the first half the one just received (the incoming leader acknowledges it)."""
    cur = slot_at(d, when)
    if when - cur.start < cur.end - when:
        return Handover(previous_slot(d, cur), cur)
    return Handover(cur, next_slot(d, cur))


def squads_on(d: Deployment, when: datetime) -> list[str]:
    """The squads on duty at `when` (their codes)."""
    return list(slot_at(d, when).shift.squads)
