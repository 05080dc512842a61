"""Claiming due outbox rows, within each robot's rate window, in one short write transaction.

Rows are *claimed* by pushing their `next_attempt_at` out by a lease, so a second daemon skips
rows the first is sending; a crash mid-send only delays them until the lease ends. The rate
limit (`rate_per_minute` in any rolling window) counts messages per robot in `notify_sends`,
reserved in the same transaction as the lease, so restarts and a second daemon see the same
window.

Reading and planning (decoding hundreds of payloads: up to 460 ms at load 12) happen *before*
the write transaction, on a reader, so they never hold SQLite's write lock against a sweep.
The write transaction then only leases, conditionally: each row still pending, still due,
with the attempts it was read with, and each target's window use still what was planned.
If anything moved in between (a second daemon claimed or sent), it is rolled back and the
claim is done again the old way, reading and planning under the lock (on PostgreSQL
`FOR UPDATE SKIP LOCKED` and a transaction-level advisory lock serialise claims).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, insert, select, text, update
from tafang.sla.notify.plan import NO_CONTACT, Plan, Row, robot_key, split, unsendable
from tafang.sla.notify.settings import NotifySettings
from tafang.store.cases import Store
from tafang.store.config import Contact, Deployment
from tafang.store.models import NotifySend, Outbox
from tafang.store.tell import squad_contact

OUTBOX = Outbox.__table__
SENDS = NotifySend.__table__


@dataclass(frozen=True)
class _Robots:
    """The deployment's contacts per level, their robot (target) and each robot's rate."""

    contacts: dict[str, Contact]
    targets: dict[str, str]  # level -> robot_key
    rates: dict[str, int]  # robot_key -> messages per window

    @classmethod
    def of(cls, d: Deployment) -> _Robots:
        contacts: dict[str, Contact] = {
            f"{c.level}@{c.circle}" if c.circle else c.level: c for c in d.contacts
        }
        for s in d.squads:  # officers are told of their cases through their squad's robot
            if s.robot is not None:
                contacts[squad_contact(s.code)] = s.robot  # type: ignore[assignment]
        if d.notices.alarm is not None:  # stuck notices are told the centre this other way
            contacts["alarm"] = d.notices.alarm
        targets = {lv: robot_key(c) for lv, c in contacts.items()}
        rates: dict[str, int] = {}  # levels sharing a robot share its limit: the strictest
        for lv, t in targets.items():
            rates[t] = min(rates.get(t, contacts[lv].rate_per_minute), contacts[lv].rate_per_minute)
        return cls(contacts, targets, rates)

    def target(self, level: str) -> str:
        return self.targets.get(level, f"{NO_CONTACT}{level}")


def claim(
    store: Store,
    d: Deployment,
    now: datetime,
    s: NotifySettings,
    busy: frozenset[str] = frozenset(),
) -> dict[str, Plan]:
    """Pick due rows, group them by target, split each target's rows into messages within its
    rate window, and lease them (plus reserve their window slots) in one short transaction.

    Rows of `busy` targets (a batch of theirs still in flight here) are left alone."""
    robots = _Robots.of(d)
    due_now = _due_filter(robots, now, busy)
    with store.read_engine.connect() as conn:  # no write lock while reading and planning
        by_target = _due_rows(conn, due_now, robots, s, lock=False)
        if not by_target:
            return {}
        used = _window_use(conn, list(by_target), now, s)
    plans = {t: _plan(t, rows, robots, used, s) for t, rows in by_target.items()}
    with store.engine.connect() as conn:
        with conn.begin() as tx:
            _serialise_claims(conn)
            _sweep_sends(conn, now, s)
            if _window_use(conn, list(plans), now, s) == used:  # no other claim spent it
                planned = len(_planned_rows(plans.values()))
                if _lease_and_reserve(conn, plans.values(), now, s) == planned:
                    return plans
            tx.rollback()  # a second daemon moved something: plan again under the lock
        with conn.begin():
            return _claim_locked(conn, robots, due_now, now, s)


def _claim_locked(
    conn: Connection,
    robots: _Robots,
    due_now: list[ColumnElement],
    now: datetime,
    s: NotifySettings,
) -> dict[str, Plan]:
    """The claim read, planned and leased inside the write transaction (the rare retry)."""
    _serialise_claims(conn)
    by_target = _due_rows(conn, due_now, robots, s, lock=True)
    if not by_target:
        return {}
    _sweep_sends(conn, now, s)
    used = _window_use(conn, list(by_target), now, s)
    plans = {t: _plan(t, rows, robots, used, s) for t, rows in by_target.items()}
    _lease_and_reserve(conn, plans.values(), now, s)
    return plans


def _due_filter(robots: _Robots, now: datetime, busy: frozenset[str]) -> list[ColumnElement]:
    skip = [lv for lv, t in robots.targets.items() if t in busy]
    skip += [t.removeprefix(NO_CONTACT) for t in busy if t.startswith(NO_CONTACT)]
    due_now = [OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= now]
    if skip:
        due_now.append(OUTBOX.c.contact.not_in(skip))
    return due_now


def _serialise_claims(conn: Connection) -> None:
    """On PostgreSQL, one claim at a time: two daemons cannot both spend one rate window."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('tafang:notify-claim'))"))


