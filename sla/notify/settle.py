"""Settling a target's batch: each row sent, retried later (jittered backoff) or dead.

Messages claimed but never tried give their rate-window slots back and are due again at once.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, delete, update
from tafang.sla.notify.plan import Message, Plan
from tafang.sla.notify.settings import DEFAULT_SETTINGS, NotifySettings
from tafang.store.cases import Store
from tafang.store.models import NotifySend, Outbox

OUTBOX = Outbox.__table__
SENDS = NotifySend.__table__
log = logging.getLogger("tafang.sla.notify")

Outcome = tuple[Message, str | None]  # a message tried, and why it failed (None: sent)


def backoff(attempts: int, s: NotifySettings = DEFAULT_SETTINGS) -> float:
    """Seconds before the next try after `attempts` failures: doubling, capped, jittered."""
    base = min(s.backoff_cap, s.backoff_base * 2 ** max(0, attempts - 1))
    return base * random.uniform(1 - s.jitter, 1 + s.jitter)


def settle(
    store: Store,
    plan: Plan,
    outcomes: list[Outcome],
    deferred: list[Message],
    untried: list[str],
    now: datetime,
    ended: datetime,
    s: NotifySettings,
) -> tuple[int, int, int]:
    """Write a target's outcomes and release what was deferred; returns (sent, failed, dead).

    Sent rows carry the claim's `now`; the backoff counts from `ended` (a batch may have
    run for many seconds, in the background). Messages never sent give their rate-window
    slots back (`untried`, `deferred`)."""
    sent = failed = dead = 0
    with store.engine.begin() as conn:
        for msg, err in outcomes:
            if err is None:
                sent += _sent(conn, msg, now)
                continue
            for_retry, for_dead = _failed(conn, msg, err, ended, s)
            failed, dead = failed + for_retry, dead + for_dead
        if deferred:
            _release(conn, plan.target, deferred, now)
        if untried:
            _unreserve(conn, plan.target, untried, now)
    return sent, failed, dead


def _sent(conn: Connection, msg: Message, now: datetime) -> int:
    ids = [r.id for r in msg.rows]
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "pending")
        .values(status="sent", sent_at=now, attempts=OUTBOX.c.attempts + 1, last_error="")
    )
    return len(ids)


def _failed(
    conn: Connection, msg: Message, err: str, ended: datetime, s: NotifySettings
) -> tuple[int, int]:
    """Each row of a failed message: due again after its backoff, or dead. (retry, dead)."""
    retry = dead = 0
    for r in msg.rows:
        tries = r.attempts + 1
        values: dict[str, Any] = {"attempts": tries, "last_error": err[:1000]}
        if tries >= s.max_attempts:
            values["status"] = "dead"
            dead += 1
            log.error("notification %s to %s is dead: %s", r.key, r.contact, err)
        else:
            values["next_attempt_at"] = ended + timedelta(seconds=backoff(tries, s))
            retry += 1
        conn.execute(
            update(OUTBOX).where(OUTBOX.c.id == r.id, OUTBOX.c.status == "pending").values(**values)
        )
    return retry, dead


def _release(conn: Connection, target: str, msgs: list[Message], now: datetime) -> None:
    """Un-claim messages never tried: due again now, their window slots given back."""
    ids = [r.id for m in msgs for r in m.rows]
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "pending")
        .values(next_attempt_at=now)
    )
    _unreserve(conn, target, [m.key for m in msgs], now)


def _unreserve(conn: Connection, target: str, keys: list[str], now: datetime) -> None:
    conn.execute(
        delete(SENDS).where(SENDS.c.contact == target, SENDS.c.key.in_(keys), SENDS.c.at == now)
    )
