"""A move's statements are built once (store/cases.py) and take their values as parameters:
the guards the per-call statements had still hold (version check, unknown columns refused),
and `Store.apply` writes what `Store.act` writes without reading the case back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from tafang.store.cases import PLANNERS, Actor, Ask, Conflict, Plan, Store
from tafang.store.record import verify

D01 = Actor("d01", "term-1")
OFFICER = "2-03"
T0 = datetime(2026, 11, 25, 0, 59, 58, tzinfo=UTC)


def _dispatched(store: Store) -> int:
    g = store.d.tower.grids[0].code
    cid = store.create({"title": "占道经营", "grid": g, "category": "0590"}, D01, now=T0).id
    store.act(cid, "dispatch", D01, to=OFFICER, now=T0 + timedelta(seconds=30))
    return cid


def test_apply_writes_what_act_writes_and_returns_nothing(store: Store) -> None:
    a, b = _dispatched(store), _dispatched(store)
    at = T0 + timedelta(minutes=3)
    assert store.apply(a, "arrive", D01, now=at) is None
    shown = store.act(b, "arrive", D01, now=at)
    ca, cb = store.get(a), store.get(b)
    assert shown == cb
    assert (ca.status, ca.version, ca.arrived_at) == (cb.status, cb.version, cb.arrived_at)
    assert (ca.status, ca.arrived_at) == ("on_scene", at)
    off = {o.code: o for o in store.officers()}[OFFICER]
    assert off.status == "on_scene"
    assert [e.action for e in store.timeline(a)] == [e.action for e in store.timeline(b)]
    assert verify(store.engine).ok


def test_the_version_check_of_the_reused_update_still_refuses(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer bumping the version between the read and the write (here: inside the
    move's own transaction) makes the update match no row: Conflict, nothing written."""
    cid = _dispatched(store)
    before = store.get(cid)

    def bump(a: Ask, p: Plan) -> None:
        a.conn.execute(text("UPDATE cases SET version = version + 1 WHERE id = :i"), {"i": cid})

    monkeypatch.setitem(PLANNERS, "note", bump)
    with pytest.raises(Conflict, match=f"case {cid} was changed by d01"):
        store.act(cid, "note", D01, reason="看一下")
    assert store.get(cid) == before
    assert [e.action for e in store.timeline(cid)][-1] == "dispatch"


def test_a_change_to_no_such_column_is_refused_not_dropped(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Execute parameters that name no column are ignored by SQLAlchemy; `_save` refuses
    them, as `.values()` did, so a planner's misspelt column cannot vanish silently."""
    cid = _dispatched(store)
    before = store.get(cid)

    def misspelt(a: Ask, p: Plan) -> None:
        p.changes["arived_at"] = a.now

    monkeypatch.setitem(PLANNERS, "note", misspelt)
    with pytest.raises(ValueError, match="no such case column: arived_at"):
        store.act(cid, "note", D01, reason="看一下")
    assert store.get(cid) == before
