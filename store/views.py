"""Plain, frozen data that leaves the store: no sessions, no lazy loads."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class CaseView:
    id: int
    source: str
    external_id: str
    title: str
    description: str
    category: str | None
    grid: str | None
    location: str
    priority: str
    reporter: str
    lat: float | None
    lon: float | None
    reported_at: datetime | None
    received_at: datetime
    raw: str
    triage: bool
    triage_reason: str
    status: str
    hold_from: str | None
    assignee: str | None
    assignee_kind: str | None
    escalation_level: int
    supervised: bool
    merged_into: int | None
    acknowledged_at: datetime | None
    dispatched_at: datetime | None
    arrived_at: datetime | None
    handled_at: datetime | None
    closed_at: datetime | None
    held_at: datetime | None
    respond_due: datetime | None
    dispatch_due: datetime | None
    arrive_due: datetime | None
    resolve_due: datetime | None
    next_check_at: datetime | None
    escalated_at: datetime | None
    version: int
    updated_at: datetime
    updated_by: str
    updated_terminal: str
    updated_seq: int

    @property
    def raw_fields(self) -> dict[str, Any]:
        """Raw values that could not be used and the record's unknown fields."""
        try:
            v = json.loads(self.raw or "{}")
        except ValueError:
            return {}
        return v if isinstance(v, dict) else {}

    @property
    def is_open(self) -> bool:
        return self.status not in ("closed", "void", "merged")

    @property
    def display_title(self) -> str:
        return self.title or self.description.split("\n", 1)[0]


CASE_FIELDS = tuple(f.name for f in fields(CaseView))


@dataclass(frozen=True, slots=True)
class OfficerView:
    code: str
    name: str
    squad: str
    agency: str
    group: str
    circle: str
    role: str
    status: str
    case_id: int | None
    grid: str | None
    status_since: datetime
    load: int = 0  # open cases in hand
    # on_duty | off_duty | on_break (store/duty.py); `status` already shows the last two
    duty: str = "on_duty"
    duty_since: datetime | None = None


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    seq: int
    at: datetime
    action: str
    operator: str
    terminal: str
    detail: dict[str, Any]
