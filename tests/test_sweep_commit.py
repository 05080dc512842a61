"""Issue 15 on PostgreSQL: the sweep's commit does not wait for the WAL flush (one flush held
an escalation 270 ms), unless `sla.sweep_sync_commit`; what leaves the database (a record
anchor) waits for the flush first. A real server; the setting is read inside the sweep."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection
from tafang.sla.witness import WitnessState, send_anchor
from tafang.store.db import wait_flushed
from tafang.store.escalation import escalate_due

from tests.conftest import require_pg
from tests.test_escalate import T0, bulk_cases, open_store


def _sweep_setting(store: Any, sync: bool) -> list[str]:
    """`synchronous_commit` as the daemon's sweep transactions see it."""
    import io

    from tafang.sla.daemon import JsonLog, _Daemon

    store.d = store.d.model_copy(
        update={"sla": store.d.sla.model_copy(update={"sweep_sync_commit": sync})}
    )
    bulk_cases(store, 3, T0, prefix=f"s{sync}")
    d = _Daemon(store, store.d, store.clocks, lambda: T0, JsonLog(io.StringIO()), 100, None)  # type: ignore[arg-type]
    sweeper = d.sweeper
    seen: list[str] = []
    real = sweeper.write

    def write(**kw: Any) -> Any:
        ctx = real(**kw)
        conn_head = ctx.__enter__()
        conn: Connection = conn_head[0]
        seen.append(conn.exec_driver_sql("SHOW synchronous_commit").scalar_one())
        return _Reentered(ctx, conn_head)

    sweeper.write = write
    try:
        escalate_due(sweeper, store.clocks.plan_escalation, T0 + timedelta(seconds=61))
    finally:
        d.sweep_engine.dispose()
    return seen


class _Reentered:
    def __init__(self, ctx: Any, value: Any) -> None:
        self.ctx, self.value = ctx, value

    def __enter__(self) -> Any:
        return self.value

    def __exit__(self, *exc: Any) -> Any:
        return self.ctx.__exit__(*exc)


def test_the_sweep_commits_without_waiting_for_the_flush_unless_told(pg_url: str) -> None:
    require_pg()
    store = open_store(pg_url)
    try:
        assert set(_sweep_setting(store, sync=False)) == {"off"}
        assert set(_sweep_setting(store, sync=True)) == {"on"}
        with store.engine.connect() as conn:  # other writers keep the server's default
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
    finally:
        store.engine.dispose()


def test_a_record_anchor_leaves_only_once_flushed(pg_url: str, tmp_path: Any) -> None:
    require_pg()
    store = open_store(pg_url)
    try:
        bulk_cases(store, 2, T0)
        escalate_due(store, store.clocks.plan_escalation, T0 + timedelta(seconds=61))
        assert wait_flushed(store.engine, timeout=5.0)
        with store.engine.connect() as conn:
            insert, flush = conn.exec_driver_sql(
                "SELECT pg_current_wal_insert_lsn(), pg_current_wal_flush_lsn()"
            ).one()
        assert flush is not None and insert is not None
        witness = tmp_path / "anchors.txt"
        store.d = store.d.model_copy(
            update={"record": store.d.record.model_copy(update={"witness_file": str(witness)})}
        )
        a = send_anchor(store, T0 + timedelta(seconds=62), WitnessState())
        assert a is not None and str(a.seq) in witness.read_text()
    finally:
        store.engine.dispose()


def test_the_daemon_sweeps_on_its_own_connection(pg_url: str) -> None:
    """The daemon's sweep writes through its own engine (no ping before each transaction,
    sessions with synchronous_commit off: no SET in every sweep); it escalates as before,
    and the store's other writers keep the server's default."""
    import io

    from tafang.sla.daemon import JsonLog, _Daemon

    from tests.test_sweep_pauses import FakeClock

    require_pg()
    store = open_store(pg_url)
    d = _Daemon(store, store.d, store.clocks, FakeClock(T0), JsonLog(io.StringIO()), 100, None)  # type: ignore[arg-type]
    try:
        assert d.sweep_engine is not store.engine and d.sweeper.engine is d.sweep_engine
        assert not d.sweep_engine.pool._pre_ping  # type: ignore[attr-defined]
        with d.sweep_engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "off"
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
        bulk_cases(store, 2, T0, prefix="own")
        d.clock = FakeClock(T0 + timedelta(seconds=61))
        assert len(d.sweep_once()) == 2
    finally:
        d.sweep_engine.dispose()
        store.engine.dispose()


def test_with_sweep_sync_commit_the_daemon_sweeps_durably(pg_url: str) -> None:
    import io

    from tafang.sla.daemon import JsonLog, _Daemon

    from tests.test_sweep_pauses import FakeClock

    require_pg()
    store = open_store(pg_url)
    store.d = store.d.model_copy(
        update={"sla": store.d.sla.model_copy(update={"sweep_sync_commit": True})}
    )
    d = _Daemon(store, store.d, store.clocks, FakeClock(T0), JsonLog(io.StringIO()), 100, None)  # type: ignore[arg-type]
    try:
        assert d.sweeper.engine is d.sweep_engine
        with d.sweep_engine.connect() as conn:
            assert conn.exec_driver_sql("SHOW synchronous_commit").scalar_one() == "on"
    finally:
        d.sweep_engine.dispose()
        store.engine.dispose()
