"""The store side of an escalation: the transaction that raises due cases up the tower.

The store is the only code that changes a case, so the sweep's writes live here; *what* to do
with a due case is asked of a planner (`sla.policy.Policy.plan_escalation`) passed in. Each
batch is one transaction with the record head locked: the case is re-read inside it (a case
acknowledged a millisecond earlier has no running clock and is left alone), the escalation row
(unique case, clock, level) makes each step happen once, and the case update, the record
entry and the outbox notification commit together or not at all.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Integer, bindparam, exists, func, select, update
from tafang.store.config import LEVELS
from tafang.store.db import UNREAD, insert_new_stmt
from tafang.store.models import END_STATUSES, Case, Escalation
from tafang.store.outbox import enqueue_many, notice
from tafang.store.record import Entry, append
from tafang.store.tell import officer_notice

CASES = Case.__table__
ESCALATIONS = Escalation.__table__
DAEMON_OPERATOR = "daemon"


class StepLike(Protocol):
    """What a planner returns for a case that must go up now (see `sla.policy.Step`)."""

    clock: str
    from_level: int
    level: int
    level_name: str
    due_at: datetime
    catch_up: bool


Planner = Callable[[Mapping[str, Any], datetime], StepLike | None]
_EscKey = tuple[int, str, int]  # (case id, clock as recorded, level)


@dataclass(frozen=True, slots=True)
class EscalationResult:
    """One escalation made (committed) by a sweep."""

    case_id: int
    clock: str  # the clock as recorded (a reopened case's later cycles get "dispatch:2" …)
    from_level: int
    level: int
    level_name: str
    due_at: datetime
    fired_at: datetime
    lateness_ms: float
    catch_up: bool
    key: str  # outbox idempotency key
    notified: bool  # False when the escalation row already existed (nothing queued twice)


def outbox_key(case_id: int, clock: str, level: int) -> str:
    """Stable idempotency key: the same escalation always has the same key."""
    return f"esc-{case_id}-{clock}-{level}"


def next_deadline(engine: Engine) -> datetime | None:
    """When the sweep must run next: the earliest `next_check_at` (cheap via its index)."""
    with engine.connect() as conn:
        return _earliest_check(conn)


def escalate_due(
    store: Any,
    plan: Planner,
    now: datetime,
    *,
    batch: int = 1000,
    operator: str = DAEMON_OPERATOR,
    terminal: str | None = None,
    next_due: Callable[[datetime | None], None] | None = None,
) -> list[EscalationResult]:
    """Escalate every case whose `next_check_at <= now`, `batch` cases per transaction.

    `store` is a `store.cases.Store` (typed loosely to keep this module free of a cycle).
    On PostgreSQL the batch is selected `FOR UPDATE SKIP LOCKED`, so concurrent sweepers
    never wait on each other's rows; the unique escalation key keeps each step once.
    `next_due`, if given, is told the earliest `next_check_at` as the last batch leaves it,
    read inside that batch's transaction just before its commit (with the batch's writes and
    the head's save, in one round trip when pipelined): the daemon arms its next sweep while
    the commit is still under way, not after it and another read.
    """
    terminal = terminal or socket.gethostname()
    out: list[EscalationResult] = []
    seen: set[int] = set()
    last = [False]

    def arm(conn: Connection) -> None:
        if last[0] and next_due is not None:
            next_due(_earliest_check(conn))

    while True:
        with store.write(pipeline=True, then=arm) as (conn, head):
            rows = _select_due(conn, now, batch)
            fresh = [r for r in rows if r["id"] not in seen]
            seen.update(r["id"] for r in rows)
            if fresh:
                out.extend(_apply(conn, head, store, plan, fresh, now, operator, terminal))
            last[0] = len(rows) < batch or not fresh
        if last[0]:
            return out


_HAS_RECORD = "_has_escalations"  # the due select's flag: any escalation on record yet


class _Rehearsed(Exception):
    """Ends `rehearse`'s transaction: rolled back, as every exception does."""


