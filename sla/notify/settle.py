"""Settling a target's batch: each row sent, or retried later (jittered, capped backoff).

A notice is never dropped by the machine: it is retried until delivered or until a person
gives up on it (`tafang outbox give-up`). Only rows actually posted are charged an attempt:
messages behind a failure in the batch (`untried`) wait with the failed one, uncharged, and
messages claimed but never started (`deferred`) are due again at once; both give their
rate-window slots back.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta

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
    """Seconds before the next try after `attempts` failures: doubling, jittered, never more
    than `backoff_cap` (at the cap the jitter spreads the tries below it)."""
    base = s.backoff_base * 2 ** min(max(0, attempts - 1), 32)
    wait = base * random.uniform(1 - s.jitter, 1 + s.jitter)
    return wait if wait <= s.backoff_cap else s.backoff_cap * random.uniform(1 - s.jitter, 1)


def settle(
    store: Store,
    plan: Plan,
    outcomes: list[Outcome],
    deferred: list[Message],
    untried: list[Message],
    now: datetime,
    ended: datetime,
    s: NotifySettings,
) -> tuple[int, int, int]:
    """Write a target's outcomes and release what was not tried; returns (sent, failed, 0).

    Sent rows carry the claim's `now`; the backoff counts from `ended` (a batch may have
    run for many seconds, in the background). The last number (rows given up by the
    machine) is always 0 now: kept for the report's shape."""
    sent = failed = 0
    retry_at: datetime | None = None
    with store.engine.begin() as conn:
        for msg, err in outcomes:
            if err is None:
                sent += _sent(conn, msg, now)
                continue
            at = _failed(conn, msg, err, ended, s)
            failed += len(msg.rows)
            retry_at = at if retry_at is None else min(retry_at, at)
        if untried:
            _wait_behind(conn, untried, retry_at or ended, outcomes)
            _unreserve(conn, plan.target, [m.key for m in untried], now)
        if deferred:
            _release(conn, plan.target, deferred, now)
    return sent, failed, 0


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
) -> datetime:
    """Each row of a failed message: charged one attempt, due again after its backoff.
    Returns the earliest retry time."""
    first: datetime | None = None
    for r in msg.rows:
        tries = r.attempts + 1
        at = ended + timedelta(seconds=backoff(tries, s))
        first = at if first is None else min(first, at)
        if tries in (8, 16) or tries % 50 == 0:  # said now and then, not at every retry
            log.error(
                "notification %s to %s still undelivered after %d tries: %s",
                r.key,
                r.contact,
                tries,
                err,
            )
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id == r.id, OUTBOX.c.status == "pending")
            .values(attempts=tries, last_error=err[:1000], next_attempt_at=at)
        )
    assert first is not None
    return first


def _wait_behind(
    conn: Connection, msgs: list[Message], at: datetime, outcomes: list[Outcome]
) -> None:
    """Messages not tried after a failure: not charged, due again with the failed one."""
    why = next((e for _m, e in outcomes if e), "") or ""
    ids = [r.id for m in msgs for r in m.rows]
    for i in range(0, len(ids), 500):
        conn.execute(
            update(OUTBOX)
            .where(OUTBOX.c.id.in_(ids[i : i + 500]), OUTBOX.c.status == "pending")
            .values(next_attempt_at=at, last_error=f"not tried: {why}"[:1000])
        )


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
