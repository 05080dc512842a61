"""Issue 15 (the next deadline armed late): the daemon arms its next sweep from inside the
last batch's transaction, before the commit, at the deadline the store will hold after it;
not after the commit and another read. Injected clock; a real SQLite file and scheduler."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import func, select
from tafang.sla.daemon import WAKE_EARLY, JsonLog, _Daemon, utcnow
from tafang.store.escalation import next_deadline
from tafang.store.models import Escalation

from tests.test_escalate import GUDANG, T0, bulk_cases, open_store
from tests.test_sweep_pauses import FakeClock


def test_the_next_sweep_is_armed_before_the_sweeps_commit(tmp_path: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    sched = BackgroundScheduler(timezone=UTC)  # never started: its jobs only wait
    try:
        bulk_cases(store, 1, T0, prefix="a")  # respond due at T0 + 60 s
        bulk_cases(store, 1, T0 + timedelta(seconds=30), prefix="b")  # due at T0 + 90 s
        clock = FakeClock(T0 + timedelta(seconds=61))
        d = _Daemon(store, GUDANG, store.clocks, clock, JsonLog(io.StringIO()), 100, None)  # type: ignore[arg-type]
        d.sched = sched
        seen: list[tuple[Any, int]] = []
        real = d.rearm

        def rearm(after: datetime | None = None, known: Any = None, **kw: Any) -> Any:
            with store.read_engine.connect() as c:  # what others see: committed rows only
                seen.append((known, c.execute(select(func.count()).select_from(ESC)).scalar()))
            return real(after, known, **kw)

        d.rearm = rearm  # type: ignore[method-assign]
        d.sweep_job()
        truth = next_deadline(store.engine)
        assert truth is not None and truth > clock.now
        assert seen == [((truth,), 0)]  # armed from inside, before the escalation committed
        assert d._armed == truth and sched.get_job("sweep") is not None
        job = sched.get_job("sweep")  # the timer fires early; the job waits for the deadline
        assert job.trigger.run_date == truth - WAKE_EARLY and job.kwargs == {"due": truth}
        with store.engine.connect() as c:
            assert c.execute(select(func.count()).select_from(ESC)).scalar() == 1
    finally:
        store.engine.dispose()


def test_a_failed_sweep_rearms_from_the_store(tmp_path: Any) -> None:
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    try:
        bulk_cases(store, 1, T0, prefix="a")
        clock = FakeClock(T0 + timedelta(seconds=61))
        d = _Daemon(store, GUDANG, store.clocks, clock, JsonLog(io.StringIO()), 100, None)  # type: ignore[arg-type]
        d.sched = BackgroundScheduler(timezone=UTC)
        d.policy = None  # type: ignore[assignment]  # the sweep fails before it arms
        calls: list[Any] = []
        real = d.rearm
        d.rearm = lambda after=None, known=None, **kw: (
            calls.append(known) or real(after, known, **kw)
        )  # type: ignore[method-assign]
        d.sweep_job()
        assert calls == [None]  # read from the store: still due, so looked at again shortly
        assert d._armed is not None and d._armed > clock.now
    finally:
        store.engine.dispose()


ESC = Escalation.__table__


def test_an_early_sweep_job_waits_for_its_deadline(tmp_path: Any) -> None:
    """Fired WAKE_EARLY ahead, the job sweeps no earlier than the deadline it was armed for
    (a case due then is escalated by that sweep, not by the next)."""
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    try:
        d = _Daemon(store, GUDANG, store.clocks, utcnow, JsonLog(io.StringIO()), 100, None)  # type: ignore[arg-type]
        d.sched = BackgroundScheduler(timezone=UTC)
        due = utcnow() + WAKE_EARLY
        swept: list[datetime] = []
        d.sweep_once = lambda *a, **kw: swept.append(utcnow()) or []  # type: ignore[method-assign]
        d.sweep_job(due=due)
        assert swept and swept[0] >= due
    finally:
        store.engine.dispose()


def test_a_deadline_nearer_than_the_early_wake_is_swept_by_the_same_job(tmp_path: Any) -> None:
    """Two cases due 10 ms apart: the job that sweeps the first sweeps the second too, after
    waiting for its deadline, without the scheduler (never started here: a deadline handed
    to it would not be swept at all); the next level is armed with the scheduler as usual."""
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    try:
        d = _Daemon(store, GUDANG, store.clocks, utcnow, JsonLog(io.StringIO()), 100, None)  # type: ignore[arg-type]
        d.sched = BackgroundScheduler(timezone=UTC)  # never started
        respond = timedelta(seconds=60)
        first = utcnow() + timedelta(milliseconds=20)
        bulk_cases(store, 1, first - respond, prefix="a")
        bulk_cases(store, 1, first + timedelta(milliseconds=10) - respond, prefix="b")
        d.sweep_job(due=first)
        with store.engine.connect() as c:
            fired = c.execute(select(ESC.c.due_at, ESC.c.fired_at)).all()
        assert len(fired) == 2
        assert all(f.replace(tzinfo=UTC) >= due.replace(tzinfo=UTC) for due, f in fired)
        job = d.sched.get_job("sweep")
        assert job is not None and job.kwargs["due"] > first + timedelta(seconds=60)
        assert d._following is None
    finally:
        store.engine.dispose()


def test_a_sweep_job_that_fails_while_following_hands_its_deadline_back(tmp_path: Any) -> None:
    """A deadline the job took over from the scheduler is armed with it again when the job
    ends without sweeping it (an error on the way), not left to the next tick."""
    store = open_store(f"sqlite:///{tmp_path / 't.db'}")
    try:
        bulk_cases(store, 1, T0, prefix="a")  # due at T0 + 60 s
        clock = FakeClock(T0)
        d = _Daemon(store, GUDANG, store.clocks, clock, JsonLog(io.StringIO()), 100, None)  # type: ignore[arg-type]
        d.sched = BackgroundScheduler(timezone=UTC)  # never started

        def boom(*_a: Any, **_kw: Any) -> Any:
            d._following = T0 + timedelta(seconds=60)
            raise RuntimeError("lost on the way")

        d._sweep_and_arm = boom  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            d.sweep_job()
        job = d.sched.get_job("sweep")
        assert d._following is None and job is not None
        assert job.kwargs == {"due": T0 + timedelta(seconds=60)}
    finally:
        store.engine.dispose()