def rehearse(store: Any, plan: Planner, now: datetime, *, terminal: str | None = None) -> float:
    """Escalate a stand-in case (id 0: no case has it) in one sweep transaction, then roll
    it all back; returns its milliseconds.

    The daemon does it once when it starts leading: the first escalation after a start then
    costs what any does (issue 15: 15-26 ms against ~5, its statements compiled and its code
    run for the first time, and the case due next waited for it). Nothing of it is kept:
    no escalation, notice, record entry or head move (the record's NOTIFY goes at commit)."""
    t0 = time.perf_counter()
    case = {c.name: None for c in CASES.c}
    grids = store.d.tower.grids
    case.update(id=0, source="rehearsal", external_id="", title="", description="",
                status="new", priority="normal", grid=grids[0].code if grids else None,
                received_at=now - timedelta(hours=1), version=1, escalation_level=0)  # fmt: skip
    case.update(store.clocks.start(case))
    case[_HAS_RECORD] = False
    terminal = terminal or socket.gethostname()

    def end(conn: Connection) -> None:  # after the head's save, as the sweep's `then`
        _earliest_check(conn)
        raise _Rehearsed

    try:
        with store.write(pipeline=True, then=end) as (conn, head):
            _apply(conn, head, store, plan, [case], now, DAEMON_OPERATOR, terminal)
    except _Rehearsed:
        pass
    return (time.perf_counter() - t0) * 1000


# The sweep's reads, built once: a statement built in every sweep cost its construction and
# its cache key each time (a sweep is ~10 statements; this is Python on the sweep's path).
_EARLIEST = select(func.min(CASES.c.next_check_at)).where(CASES.c.next_check_at.is_not(None))
_DUE = (
    select(CASES, exists().where(ESCALATIONS.c.case_id == CASES.c.id).label(_HAS_RECORD))
    .where(CASES.c.next_check_at.is_not(None))
    .where(CASES.c.next_check_at <= bindparam("now"))
    .order_by(CASES.c.next_check_at, CASES.c.id)
    .limit(bindparam("batch", type_=Integer))
)
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)  # PostgreSQL: sweepers never wait
_RECORDED = select(
    ESCALATIONS.c.case_id, ESCALATIONS.c.clock, ESCALATIONS.c.level, ESCALATIONS.c.due_at
).where(ESCALATIONS.c.case_id.in_(bindparam("ids", expanding=True)))


def _earliest_check(conn: Connection) -> datetime | None:
    return conn.execute(_EARLIEST).scalar()


def _select_due(conn: Connection, now: datetime, batch: int) -> list[dict[str, Any]]:
    """The due cases (locked on PostgreSQL), each with whether it has escalations on record
    (`_HAS_RECORD`: most have none, and their recorded rows need no read of their own)."""
    q = _DUE_LOCKED if conn.dialect.name == "postgresql" else _DUE
    return [dict(r._mapping) for r in conn.execute(q, {"now": now, "batch": batch})]


def _apply(
    conn: Connection,
    head: Any,
    store: Any,
    plan: Planner,
    rows: list[dict[str, Any]],
    now: datetime,
    operator: str,
    terminal: str,
) -> list[EscalationResult]:
    """One batch: each due case escalated (or its next check moved), then written at once."""
    batch = _Batch(conn, head, store, now, operator, terminal, _recorded(conn, rows))
    for case in rows:
        del case[_HAS_RECORD]
        ended = case["status"] in END_STATUSES
        step = None if ended else plan(case, now)
        if step is None:
            batch.recheck(case, ended)
        else:
            batch.escalate(case, step)
    batch.write()
    return batch.results


def _recorded(conn: Connection, rows: list[dict[str, Any]]) -> dict[_EscKey, datetime]:
    """The escalations already recorded for these cases: (case, clock, level) -> due_at."""
    ids = [r["id"] for r in rows if r[_HAS_RECORD]]
    if not ids:
        return {}
    found = conn.execute(_RECORDED, {"ids": ids})
    return {(r.case_id, r.clock, r.level): r.due_at for r in found}


@dataclass(frozen=True, slots=True)
class _Planned:
    """A case to raise in this batch: its step, the clock as recorded, and whether the
    escalation row is new (not among the rows recorded before the batch)."""

    case: dict[str, Any]
    step: StepLike
    clock: str
    lateness: float
    fresh: bool


