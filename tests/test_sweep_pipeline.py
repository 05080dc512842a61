"""Issue 15 on PostgreSQL: the sweep's transaction runs pipelined (store/db.py `pipelined`):
its writes are sent without waiting, and it waits for the server only where it reads. A
write that fails still fails the whole transaction. A real server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, select
from tafang.store.db import UNREAD
from tafang.store.escalation import ESCALATIONS, escalate_due, rehearse
from tafang.store.models import ChainHead
from tafang.store.record import lock_head, save_head

from tests.conftest import require_pg
from tests.test_escalate import T0, bulk_cases, counts, open_store


@contextmanager
def waits(engine: Engine) -> Iterator[list[str]]:
    """The statements executed on `engine` that waited for the server's answer, as
    (pipelined or not) each does unless it is `UNREAD` inside a pipeline."""
    seen: list[str] = []

    def before(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: Any
    ) -> None:
        opts = context.execution_options
        if opts.get("pipeline") is None or not opts.get("unread"):
            seen.append(" ".join(statement.split()[:3]))

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def test_a_sweep_waits_for_the_server_only_where_it_reads(pg_url: str) -> None:
    """One sweep of three due cases: the head (with the BEGIN), the due cases, the next
    deadline; the escalations, notices, case updates, record entries and the head's save go
    with the last of those reads, then the COMMIT. A case with escalations on record has
    them read: one read more."""
    require_pg()
    store = open_store(pg_url)
    try:
        ids = bulk_cases(store, 3, T0)
        told: list[Any] = []
        with waits(store.engine) as seen:
            done = escalate_due(
                store,
                store.clocks.plan_escalation,
                T0 + timedelta(seconds=61),
                next_due=told.append,
            )
        assert sorted(r.case_id for r in done) == ids and all(r.notified for r in done)
        assert [s.split()[0] for s in seen] == ["SELECT", "SELECT", "SELECT"], seen
        assert told and told[0] is not None  # the cases' next level, read before the commit
        c = counts(store)
        assert len(c["esc"]) == 3 and len(c["outbox"]) >= 3 and len(c["audit"]) >= 3

        # Case 1 again, one level up: it has an escalation on record, so those are read.
        with waits(store.engine) as seen:
            done = escalate_due(
                store,
                store.clocks.plan_escalation,
                T0 + timedelta(seconds=300),
                next_due=told.append,
            )
        assert done and {r.from_level for r in done} == {1}
        assert len(seen) == 4 and "SELECT escalations.case_id, escalations.clock," in seen, seen
    finally:
        store.engine.dispose()


def test_a_failed_unread_write_fails_its_whole_transaction(pg_url: str) -> None:
    """An escalation row refused by its unique key, sent without waiting: the error comes
    with the next read (or when the block ends), nothing of the transaction is kept, and the
    connection serves the next transaction as usual."""
    require_pg()
    store = open_store(pg_url)
    try:
        (cid,) = bulk_cases(store, 1, T0)
        row = dict(case_id=cid, clock="respond", level=1, due_at=T0, fired_at=T0,
                   lateness_ms=0.0, by="test")  # fmt: skip
        with store.engine.begin() as conn:
            conn.execute(insert(ESCALATIONS).values(**row))
        head_before = _head(store)
        for read_after in (True, False):
            with pytest.raises(Exception, match="uq_escalation"):
                with store.write(pipeline=True) as (conn, head):
                    head.change_seq += 1
                    conn.execute(insert(ESCALATIONS).values(**row), execution_options=UNREAD)
                    if read_after:
                        conn.execute(select(ESCALATIONS.c.id)).all()
            assert _head(store) == head_before
        with store.write(pipeline=True) as (conn, head):  # the pool's connection is clean
            head.change_seq += 1
            assert conn.execute(select(ESCALATIONS.c.case_id)).scalars().all() == [cid]
        assert _head(store) == head_before + 1
    finally:
        store.engine.dispose()


def _head(store: Any) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(ChainHead.__table__.c.change_seq)).scalar_one()


def test_a_rehearsal_keeps_nothing(db_url: str) -> None:
    """The daemon's warm-up at start: a stand-in escalated and rolled back. No escalation,
    notice, record entry or head move stays, on either database; a real sweep after it
    escalates as usual."""
    store = open_store(db_url)
    try:
        ids = bulk_cases(store, 2, T0)
        before, head = counts(store), _head(store)
        ms = rehearse(store, store.clocks.plan_escalation, T0 + timedelta(seconds=61))
        assert ms > 0
        assert counts(store) == before and _head(store) == head
        done = escalate_due(store, store.clocks.plan_escalation, T0 + timedelta(seconds=61))
        assert sorted(r.case_id for r in done) == ids
    finally:
        store.engine.dispose()


def test_a_pipelined_write_leaves_the_head_statements_whole(pg_url: str) -> None:
    """After a pipelined write whose head save went UNREAD, the head's save that introduces
    a record key (a RETURNING added to a copy of the same statement) still works: asking a
    compiled statement whether it returns rows must not memoize the statement's columns."""
    require_pg()
    store = open_store(pg_url)
    try:
        with store.write(pipeline=True):
            pass  # nothing moved: the head saved with `_SAVE_HEAD`, UNREAD
        with store.engine.connect() as conn, conn.begin() as tx:
            head = lock_head(conn)
            head.introduced, head.keyed_from = True, head.seq + 1
            head.key_id, head.key_mark = "k", "m"
            save_head(conn, head, notify="tafang_test")
            tx.rollback()
    finally:
        store.engine.dispose()
