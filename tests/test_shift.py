"""Officer duty (on / off / break / back) and the shift roster, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from tafang.store.cases import Actor, Refused, Store
from tafang.store.config import Deployment
from tafang.store.duty import duty_of, shown_status, takes_cases
from tafang.store.models import AuditEntry
from tafang.store.record import verify

D01 = Actor("d01", "t1")
SUP = Actor("s01", "t9")
VIEWER = Actor("v01", "t3")
T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def _officer(store: Store, code: str):
    return {o.code: o for o in store.officers()}[code]


def _duty_entries(store: Store) -> list[dict]:
    a = AuditEntry.__table__
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(a.c.operator, a.c.detail).where(a.c.action == "officer_status")
        ).all()
    return [{"operator": r.operator, **json.loads(r.detail)} for r in rows]


def test_words_name_the_duty_states() -> None:
    assert [duty_of(w) for w in ("on", "off", "break", "back", "BREAK ", "lunch")] == [
        "on_duty",
        "off_duty",
        "on_break",
        "on_duty",
        "on_break",
        None,
    ]
    assert takes_cases("on_duty") and not takes_cases("off_duty") and not takes_cases("on_break")
    assert shown_status("en_route", "on_duty") == "en_route"
    assert shown_status("available", "on_break") == "on_break"


def test_break_and_back_go_on_the_record(store: Store) -> None:
    store.set_officer_status("2-03", "on_break", D01, now=T0)
    o = _officer(store, "2-03")
    assert (o.duty, o.status, o.duty_since) == ("on_break", "on_break", T0)
    assert store.set_officer_status("2-03", "on_duty", D01, now=T0 + timedelta(minutes=20)) == (
        "on_break"
    )
    assert _officer(store, "2-03").status == "available"
    assert _duty_entries(store) == [
        {"operator": "d01", "officer": "2-03", "duty": "on_break", "was": "on_duty"},
        {"operator": "d01", "officer": "2-03", "duty": "on_duty", "was": "on_break"},
    ]
    assert verify(store.engine).ok


def test_setting_the_same_duty_writes_nothing(store: Store) -> None:
    store.set_officer_status("1-02", "on_duty", D01, now=T0)
    assert _duty_entries(store) == []


@pytest.mark.parametrize("duty", ["off_duty", "on_break"])
def test_off_duty_and_on_break_officers_cannot_be_sent(store: Store, duty: str) -> None:
    store.set_officer_status("1-04", duty, SUP, now=T0)
    g = store.d.tower.grids[0].code
    cid = store.create({"title": "占道经营", "grid": g, "category": "0590"}, D01, now=T0).id
    with pytest.raises(Refused) as e:
        store.act(cid, "dispatch", D01, to="1-04")
    assert e.value.code == duty and "1-04" in str(e.value)
    assert store.get(cid).status == "new"


def test_an_officer_with_a_case_in_hand_may_not_leave(store: Store) -> None:
    g = store.d.tower.grids[0].code
    cid = store.create({"title": "噪声扰民", "grid": g, "category": "0603"}, D01, now=T0).id
    store.act(cid, "dispatch", D01, to="2-06")
    with pytest.raises(Refused, match=f"case {cid} in hand") as e:
        store.set_officer_status("2-06", "off_duty", D01)
    assert e.value.code == "duty_busy"
    assert _officer(store, "2-06").duty == "on_duty"


def test_who_may_set_duty(store: Store) -> None:
    with pytest.raises(Refused) as e:
        store.set_officer_status("2-03", "off_duty", VIEWER)
    assert e.value.code == "duty_role"
    with pytest.raises(Refused) as e:
        store.set_officer_status("9-99", "off_duty", D01)
    assert e.value.code == "unknown_officer"
    with pytest.raises(Refused):
        store.set_officer_status("2-03", "asleep", D01)
    # an officer may set their own duty (the field API acts under the officer's code)
    store.set_officer_status("2-03", "on_break", Actor("2-03", "phone"))
    assert _officer(store, "2-03").duty == "on_break"
    with pytest.raises(Refused):
        store.set_officer_status("2-04", "on_break", Actor("2-03", "phone"))


def test_duty_survives_the_cases_moving(store: Store, gudang: Deployment) -> None:
    """A case returned from an officer leaves their duty alone (only status follows cases)."""
    g = store.d.tower.grids[0].code
    cid = store.create({"title": "t", "grid": g, "category": "0590"}, D01, now=T0).id
    store.act(cid, "dispatch", D01, to="2-03")
    store.act(cid, "return", D01, reason="wrong squad")
    store.set_officer_status("2-03", "off_duty", D01)
    store.act(cid, "dispatch", D01, to="2-04")
    assert _officer(store, "2-03").status == "off_duty"
