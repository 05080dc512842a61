"""Telling the officer: a case's move that concerns an officer queues a notice to their squad.

Dispatch, reassign, rework and escalation (by hand or by the sweep) of a case in an
officer's hands, and the officer's own request for support, write one outbox row in the
move's transaction (exactly as escalations do: the same delivery, retries, idempotency keys
and rate limits), addressed to the squad's robot (`squad:<code>`, `[squads.robot]` in
config) with the officer @-mentioned by their mobile (`mention`). A squad without a robot is
not told (nothing would ever deliver it); the console still shows the move.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from tafang.store.clocks import running_dues
from tafang.store.config import Deployment
from tafang.store.outbox import enqueue

TOLD = frozenset({"dispatch", "reassign", "rework", "escalate", "support"})
"""The moves after which the case's officer (or, for support, their squad) is told."""
KINDS = {"escalate": "escalation_told"}
"""Event kinds apart from the move's name (an escalation notice to the tower is `escalation`)."""


def squad_contact(squad: str) -> str:
    """The outbox `contact` of a squad's robot."""
    return f"squad:{squad}"


def officer_notice(
    d: Deployment,
    action: str,
    case: Mapping[str, Any],
    *,
    by: str,
    reason: str = "",
    level: int | None = None,
) -> tuple[str, dict[str, Any]] | None:
    """(contact, event) telling the officer holding `case` (as it is after `action`), or
    None when no officer holds it or their squad has no robot. A request for support goes
    to the requesting officer's squad with its leaders (role leader) @-mentioned."""
    if action not in TOLD:
        return None
    support = action == "support"
    if not support and case.get("assignee_kind") != "officer":
        return None
    found = d.officers_by_code.get(by if support else case.get("assignee") or "")
    if found is None:
        return None
    squad, officer = found
    if squad.robot is None:
        return None
    told = [o for o in squad.officers if o.role == "leader"] if support else [officer]
    dues = list(running_dues(case, case.get("status") or "new"))
    clock, due = min(dues, key=lambda cd: cd[1]) if dues else (None, None)
    event = {
        "kind": KINDS.get(action, action),
        "case_id": case["id"],
        "title": case.get("title") or (case.get("description") or "")[:80],
        "category": case.get("category"),
        "grid": case.get("grid"),
        "location": case.get("location") or "",
        "priority": case.get("priority"),
        "status": case.get("status"),
        "officer": officer.code,
        "officer_name": officer.name,
        "mention": [o.mobile for o in told if o.mobile],
        "deadline_clock": clock,
        "due_at": due,
        "by": by,
        "reason": reason,
    }
    if level is not None:
        event.update(level=level, circle=d.circle_at(level, case.get("grid")))
    return squad_contact(squad.code), event


def tell_officer(
    conn: Connection,
    d: Deployment,
    action: str,
    case: Mapping[str, Any],
    *,
    key: str,
    by: str,
    now: datetime,
    reason: str = "",
    level: int | None = None,
) -> bool:
    """Queue the officer's notice in this transaction; True when one was queued."""
    told = officer_notice(d, action, case, by=by, reason=reason, level=level)
    if told is None:
        return False
    contact, event = told
    enqueue(conn, key=key, contact=contact, case_id=case["id"], event=event, now=now)
    return True
