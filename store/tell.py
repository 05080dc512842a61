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
from tafang.store.config import Deployment, Officer, Squad
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
    None when no officer or squad holds it or the squad has no robot. A case sent to a whole
    squad, and a request for support (to the requesting officer's squad), @-mention the
    squad's leaders (role leader)."""
    if action not in TOLD:
        return None
    found = _squad_and_officer(d, action, case, by)
    if found is None or found[0].robot is None:
        return None
    squad, officer = found
    leaders = [o for o in squad.officers if o.role == "leader"]
    told = [officer] if officer is not None and action != "support" else leaders
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
        "officer": officer.code if officer else squad.code,
        "officer_name": officer.name if officer else squad.name,
        "mention": [o.mobile for o in told if o.mobile],
        "deadline_clock": clock,
        "due_at": due,
        "by": by,
        "reason": reason,
    }
    if level is not None:
        event.update(level=level, circle=d.circle_at(level, case.get("grid")))
    return squad_contact(squad.code), event


def _squad_and_officer(
    d: Deployment, action: str, case: Mapping[str, Any], by: str
) -> tuple[Squad, Officer | None] | None:
    """Whose squad is told, and the officer the notice is about (None: the whole squad)."""
    if action == "support":
        return d.officers_by_code.get(by)
    kind, who = case.get("assignee_kind"), case.get("assignee") or ""
    if kind == "officer":
        return d.officers_by_code.get(who)
    if kind == "squad" and who in d.squads_by_code:
        return d.squads_by_code[who], None
    return None


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
