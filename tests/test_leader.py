"""The leader's lock, checked: on the server before a sweep, and inside each sweep batch."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from tafang.sla.escalate import ADVISORY_KEY, DaemonLock
from tafang.sla.leader import Leadership, LeadershipLost
from tafang.store.cases import Store
from tafang.store.db import make_engine

from tests.conftest import migrated_sqlite


def end_lock_session(url: str) -> int:
    """Terminate the backend holding the leader lock in this database (as a restart does),
    and wait (up to 5 s) until it has exited: a backend only signalled still holds the lock
    for a moment, and a fence asked then rightly says held (the test failed under load)."""
    admin = make_engine(url, upgrade=False)
    try:
        with admin.begin() as c:
            return len(
                c.execute(
                    text(
                        "SELECT pg_terminate_backend(pid, 5000) FROM pg_locks WHERE "
                        "locktype = 'advisory' AND classid = :hi AND objid = :lo AND granted "
                        "AND database = (SELECT oid FROM pg_database "
                        "WHERE datname = current_database())"
                    ),
                    {"hi": ADVISORY_KEY >> 32, "lo": ADVISORY_KEY & 0xFFFFFFFF},
                ).all()
            )
    finally:
        admin.dispose()


def bump(store: Store) -> None:
    with store.write() as (_conn, head):
        head.change_seq += 1


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_lost_lock_is_noticed_before_a_sweep_and_fences_its_writes(
    store: Store, db_url: str
) -> None:
    logged: list[str] = []
    leader = Leadership(DaemonLock(store.engine), lambda _lv, ev, **_f: logged.append(ev))
    assert leader.try_take() and leader.holds()
    fenced = leader.fenced(store)
    bump(fenced)  # leading: the batch commits
    seq = store.change_seq()
    assert end_lock_session(db_url) == 1
    with pytest.raises(LeadershipLost):
        bump(fenced)  # the lock is gone: the batch is refused inside its own transaction
    assert store.change_seq() == seq  # and rolled back
    assert not leader.holds() and "leader_lock_lost" in logged
    assert leader.try_take() and leader.holds()  # free again: taken back
    bump(fenced)
    assert store.change_seq() == seq + 1
    leader.release()
    other = Leadership(DaemonLock(store.engine), lambda *_a, **_k: None)
    assert other.try_take()
    other.release()


def test_on_sqlite_the_flock_is_the_leadership(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(migrated_sqlite(tmp_path / "l.db"))
    try:
        a = Leadership(DaemonLock(engine), lambda *_a, **_k: None)
        b = Leadership(DaemonLock(engine), lambda *_a, **_k: None)
        assert a.try_take() and a.holds() and not b.try_take()
        a.release()
        assert b.try_take()
        b.release()
    finally:
        engine.dispose()
