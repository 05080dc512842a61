"""Issue 15 (PostgreSQL round trips): the daemon asks for leadership inside the sweep's own
transaction (the fence) and no longer on the lock's connection before each sweep too; a lost
lock still escalates nothing, and the daemon steps down. Injected clock; real PostgreSQL."""

from __future__ import annotations

import io
from datetime import timedelta

from tafang.sla.daemon import JsonLog, _Daemon
from tafang.sla.escalate import DaemonLock
from tafang.sla.leader import Leadership

from tests.test_escalate import GUDANG, T0, bulk_cases, counts, open_store
from tests.test_leader import end_lock_session
from tests.test_sweep_pauses import FakeClock


def test_a_sweep_asks_only_its_fence_and_a_lost_lock_steps_down(pg_url: str) -> None:
    store = open_store(pg_url)
    logged: list[str] = []
    out = io.StringIO()
    try:
        leader = Leadership(DaemonLock(store.engine), lambda _lv, ev, **_f: logged.append(ev))
        assert leader.try_take()
        asked: list[int] = []
        holds = leader.holds
        leader.holds = lambda: asked.append(1) or holds()  # type: ignore[method-assign]
        clock = FakeClock(T0 + timedelta(seconds=61))  # respond budget 60 s: due
        d = _Daemon(store, GUDANG, store.clocks, clock, JsonLog(out), 100, None, leader)  # type: ignore[arg-type]
        bulk_cases(store, 2, T0, prefix="a")
        assert len(d.sweep_once()) == 2
        assert asked == []  # the fence inside the batch was the only ask
        before = counts(store)
        bulk_cases(store, 1, T0, prefix="b")
        assert end_lock_session(pg_url) == 1
        assert d.sweep_once() == []  # refused by the fence inside its transaction …
        assert counts(store) == before  # … so nothing was written
        assert asked == [1] and d.lost.is_set()  # … then asked, and stepped down
        assert "stepped_down" in out.getvalue()
        assert d.sweep_once() == [] and asked == [1]  # stepped down: no more sweeps
    finally:
        store.engine.dispose()
