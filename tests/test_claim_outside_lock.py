"""Issue 15: the outbox's claim reads and plans before its write transaction, then leases in a
short one, conditionally, so a second daemon in between never makes a row go out twice.

The interleavings are injected at the seam between planning and leasing (`_plan`), on a real
SQLite file and real PostgreSQL; the clock is injected (`now=T0`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest
from tafang.sla.notify import NotifySettings
from tafang.sla.notify import claim as claim_mod
from tafang.sla.notify.claim import claim
from tafang.store.cases import Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine

from tests.conftest import migrated_sqlite
from tests.test_notify import T0, deployment_with, put, rows

GRID = [{"level": "grid", "name": "W", "url": "http://127.0.0.1:9/h", "rate_per_minute": 100}]


def _store(url: str, tiny: Deployment) -> tuple[Store, Deployment]:
    d = deployment_with(tiny, GRID)
    return Store(make_engine(url), d), d


def _claimed(plans: dict[str, Any]) -> list[str]:
    return [r.key for p in plans.values() for m in p.messages for r in m.rows]


def _between(monkeypatch: pytest.MonkeyPatch, act: Callable[[], None]) -> None:
    """Run `act` once, after the first claim has read its rows and before it leases them."""
    plan, done = claim_mod._plan, []

    def planning(*a: Any, **k: Any) -> Any:
        if not done:
            done.append(1)
            act()
        return plan(*a, **k)

    monkeypatch.setattr(claim_mod, "_plan", planning)


def test_planning_holds_no_write_lock(
    monkeypatch: pytest.MonkeyPatch, tiny: Deployment, tmp_path: Any
) -> None:
    """Before: planning ran inside BEGIN IMMEDIATE; another writer waited for all of it."""
    db = tmp_path / "t.db"
    store, d = _store(migrated_sqlite(db), tiny)
    for i in range(5):
        put(store, f"k{i}")
    got: list[bool] = []

    def write_now() -> None:
        other = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            got.append(True)
        except sqlite3.OperationalError:  # database is locked
            got.append(False)
        finally:
            other.close()

    _between(monkeypatch, write_now)
    plans = claim(store, d, T0, NotifySettings())
    assert got == [True]
    assert sorted(_claimed(plans)) == [f"k{i}" for i in range(5)]
    assert all(r.next_attempt_at > T0 for r in rows(store).values())  # leased


@pytest.mark.parametrize("db", ["sqlite", "pg"])
def test_rows_claimed_in_between_are_not_delivered_twice(
    monkeypatch: pytest.MonkeyPatch, tiny: Deployment, db: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("sqlite_url" if db == "sqlite" else "pg_url")
    store, d = _store(url, tiny)
    for i in range(4):
        put(store, f"k{i}")
    second: list[str] = []
    _between(monkeypatch, lambda: second.extend(_claimed(claim(store, d, T0, NotifySettings()))))
    first = _claimed(claim(store, d, T0, NotifySettings()))
    assert sorted(second) == ["k0", "k1", "k2", "k3"]
    assert first == []  # its plan was stale: re-planned under the lock, nothing left


def test_a_row_sent_and_retried_in_between_is_not_leased_again(
    monkeypatch: pytest.MonkeyPatch, tiny: Deployment, sqlite_url: str
) -> None:
    """A row whose attempts changed since it was read (another daemon tried it and it is due
    again) is not the row that was planned: re-planned, not leased on the stale read."""
    store, d = _store(sqlite_url, tiny)
    put(store, "k0")
    put(store, "k1")

    def tried_elsewhere() -> None:
        with store.engine.begin() as conn:
            conn.execute(
                claim_mod.update(claim_mod.OUTBOX)
                .where(claim_mod.OUTBOX.c.key == "k0")
                .values(attempts=1)
            )

    _between(monkeypatch, tried_elsewhere)
    plans = claim(store, d, T0, NotifySettings())
    [row] = [r for p in plans.values() for m in p.messages for r in m.rows if r.key == "k0"]
    assert row.attempts == 1  # the fresh read, not the stale one
    assert sorted(_claimed(plans)) == ["k0", "k1"]


def test_window_spent_in_between_is_respected(
    monkeypatch: pytest.MonkeyPatch, tiny: Deployment, sqlite_url: str
) -> None:
    """Another claim spending the robot's window between read and lease: the plan is redone
    with the window as it now is (rate 1: nothing more goes out)."""
    d = deployment_with(tiny, [{**GRID[0], "rate_per_minute": 1}])
    store = Store(make_engine(sqlite_url), d)
    put(store, "k0")
    with store.engine.connect() as conn:  # the window's one slot is free now
        assert conn.execute(claim_mod.select(claim_mod.SENDS)).first() is None

    def spend() -> None:
        with store.engine.begin() as conn:
            conn.execute(
                claim_mod.insert(claim_mod.SENDS),
                [dict(contact=claim_mod.robot_key(d.contacts[0]), at=T0, key="elsewhere")],
            )

    _between(monkeypatch, spend)
    plans = claim(store, d, T0, NotifySettings())
    assert _claimed(plans) == []
    assert [p.waiting for p in plans.values()] == [1]
    assert rows(store)["k0"].next_attempt_at <= T0  # not leased: still due
