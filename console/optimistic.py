"""Optimistic row state: what a case will look like once the store accepts a move.

A dispatcher must see the result of a key within 100 ms (DESIGN §5), but the store answers
from a worker thread, behind the write lock of a shared file. The console shows the expected
state at once, marked pending, and the store's answer confirms it or rolls it back. The
expectation is read from the move registry (`leads_to`), never guessed per key.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from tafang.store.config import Deployment
from tafang.store.moves import BEFORE_HOLD, MOVES
from tafang.store.views import CaseView

STAGE_AT = {
    "acknowledged": "acknowledged_at",
    "dispatched": "dispatched_at",
    "on_scene": "arrived_at",
    "handled": "handled_at",
    "closed": "closed_at",
    "held": "held_at",
}
"""The stage time a state sets: the running clock stops on it, as the store's rule reads it."""


def assignee_kind(d: Deployment, code: str) -> str:
    """officer | partner | squad, as the store will record `code`."""
    if code in d.officers_by_code:
        return "officer"
    if any(p.code == code for p in d.partners):
        return "partner"
    return "squad"


def provisional(
    case: CaseView, move: str, now: datetime, d: Deployment, to: str | None = None
) -> CaseView | None:
    """The case as it will be once `move` goes through, or None when that cannot be told
    (an unknown move, or one the case's state does not allow: the store will say why)."""
    m = MOVES.get(move)
    if m is None or case.status not in m.starts:
        return None
    changes: dict[str, object] = {}
    if m.leads_to is not None and m.leads_to != BEFORE_HOLD:
        changes["status"] = m.leads_to
        stage = STAGE_AT.get(m.leads_to)
        if stage is not None and (m.leads_to != "dispatched" or case.dispatched_at is None):
            changes[stage] = now
        if m.leads_to == "held":
            changes["hold_from"] = case.status
    elif m.leads_to == BEFORE_HOLD and case.hold_from:
        changes.update(status=case.hold_from, held_at=None)
    if to:
        changes.update(assignee=to, assignee_kind=assignee_kind(d, to))
    if move == "supervise":
        changes["supervised"] = True
    if move == "escalate":
        changes["escalation_level"] = min(case.escalation_level + 1, 4)
    if not changes:
        return None
    return replace(case, **changes, version=case.version + 1, updated_at=now)  # type: ignore[arg-type]
