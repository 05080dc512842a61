"""Reads the console makes besides the lifecycle's own: plain views and numbers out.

The console asks these and runs no SQL of its own; each takes the `Store` and reads through
its read engine, so a terminal's polls never queue behind its own writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Engine, Select, Table, and_, event, func, or_, select
from sqlalchemy import case as sql_case
from tafang.store.cases import OPEN_SQL
from tafang.store.clocks import RUNNING
from tafang.store.models import Case, Heartbeat
from tafang.store.views import CASE_FIELDS, CaseView

if TYPE_CHECKING:
    from tafang.store.cases import Store
    from tafang.store.notices import Backlog

_TIME_FIELDS = frozenset(f.name for f in fields(CaseView) if "datetime" in str(f.type))
_BOOL_FIELDS = frozenset(f.name for f in fields(CaseView) if str(f.type) == "bool")
_OPEN_SELECT = (
    f"SELECT {', '.join(CASE_FIELDS)} FROM cases "
    "WHERE status NOT IN ('closed', 'void', 'merged') ORDER BY received_at, id"
)


def running_due(t: Table) -> ColumnElement[Any]:
    """The deadline `Clocks.clock_state` shows for a case (its earliest running clock's), as
    SQL: NULL when no clock runs (held, handled). Made from RUNNING, the one rule."""
    whens = []
    for status, clocks in RUNNING.items():
        if not clocks:
            continue
        due: ColumnElement[Any] = t.c[f"{clocks[0]}_due"]
        for clock in clocks[1:]:
            other = t.c[f"{clock}_due"]
            due = sql_case(
                (or_(due.is_(None), and_(other.is_not(None), other < due)), other), else_=due
            )
        whens.append((t.c.status == status, due))
    return sql_case(*whens, else_=None)


def _most_urgent(n: int) -> Select[Any]:
    t = Case.__table__
    due = running_due(t)
    return (
        select(*(t.c[f] for f in CASE_FIELDS))
        .where(OPEN_SQL)
        .order_by(due.is_(None), due, t.c.id)
        .limit(n)
    )


def open_cases(store: Store, most_urgent: int | None = None) -> list[CaseView]:
    """Every open case, as `store.cases("open")` returns them; with `most_urgent`, only that
    many, those whose deadline comes first (the console shows them while it reads the rest).

    On SQLite the rows are read straight from the driver and the times parsed with
    `datetime.fromisoformat` (how SQLAlchemy stores them: UTC, no offset): about four times
    faster than the ORM's per-value type processing, which dominates the console's first
    frame with 10k open cases. Other databases go through SQLAlchemy.
    """
    engine = store.read_engine
    if engine.dialect.name != "sqlite":
        if most_urgent is None:
            return store.cases("open")
        with engine.connect() as conn:
            return [CaseView(*r) for r in conn.execute(_most_urgent(most_urgent))]
    sql = _OPEN_SELECT
    if most_urgent is not None:
        sql = str(_most_urgent(most_urgent).compile(engine, compile_kwargs={"literal_binds": True}))
    conn = engine.raw_connection()
    try:
        cur = conn.cursor()
        cur.execute(sql)
        rows = cur.fetchall()
    finally:
        conn.close()
    times = [i for i, f in enumerate(CASE_FIELDS) if f in _TIME_FIELDS]
    bools = [i for i, f in enumerate(CASE_FIELDS) if f in _BOOL_FIELDS]
    parse = datetime.fromisoformat  # "+00:00" appended: 6x faster than .replace(tzinfo=)
    out = []
    for r in rows:
        v = list(r)
        for i in times:
            if v[i] is not None:
                v[i] = parse(v[i] + "+00:00")
        for i in bools:
            v[i] = bool(v[i])
        out.append(CaseView(*v))
    return out


def undelivered_notices(store: Store) -> Backlog:
    """How many escalation notices wait undelivered, and since when (the header shows it)."""
    from tafang.store.notices import backlog

    return backlog(store)


def daemon_heartbeat(store: Store) -> datetime | None:
    """When the daemon last said it was alive (None: never)."""
    t = Heartbeat.__table__
    with store.read_engine.connect() as conn:
        return conn.execute(select(t.c.at).where(t.c.name == "daemon")).scalar_one_or_none()


STAGE_DONE = (
    ("respond", "acknowledged_at"),
    ("dispatch", "dispatched_at"),
    ("arrive", "arrived_at"),
)
"""The 1-3-5 stages and the column that says each was done."""


def compliance_by_stage(store: Store, since: datetime, now: datetime) -> dict[str, tuple[int, int]]:
    """1-3-5 compliance of cases received since `since`, per stage: {stage: (met, due)}.

    A stage counts once it was done (met if on time) or its deadline passed while it still
    ran; cases voided or merged before a stage do not count for it. One aggregate query, so
    a busy day costs the poll thread one row, not thousands.
    """
    t = Case.__table__
    met: list[Any] = []
    due: list[Any] = []
    for stage, done_name in STAGE_DONE:
        done_col = t.c[done_name]
        dl = t.c[f"{stage}_due"]
        running = [st for st, clocks in RUNNING.items() if stage in clocks]
        met.append(func.sum(sql_case((and_(done_col.is_not(None), done_col <= dl), 1), else_=0)))
        due.append(
            func.sum(
                sql_case(
                    (and_(dl.is_not(None), done_col.is_not(None)), 1),
                    (and_(dl.is_not(None), t.c.status.in_(running), dl < now), 1),
                    else_=0,
                )
            )
        )
    q = select(*met, *due).where(t.c.received_at >= since)
    with store.read_engine.connect() as conn:
        row = conn.execute(q).one()
    n = len(STAGE_DONE)
    return {s: (row[i] or 0, row[n + i] or 0) for i, (s, _) in enumerate(STAGE_DONE)}


def todays_compliance(store: Store, since: datetime, now: datetime) -> tuple[int, int]:
    """1-3-5 compliance over the three stages together: (met, due); see `compliance_by_stage`."""
    per = compliance_by_stage(store, since, now).values()
    return sum(m for m, _ in per), sum(d for _, d in per)


def day_flow(store: Store, since: datetime) -> tuple[int, int]:
    """Cases received and cases closed since `since` (the wall's day so far): one round
    trip, two counts each read from its own index (today's entries, not the whole table)."""
    t = Case.__table__
    received = select(func.count()).where(t.c.received_at >= since).scalar_subquery()
    closed = select(func.count()).where(t.c.closed_at >= since).scalar_subquery()
    with store.read_engine.connect() as conn:
        row = conn.execute(select(received, closed)).one()
    return row[0] or 0, row[1] or 0


def received_since(store: Store, starts: Sequence[datetime]) -> list[int]:
    """Cases received since each of `starts` (the header's hours): one round trip, each
    count a range of the received index."""
    t = Case.__table__
    counts = [select(func.count()).where(t.c.received_at >= s).scalar_subquery() for s in starts]
    if not counts:
        return []
    with store.read_engine.connect() as conn:
        return [n or 0 for n in conn.execute(select(*counts)).one()]


def partners_handled(store: Store, since: datetime) -> dict[str, int]:
    """Cases each partner agency handled since `since`, by partner code."""
    t = Case.__table__
    q = (
        select(t.c.assignee, func.count())
        .where(t.c.assignee_kind == "partner")
        .where(t.c.handled_at >= since)
        .group_by(t.c.assignee)
    )
    with store.read_engine.connect() as conn:
        return {a: n for a, n in conn.execute(q).all()}


def read_only(engine: Engine) -> Engine:
    """Make every connection `engine` opens refuse writes, so a viewer (the wall display) cannot
    change the store even through a bug: SQLite `PRAGMA query_only`, PostgreSQL read-only
    transactions for the session. Call it before the engine's first connection."""

    @event.listens_for(engine, "connect")
    def _refuse_writes(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        cur = dbapi_conn.cursor()
        if engine.dialect.name == "sqlite":
            cur.execute("PRAGMA query_only = ON")
        else:
            cur.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            dbapi_conn.commit()  # psycopg opened a transaction for the SET: keep it
        cur.close()

    return engine
