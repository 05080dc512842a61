"""Undelivered notices as people see them: the backlog, the list, giving up and retrying.

An escalation notice stays `pending` until it is delivered or a person gives up on it; the
machine never drops one. Giving up (a supervisor, with a reason) and retrying at once (anyone
who works cases) are writes like any other: role-checked and on the record (action
`outbox_give_up` / `outbox_retry`, the notice's case in the detail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from tafang.store.models import Outbox
from tafang.store.moves import DISPATCH, LEAD
from tafang.store.record import Entry, append

if TYPE_CHECKING:
    from tafang.store.cases import Actor, Store

OUTBOX = Outbox.__table__
GIVE_UP_ROLES = LEAD
RETRY_ROLES = DISPATCH
MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class Backlog:
    """Undelivered notices: how many, and when the oldest was queued (None: none)."""

    count: int = 0
    oldest: datetime | None = None

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - self.oldest).total_seconds()) if self.oldest else 0.0


@dataclass(frozen=True, slots=True)
class Notice:
    """One undelivered notice, for `tafang outbox`."""

    id: int
    key: str
    contact: str
    case_id: int | None
    kind: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str


class NoticeRefused(Exception):
    """No such undelivered notice, or a reason missing."""


def backlog(store: Store, *, contact_not: str | None = None) -> Backlog:
    """Count and oldest of the notices not yet delivered (one aggregate query)."""
    q = select(func.count(), func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == "pending")
    if contact_not is not None:
        q = q.where(OUTBOX.c.contact != contact_not)
    with store.read_engine.connect() as conn:
        n, oldest = conn.execute(q).one()
    return Backlog(int(n or 0), oldest)


def undelivered(store: Store, *, limit: int = 200) -> list[Notice]:
    """The undelivered notices, oldest first."""
    c = OUTBOX.c
    q = (
        select(c.id, c.key, c.contact, c.case_id, c.payload, c.attempts, c.created_at)
        .add_columns(c.next_attempt_at, c.last_error)
        .where(c.status == "pending")
        .order_by(c.created_at, c.id)
        .limit(limit)
    )
    with store.read_engine.connect() as conn:
        rows = conn.execute(q).all()
    return [_notice(r) for r in rows]


def give_up(store: Store, notice_id: int, actor: Actor, reason: str, now: datetime) -> Notice:
    """A person gives up on an undelivered notice (a supervisor, with a reason); recorded."""
    store.may(GIVE_UP_ROLES, "outbox_give_up", actor)
    reason = reason.strip()
    if not reason:
        raise NoticeRefused("giving up on a notice needs a reason (--reason)")
    values = dict(
        status="given_up",
        given_up_at=now,
        given_up_by=actor.operator,
        give_up_reason=reason[:MAX_REASON],
    )
    return _change(store, notice_id, actor, now, "outbox_give_up", values, reason[:MAX_REASON])


def retry_now(store: Store, notice_id: int, actor: Actor, now: datetime) -> Notice:
    """Make an undelivered notice due at once (after fixing a contact); recorded."""
    store.may(RETRY_ROLES, "outbox_retry", actor)
    return _change(store, notice_id, actor, now, "outbox_retry", {"next_attempt_at": now}, "")


def _change(
    store: Store,
    notice_id: int,
    actor: Actor,
    now: datetime,
    action: str,
    values: dict[str, Any],
    reason: str,
) -> Notice:
    with store.write() as (conn, head):
        q = select(OUTBOX).where(OUTBOX.c.id == notice_id, OUTBOX.c.status == "pending")
        if conn.dialect.name == "postgresql":
            q = q.with_for_update()
        r = conn.execute(q).first()
        if r is None:
            raise NoticeRefused(f"no undelivered notice #{notice_id} (sent, given up or unknown)")
        conn.execute(update(OUTBOX).where(OUTBOX.c.id == notice_id).values(**values))
        detail: dict[str, Any] = {
            "notice": r.id,
            "key": r.key,
            "contact": r.contact,
            "case": r.case_id,
            "attempts": r.attempts,
        }
        if reason:
            detail["reason"] = reason
        append(conn, head, [Entry(now, actor.operator, actor.terminal, action, None, detail)])
    return _notice(r)


def _notice(r: Any) -> Notice:
    return Notice(
        id=r.id,
        key=r.key,
        contact=r.contact,
        case_id=r.case_id,
        kind=_kind(r.payload),
        attempts=r.attempts,
        created_at=r.created_at,
        next_attempt_at=r.next_attempt_at,
        last_error=r.last_error,
    )


def _kind(payload: str) -> str:
    try:
        ev = json.loads(payload)
    except ValueError:
        return "?"
    return str(ev.get("kind", "?")) if isinstance(ev, dict) else "?"
