"""The notification outbox: rows written in the same transaction as what they announce.

The payload is the event as data (case, level, clock, lateness …); the delivery job in
`sla.notify` renders it for the contact's format when it sends.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from tafang.store.db import UNREAD, insert_new
from tafang.store.models import Outbox

OUTBOX = Outbox.__table__


def enqueue(
    conn: Connection,
    *,
    key: str,
    contact: str,
    case_id: int | None,
    event: dict[str, Any],
    now: datetime,
) -> None:
    """Queue one notification; the key doubles as the Idempotency-Key header."""
    values = notice(key=key, contact=contact, case_id=case_id, event=event, now=now)
    conn.execute(insert_new(conn, OUTBOX, values))


def notice(
    *, key: str, contact: str, case_id: int | None, event: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """One outbox row's values (for `enqueue_many`)."""
    return dict(
        key=key,
        contact=contact,
        case_id=case_id,
        payload=json.dumps(event, ensure_ascii=False, default=str),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
        last_error="",
    )


def enqueue_many(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Queue many notifications (`notice` rows) in one executemany; a key already queued is
    skipped, as with `enqueue`."""
    if rows:
        conn.execute(insert_new(conn, OUTBOX), rows, execution_options=UNREAD)
