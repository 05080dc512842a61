"""The outbox as operators see it: counts, dead rows, and a requeue after a contact is fixed
(for the console and the `tafang outbox` command)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from tafang.store.cases import Store
from tafang.store.models import Outbox

OUTBOX = Outbox.__table__


def outbox_summary(store: Store, *, dead_limit: int = 50) -> dict[str, Any]:
    """Counts per status (and per contact) plus the newest dead rows, for the console."""
    with store.read_engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.contact, OUTBOX.c.status, func.count()).group_by(
                OUTBOX.c.contact, OUTBOX.c.status
            )
        ).all()
        oldest = conn.execute(
            select(func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == "pending")
        ).scalar()
        dead = conn.execute(
            select(
                OUTBOX.c.id,
                OUTBOX.c.key,
                OUTBOX.c.contact,
                OUTBOX.c.case_id,
                OUTBOX.c.attempts,
                OUTBOX.c.last_error,
                OUTBOX.c.created_at,
            )
            .where(OUTBOX.c.status == "dead")
            .order_by(OUTBOX.c.id.desc())
            .limit(dead_limit)
        ).all()
    totals = {"pending": 0, "sent": 0, "dead": 0, "given_up": 0}
    by_contact: dict[str, dict[str, int]] = {}
    for contact, status, n in rows:
        totals[status] = totals.get(status, 0) + n
        by_contact.setdefault(contact, {"pending": 0, "sent": 0, "dead": 0})[status] = n
    return {
        **totals,
        "oldest_pending_at": oldest,
        "by_contact": by_contact,
        "dead_rows": [dict(r._mapping) for r in dead],
    }


def requeue_dead(
    store: Store, ids: Sequence[int] | None = None, *, now: datetime | None = None
) -> int:
    """Put rows an older version left `dead` back in the queue; returns the count. (Rows no
    longer die: a notice is retried until delivered or given up by a person.)"""
    now = now or datetime.now(UTC)
    q = update(OUTBOX).where(OUTBOX.c.status == "dead")
    if ids is not None:
        q = q.where(OUTBOX.c.id.in_(list(ids)))
    with store.engine.begin() as conn:
        return conn.execute(q.values(status="pending", attempts=0, next_attempt_at=now)).rowcount
