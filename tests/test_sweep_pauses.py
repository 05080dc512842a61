"""Issue 15: what kept a sweep from being on time — the collector's full pass over the
start-up heap (the daemon freezes it once running), the WAL checkpoint inside a sweep's
commit (the daemon checkpoints between deadlines), the outbox's claim holding the write lock
at a deadline (put off while one is near), and a storm's per-case statements (one multi-row
insert a batch now). Behaviour only: no timings asserted."""

from __future__ import annotations

import gc
import io
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from tafang.sla.daemon import JsonLog, _Daemon, run_daemon
from tafang.sla.escalate import sweep
from tafang.sla.notify import DeliveryReport
from tafang.sla.pauses import (
    CHECKPOINT_CLEAR,
    DELIVER_CLEAR,
    DELIVER_MAX_SKIPS,
    SWITCH_INTERVAL,
    ClearOfDeadlines,
    freeze_heap,
)
from tafang.store.checkpoint import checkpoint, own_checkpoints
from tafang.store.escalation import outbox_key
from tafang.store.models import Escalation

from tests.test_escalate import GUDANG, T0, bulk_cases, counts, open_store


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Each test starts and ends with nothing frozen (other tests' heaps stay collectable)
    and the interpreter's own GIL switch interval."""
    gc.unfreeze()
    interval = sys.getswitchinterval()
    yield
    gc.unfreeze()
    sys.setswitchinterval(interval)


def test_freeze_heap_moves_the_survivors_out_of_the_collectors_way(unfrozen: None) -> None:
    kept = [[] for _ in range(1000)]  # lists: objects the collector tracks
    ids = {id(k) for k in kept}
    frozen = freeze_heap()
    assert frozen >= len(kept)
    # None is left for a full collection to walk (the count itself can move at once: another
    # thread freeing a frozen object lowers it, so it is not compared for equality).
    walked = {id(o) for g in range(3) for o in gc.get_objects(generation=g)}
    assert not ids & walked
    # A cycle made after the freeze is still collected: only the old heap is left alone.
    cycle: list[Any] = []
    cycle.append(cycle)
    del cycle
    assert gc.collect() >= 1


def test_the_running_daemon_has_frozen_its_start_up_heap(tmp_path: Any, unfrozen: None) -> None:
    """With an injected clock: the loop freezes after the catch-up sweep, before it runs."""
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    fixed = T0 + timedelta(hours=1)
    stop, log = threading.Event(), io.StringIO()
    seen: dict[str, int] = {}

    def runner() -> None:
        seen["rc"] = run_daemon(store, GUDANG, clock=lambda: fixed, stop_event=stop, log_stream=log)

    th = threading.Thread(target=runner, daemon=True)
    th.start()
    try:
        end = time.monotonic() + 20
        while '"running"' not in log.getvalue() and time.monotonic() < end and th.is_alive():
            time.sleep(0.02)
        assert '"running"' in log.getvalue(), log.getvalue()[-2000:]
        assert gc.get_freeze_count() > 0
        assert sys.getswitchinterval() == SWITCH_INTERVAL
    finally:
        stop.set()
        th.join(15)
        store.engine.dispose()
    assert seen.get("rc") == 0


def test_a_storm_in_one_batch_escalates_each_case_once_with_one_notice(db_url: str) -> None:
    """Many due cases in one batch, one of them already recorded (a crash after the row was
    written): each case goes up once; only the new escalations are notified."""
    store = open_store(db_url)
    try:
        ids = bulk_cases(store, 40, T0)
        now = T0 + timedelta(seconds=61)
        with store.engine.begin() as conn:  # case 1's step already on record
            conn.execute(
                Escalation.__table__.insert().values(
                    case_id=ids[0],
                    clock="respond",
                    level=1,
                    due_at=T0 + timedelta(seconds=60),
                    fired_at=now,
                    lateness_ms=1000.0,
                    by="daemon",
                )
            )
        res = sweep(store, store.clocks, now, batch=1000)  # type: ignore[arg-type]
        assert sorted(r.case_id for r in res) == ids
        assert [r.notified for r in res if r.case_id == ids[0]] == [False]
        assert all(r.notified for r in res if r.case_id != ids[0])
        c = counts(store)
        assert len(c["esc"]) == 40
        keys = {o.key for o in c["outbox"]}
        assert keys == {outbox_key(i, "respond", 1) for i in ids[1:]}
        assert len(c["audit"]) == 40  # each escalation on the record, the old one too
        assert sweep(store, store.clocks, now, batch=1000) == []  # type: ignore[arg-type]
        with store.read_engine.connect() as conn:
            levels = conn.execute(text("SELECT DISTINCT escalation_level FROM cases")).scalars()
            assert set(levels) == {1}
    finally:
        store.engine.dispose()


# ---- the checkpoint: out of the sweep's commit, between deadlines ------------------------
class FakeClock:
    """An injected clock: `now` moves only when the test says."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_work_near_a_deadline_waits_but_not_for_ever() -> None:
    clock = FakeClock(T0)
    pace = ClearOfDeadlines(clock, clear=CHECKPOINT_CLEAR, max_skips=2)
    assert pace.due(None) is True  # nothing armed: now
    assert pace.due(T0 + timedelta(seconds=5)) is True  # the deadline is far
    near = T0 + CHECKPOINT_CLEAR / 2
    assert pace.due(near) is False and pace.due(near) is False  # put off twice …
    assert pace.due(near) is True  # … then done anyway: the log must not grow without end
    assert pace.due(T0 - timedelta(seconds=1)) is False  # an overdue deadline is near too
    clock.now = T0 + timedelta(seconds=10)
    assert pace.due(T0 + timedelta(seconds=11)) is True and pace.skipped == 0


def test_the_daemon_delivers_only_clear_of_the_armed_deadline(tmp_path: Any) -> None:
    """The outbox job is put off while the armed sweep is near (its claim holds the write
    lock), at most DELIVER_MAX_SKIPS times in a row: with an injected clock."""
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    clock = FakeClock(T0)
    calls: list[datetime] = []
    try:
        d = _Daemon(store, GUDANG, store.clocks, clock, JsonLog(io.StringIO()), 100, None)  # type: ignore[arg-type]
        gates: list[Any] = []
        d.deliver = lambda *_a, **kw: (
            gates.append(kw["gate"]) or calls.append(kw["now"]) or DeliveryReport(())
        )  # type: ignore[method-assign]
        d._armed = T0 + DELIVER_CLEAR / 2
        for _ in range(DELIVER_MAX_SKIPS):
            d.deliver_job()
        assert calls == []
        d.deliver_job()
        assert calls == [T0] and gates == [d.gate]  # the delivery waits at the daemon's gate
        d._armed = T0 + timedelta(seconds=3)
        d.deliver_job()
        assert len(calls) == 2
    finally:
        store.engine.dispose()


def test_a_daemon_engine_commits_without_checkpointing_and_checkpoints_on_demand(
    tmp_path: Any,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    try:
        assert own_checkpoints(store.engine) is True
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        bulk_cases(store, 300, T0)  # commits: the log grows, nothing copied back
        done = checkpoint(store.engine)
        assert done is not None and not done.busy
        assert done.log_frames > 0 and done.copied == done.log_frames
        assert own_checkpoints(store.engine) is True  # twice: one listener, same setting
        with store.read_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    finally:
        store.engine.dispose()


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_postgresql_checkpoints_in_the_server(db_url: str) -> None:
    store = open_store(db_url)
    try:
        assert own_checkpoints(store.engine) is False and checkpoint(store.engine) is None
    finally:
        store.engine.dispose()


def test_the_sweep_gate_holds_the_delivery_beside_a_sweep_and_before_a_deadline() -> None:
    """The outbox's delivery waits at its next step while a sweep runs, and from GATE_LEAD
    before the armed deadline (issue 15: its Python beside the sweep and the sweep's timer
    stretched both); each wait is bounded."""
    from tafang.sla.pauses import GATE_LEAD, SweepGate

    gate = SweepGate()
    assert gate.wait(timeout=0.01)  # nothing armed, no sweep: no wait
    with gate.sweeping():
        assert not gate.wait(timeout=0.02)  # bounded: a storm's long sweep is not waited out
        ended: list[float] = []
        waiter = threading.Thread(target=lambda: ended.append(gate.wait(timeout=2) and 1.0))
        waiter.start()
        time.sleep(0.05)
        assert not ended  # still waiting while the sweep runs
    waiter.join(1)
    assert ended == [1.0]
    due = datetime.now(UTC) + GATE_LEAD / 2
    gate.next_due = due
    assert gate.wait(timeout=1) and datetime.now(UTC) >= due  # waited for the deadline
    gate.next_due = datetime.now(UTC) + GATE_LEAD * 10
    t0 = time.monotonic()
    assert gate.wait(timeout=1) and time.monotonic() - t0 < GATE_LEAD.total_seconds()
    clock = FakeClock(T0)  # a daemon's gate reads the deadline by the daemon's clock
    gate = SweepGate(clock)
    gate.next_due = T0 + GATE_LEAD / 2
    t0 = time.monotonic()
    assert gate.wait(timeout=1) and time.monotonic() - t0 >= GATE_LEAD.total_seconds() / 2
