"""The plain data the console hands to widgets (built from store views in `console/`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class QueueRow:
    """One case in the live event queue. Text fields are untrusted: render them literally."""

    case_id: int
    version: int
    status: str  # new | acknowledged | dispatched | on_scene | handled | held
    status_label: str  # shown, e.g. "待受理" or "new"
    channel: str  # channel display name
    category: str  # category display name (or raw value when unknown)
    grid_label: str  # e.g. "N3-07", or "?" + raw value when unknown
    grid_code: str | None
    title: str
    assignee: str  # officer / squad display, "" when none
    clock: str | None  # running clock name: respond | dispatch | arrive | resolve | None
    due: datetime | None  # deadline of the running clock (aware UTC)
    budget_seconds: float | None  # full length of that clock, for the at-risk share
    escalation_level: int  # 0 grid … 4 centre
    triage: bool
    supervised: bool  # 督办
    priority: str  # normal | urgent | critical
    held_at: datetime | None = None  # held: the clock stands at this instant (shown still)
    dupes: int = 0  # open cases that are probably the same event (≈N before the title)


@dataclass(frozen=True, slots=True)
class CellSpec:
    """A grid cell as configured: where it sits on the map."""

    code: str
    label: str
    circle: str  # enforcement circle code
    circle_name: str
    half: str  # north | south
    row: int
    col: int


@dataclass(frozen=True, slots=True)
class CellState:
    """Live state of one cell: open cases and the worst SLA state among them."""

    code: str
    open_cases: int
    worst: str  # ok | at_risk | breached | none
    officers: int = 0  # officers currently in the cell


@dataclass(frozen=True, slots=True)
class OfficerRow:
    code: str
    name: str
    squad: str  # squad code
    squad_name: str
    agency: str
    group: str
    status: str  # available | en_route | on_scene | off_duty | on_break
    status_label: str
    case_id: int | None
    since: datetime  # aware UTC
    load: int


@dataclass(frozen=True, slots=True)
class PartnerRow:
    code: str
    name: str
    open_cases: int
    handled_today: int


@dataclass(frozen=True, slots=True)
class ClockLine:
    """One SLA clock of a case in the detail pane: its deadline in local time, its light."""

    name: str  # clock name, in the UI language
    text: str  # "响应 截止 09:01:00" or "响应 已完成 09:00:40"
    due: datetime | None  # running: the countdown is drawn live from it; None when met
    light: str  # ok | at_risk | breached | none (the store's rule, read by the console)


@dataclass(frozen=True, slots=True)
class CaseDetail:
    """The case under the queue's cursor, in words (untrusted values: render literally)."""

    case_id: int
    version: int
    heading: str  # "案卷 15 · 待受理 · 特急"
    title: str
    fields: tuple[tuple[str, str], ...]  # (label, value), already in the UI language
    clocks_title: str
    clocks: tuple[ClockLine, ...]
    timeline_title: str
    timeline: tuple[tuple[str, str], ...]  # (local time, plain words), newest last
    hint: str = ""  # what the keys do here
    held_at: datetime | None = None  # held: countdowns stand still at this instant
    flags: tuple[tuple[str, str], ...] = ()  # (text, light) marks: 督办, 待分拣, escalation


@dataclass(frozen=True, slots=True)
class SummaryEntry:
    """One squad or case group in the summary line: officers free, out, on scene."""

    name: str
    free: int
    out: int
    busy: int


@dataclass(frozen=True, slots=True)
class Summary:
    """The always-visible summary line: squads, case groups and partner teams."""

    squads: tuple[SummaryEntry, ...]
    groups: tuple[SummaryEntry, ...]
    partners: tuple[PartnerRow, ...]