def _due_rows(
    conn: Connection,
    due_now: list[ColumnElement],
    robots: _Robots,
    s: NotifySettings,
    lock: bool,
) -> dict[str, list[Row]]:
    """The due rows (oldest first, at most `max_rows`), grouped by target."""
    c = OUTBOX.c
    q = (
        select(c.id, c.key, c.contact, c.case_id, c.payload, c.attempts)
        .where(*due_now)
        .order_by(c.next_attempt_at, c.id)
        .limit(s.max_rows)
    )
    if lock and conn.dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    by_target: dict[str, list[Row]] = defaultdict(list)
    for r in conn.execute(q):
        row = Row(r.id, r.key, r.contact, r.case_id, _event(r.payload), r.attempts)
        by_target[robots.target(r.contact)].append(row)
    return by_target


def _window_use(
    conn: Connection, targets: list[str], now: datetime, s: NotifySettings
) -> dict[str, int]:
    """Messages each target sent in the rolling window."""
    window_start = now - timedelta(seconds=s.window)
    q = (
        select(SENDS.c.contact, func.count())
        .where(SENDS.c.contact.in_(targets), SENDS.c.at > window_start)
        .group_by(SENDS.c.contact)
    )
    return {t: int(n) for t, n in conn.execute(q).all()}


def _sweep_sends(conn: Connection, now: datetime, s: NotifySettings) -> None:
    """Old window reservations dropped (well outside any window)."""
    conn.execute(delete(SENDS).where(SENDS.c.at < now - timedelta(seconds=5 * s.window)))


def _plan(
    target: str, rows: list[Row], robots: _Robots, used: dict[str, int], s: NotifySettings
) -> Plan:
    plan = Plan(target, list(dict.fromkeys(r.contact for r in rows)))
    if not plan.has_robot:  # nothing to send to: fail each row visibly
        plan.messages = unsendable(rows)
        return plan
    budget = robots.rates[target] - used.get(target, 0)
    if budget <= 0:
        plan.waiting = len(rows)
        return plan
    plan.messages, plan.waiting = split(rows, budget, robots.contacts, s.digest_max)
    return plan


def _planned_rows(plans: Iterable[Plan]) -> list[Row]:
    return [r for plan in plans for m in plan.messages for r in m.rows]


def _lease_and_reserve(
    conn: Connection, plans: Iterable[Plan], now: datetime, s: NotifySettings
) -> int:
    """Hide the planned rows for the lease (only rows still pending, due and untouched since
    they were read); take their messages' slots in the window. Returns the rows leased."""
    plans = list(plans)
    by_attempts: dict[int, list[int]] = defaultdict(list)
    for r in _planned_rows(plans):
        by_attempts[r.attempts].append(r.id)
    reserve = [
        dict(contact=plan.target, at=now, key=m.key)
        for plan in plans
        if plan.has_robot
        for m in plan.messages
    ]
    lease_until = now + timedelta(seconds=s.lease)
    c = OUTBOX.c
    leased = 0
    for attempts, ids in by_attempts.items():
        for i in range(0, len(ids), 500):
            leased += conn.execute(
                update(OUTBOX)
                .where(
                    c.id.in_(ids[i : i + 500]),
                    c.status == "pending",
                    c.next_attempt_at <= now,
                    c.attempts == attempts,
                )
                .values(next_attempt_at=lease_until)
            ).rowcount
    if reserve:
        conn.execute(insert(SENDS), reserve)
    return leased


def _event(payload: str) -> dict[str, Any]:
    try:
        ev = json.loads(payload)
    except ValueError:
        return {"kind": "unreadable", "raw": payload[:500]}
    return ev if isinstance(ev, dict) else {"kind": "unreadable", "raw": payload[:500]}