@dataclass
class _Batch:
    """One batch's transaction: what it escalated, and the writes it owes at the end."""

    conn: Connection
    head: Any
    store: Any
    now: datetime
    operator: str
    terminal: str
    existing: dict[_EscKey, datetime]
    results: list[EscalationResult] = field(default_factory=list)
    case_updates: list[dict[str, Any]] = field(default_factory=list)
    rechecks: list[dict[str, Any]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    planned: list[_Planned] = field(default_factory=list)

    def recheck(self, case: dict[str, Any], ended: bool) -> None:
        """Nothing to escalate: only move the case's next check if it changed."""
        nc = None if ended else self.store.clocks.next_check(case)
        if nc != case["next_check_at"]:
            self.rechecks.append({"b_id": case["id"], "b_next": nc})

    def escalate(self, case: dict[str, Any], step: StepLike) -> None:
        """Raise the case one step: planned here, written with the batch (`write`)."""
        cid = case["id"]
        clock = _label(self.existing, cid, step)
        lateness = round((self.now - step.due_at).total_seconds() * 1000, 3)
        fresh = (cid, clock, step.level) not in self.existing
        self.existing[(cid, clock, step.level)] = step.due_at
        self.planned.append(_Planned(case, step, clock, lateness, fresh))
        self.case_updates.append(self._case_update(case, step))

    def _settle(self) -> None:
        """The escalation rows once (one multi-row INSERT), then per case the record entry,
        the notifications (only with a new escalation row) and the result.

        One statement for the batch, not one per case: building and compiling a statement
        per row cost ~1–2 ms a case, so a storm of 1,000 took seconds."""
        _insert_escalations(self.conn, self.planned, self.now, self.operator)
        notices: list[dict[str, Any]] = []
        d, now = self.store.d, self.now
        for p in self.planned:
            cid, step, new = p.case["id"], p.step, p.fresh
            detail = _detail(p.clock, step, p.lateness, new)
            self.entries.append(Entry(now, self.operator, self.terminal, "escalate", cid, detail))
            key = outbox_key(cid, p.clock, step.level)
            if new:
                event = _event(d, p.case, p.clock, step, now, p.lateness)
                contact = d.contact_name(step.level, p.case["grid"])
                notices.append(notice(key=key, contact=contact, case_id=cid, event=event, now=now))
                new_case = {**p.case, "escalation_level": step.level, "escalated_at": now}
                told = officer_notice(d, "escalate", new_case, by=self.operator, level=step.level)
                if told is not None:
                    notices.append(
                        notice(
                            key=f"tell-{key}", contact=told[0], case_id=cid, event=told[1], now=now
                        )
                    )
            self.results.append(_result(cid, p.clock, step, now, p.lateness, key, new))
        enqueue_many(self.conn, notices)

    def _case_update(self, case: dict[str, Any], step: StepLike) -> dict[str, Any]:
        new_case = {**case, "escalation_level": step.level, "escalated_at": self.now}
        self.head.change_seq += 1
        return {
            "b_id": case["id"],
            "b_level": step.level,
            "b_at": self.now,
            "b_next": self.store.clocks.next_check(new_case),
            "b_version": case["version"] + 1,
            "b_updated_at": self.now,
            "b_by": self.operator,
            "b_terminal": self.terminal,
            "b_seq": self.head.change_seq,
        }

    def write(self) -> None:
        """The batch's escalations, case updates, next-check moves and record entries."""
        if self.planned:
            self._settle()
        if self.case_updates:
            self.conn.execute(_UPDATE_ESCALATED, self.case_updates, execution_options=UNREAD)
        if self.rechecks:
            # Only the sweep's own bookkeeping column: not a change a terminal needs to see.
            self.conn.execute(_UPDATE_NEXT_CHECK, self.rechecks, execution_options=UNREAD)
        append(self.conn, self.head, self.entries)


_UPDATE_ESCALATED = (
    update(CASES)
    .where(CASES.c.id == bindparam("b_id"))
    .values(
        escalation_level=bindparam("b_level"),
        escalated_at=bindparam("b_at"),
        next_check_at=bindparam("b_next"),
        version=bindparam("b_version"),
        updated_at=bindparam("b_updated_at"),
        updated_by=bindparam("b_by"),
        updated_terminal=bindparam("b_terminal"),
        updated_seq=bindparam("b_seq"),
    )
)
_UPDATE_NEXT_CHECK = (
    update(CASES).where(CASES.c.id == bindparam("b_id")).values(next_check_at=bindparam("b_next"))
)


def _detail(clock: str, step: StepLike, lateness: float, inserted: bool) -> dict[str, Any]:
    """The record entry's detail of one escalation."""
    detail: dict[str, Any] = {
        "clock": clock,
        "from_level": step.from_level,
        "level": step.level,
        "level_name": LEVELS[step.level],
        "due_at": step.due_at.isoformat(),
        "lateness_ms": lateness,
        "catch_up": step.catch_up,
    }
    if not inserted:
        detail["already_recorded"] = True
    return detail


def _result(
    cid: int,
    clock: str,
    step: StepLike,
    now: datetime,
    lateness: float,
    key: str,
    inserted: bool,
) -> EscalationResult:
    return EscalationResult(
        case_id=cid,
        clock=clock,
        from_level=step.from_level,
        level=step.level,
        level_name=LEVELS[step.level],
        due_at=step.due_at,
        fired_at=now,
        lateness_ms=lateness,
        catch_up=step.catch_up,
        key=key,
        notified=inserted,
    )


def _label(existing: Mapping[tuple[int, str, int], datetime], cid: int, step: StepLike) -> str:
    """The clock name to record: a later cycle of the same clock (the case was reopened and
    its level reset) gets "dispatch:2", so it escalates again instead of colliding with the
    first life's rows; the same breach seen twice keeps its name and is not repeated."""
    label, n = step.clock, 1
    while True:
        due = existing.get((cid, label, step.level))
        if due is None or due == step.due_at:
            return label
        n += 1
        label = f"{step.clock}:{n}"


def _insert_escalations(
    conn: Connection, planned: list[_Planned], now: datetime, operator: str
) -> None:
    """Insert the planned escalations not recorded before (`fresh`; one statement, not
    waited for).

    Nothing else can have recorded one of them meanwhile: the recorded rows were read after
    the batch's cases were locked (PostgreSQL: FOR UPDATE, and every sweep locks a case
    before it escalates it; SQLite: the write lock), so no RETURNING round trip is needed to
    tell. Were one there after all, the row is skipped (the unique key) and its notice, whose
    outbox key is the escalation's, queued once all the same."""
    rows = [
        dict(
            case_id=p.case["id"],
            clock=p.clock,
            level=p.step.level,
            due_at=p.step.due_at,
            fired_at=now,
            lateness_ms=p.lateness,
            by=operator,
        )
        for p in planned
        if p.fresh
    ]
    if rows:
        stmt = insert_new_stmt(conn.dialect.name, ESCALATIONS)
        conn.execute(stmt, rows, execution_options=UNREAD)


def _event(
    d: Any,
    case: Mapping[str, Any],
    clock: str,
    step: StepLike,
    now: datetime,
    lateness: float,
) -> dict[str, Any]:
    """The notification as data; `sla.notify` renders it for the contact's format."""
    grid = d.grids_by_code.get(case["grid"] or "")
    cat = d.categories_by_code.get(case["category"] or "")
    circles = d.circles_of(case["grid"]) if case["grid"] else None
    contact = d.contact_for(step.level)
    circle = d.circle_at(step.level, case["grid"])
    named = d.contact_name(step.level, case["grid"])
    if "@" in named:  # the circle's own contact at this level
        contact = next(c for c in d.contacts if f"{c.level}@{c.circle}" == named)
    return {
        "kind": "escalation",
        "case_id": case["id"],
        "title": case["title"] or (case["description"] or "")[:80],
        "category": case["category"],
        "category_name": cat.name if cat else None,
        "grid": case["grid"],
        "grid_label": grid.label if grid else None,
        "circles": list(circles) if circles else None,
        "location": case["location"],
        "status": case["status"],
        "priority": case["priority"],
        "received_at": case["received_at"].isoformat(),
        "clock": clock,
        "from_level": step.from_level,
        "level": step.level,
        "level_name": LEVELS[step.level],
        "contact_name": contact.name if contact else None,
        "circle": circle,
        "due_at": step.due_at.isoformat(),
        "fired_at": now.isoformat(),
        "lateness_ms": lateness,
        "catch_up": step.catch_up,
    }
