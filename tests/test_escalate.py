"""The escalation sweep on a real SQLite file and the real PostgreSQL, with an injected now."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from tafang.sla.escalate import DaemonLock, sweep
from tafang.sla.policy import Policy
from tafang.store.cases import Actor, Store
from tafang.store.config import load_config
from tafang.store.db import make_engine
from tafang.store.models import Case
from tafang.store.record import Entry, append, verify

ROOT = Path(__file__).resolve().parent.parent
GUDANG = load_config(ROOT / "config.toml")  # respond 60 s, dispatch 180 s, interval 120 s
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
GRID = "33010600700801"
DSP = Actor("d01", "t1")
SUP = Actor("s01", "t1")
CHK = Actor("c01", "t1")
MS = timedelta(milliseconds=1)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


# ---- fixtures: `db_url` (a SQLite file or a fresh PostgreSQL database) is in conftest --
def open_store(url: str) -> Store:
    d = GUDANG
    return Store(make_engine(url), d, clocks=Policy(d))


def bulk_cases(store: Store, n: int, received_at: datetime, prefix: str = "b") -> list[int]:
    """n new cases received at `received_at`, inserted in one transaction (with the record)."""
    rows = []
    for i in range(n):
        v: dict[str, Any] = {
            "source": "ping_an",
            "external_id": f"{prefix}-{i}",
            "title": f"共享单车堵塞消防通道 #{i}",
            "description": "",
            "category": "0590",
            "grid": GRID,
            "location": "",
            "priority": "normal",
            "reporter": "",
            "raw": "{}",
            "received_at": received_at,
            "status": "new",
            "version": 1,
            "updated_at": received_at,
            "updated_by": "test",
            "updated_terminal": "test",
        }
        v.update(store.clocks.start(v))
        rows.append(v)
    table = Case.__table__
    with store.write() as (conn, head):
        for v in rows:
            head.change_seq += 1
            v["updated_seq"] = head.change_seq
        conn.execute(insert(table), rows)
        ids = [
            r[0]
            for r in conn.execute(
                text("SELECT id FROM cases WHERE external_id LIKE :p ORDER BY id"),
                {"p": f"{prefix}-%"},
            )
        ]
        append(conn, head, [Entry(received_at, "test", "test", "create", i, {}) for i in ids])
    return ids


def counts(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        esc = conn.execute(
            text("SELECT case_id, clock, level FROM escalations ORDER BY case_id, level")
        ).all()
        out = conn.execute(text("SELECT key, contact, payload FROM outbox ORDER BY key")).all()
        audit = conn.execute(
            text("SELECT case_id, detail FROM audit WHERE action = 'escalate' ORDER BY seq")
        ).all()
    return {"esc": esc, "outbox": out, "audit": audit}


def new_case(store: Store, now: datetime = T0, **fields: Any) -> int:
    return store.create({"title": "bikes", "grid": GRID, **fields}, DSP, now=now).id


# ---- the deadline, to the millisecond --------------------------------------------------
def test_ack_one_ms_before_deadline_never_escalates(store: Store) -> None:
    pol = store.clocks
    cid = new_case(store)
    store.act(cid, "ack", DSP, now=at(60) - MS)
    for t in (60, 61, 180 - 0.001, 180, 300):
        # dispatch (due 180) breaches later; nothing about respond, ever.
        for r in sweep(store, pol, at(t)):
            assert r.clock != "respond"
    assert [(e.clock, e.level) for e in counts(store)["esc"]] == [("dispatch", 1), ("dispatch", 2)]


def test_ack_one_ms_after_deadline_escalates_once(store: Store) -> None:
    pol = store.clocks
    cid = new_case(store)
    assert sweep(store, pol, at(60) - MS) == []
    res = sweep(store, pol, at(60))
    assert [(r.case_id, r.clock, r.level, r.lateness_ms) for r in res] == [(cid, "respond", 1, 0.0)]
    store.act(cid, "ack", DSP, now=at(60) + MS)
    assert sweep(store, pol, at(60) + 2 * MS) == []
    c = counts(store)
    assert [tuple(e) for e in c["esc"]] == [(cid, "respond", 1)]
    assert [o.key for o in c["outbox"]] == [f"esc-{cid}-respond-1"]
    assert store.get(cid).escalation_level == 1


def test_a_case_swept_late_records_its_lateness(store: Store) -> None:
    cid = new_case(store)
    res = sweep(store, store.clocks, at(60.25))
    assert res[0].lateness_ms == 250.0 and not res[0].catch_up
    with store.engine.connect() as conn:
        lat = conn.execute(text("SELECT lateness_ms FROM escalations")).scalar()
    assert lat == 250.0
    assert json.loads(counts(store)["audit"][0].detail)["lateness_ms"] == 250.0
    assert store.get(cid).next_check_at == at(180)  # the dispatch deadline comes first


def test_each_escalation_happens_once_across_repeated_sweeps(store: Store) -> None:
    pol = store.clocks
    ids = [new_case(store, now=at(i)) for i in range(5)]
    for t in (64, 64, 64, 65, 100, 100):
        sweep(store, pol, at(t))
    c = counts(store)
    assert sorted(e.case_id for e in c["esc"]) == ids
    assert len({o.key for o in c["outbox"]}) == len(c["outbox"]) == 5
    assert len(c["audit"]) == 5
    assert verify(store.engine).ok


def test_escalates_each_interval_up_to_the_centre_and_never_beyond(store: Store) -> None:
    pol = store.clocks
    cid = new_case(store)
    levels = []
    t = 60.0
    for _ in range(6):
        levels += [r.level for r in sweep(store, pol, at(t))]
        nxt = store.get(cid).next_check_at
        if nxt is None:
            break
        assert sweep(store, pol, nxt - MS) == []  # never early
        t = (nxt - T0).total_seconds()
    assert levels == [1, 2, 3, 4]
    assert sweep(store, pol, at(86_400 * 30)) == []
    c = counts(store)
    assert [o.contact for o in c["outbox"]] == ["enforcement", "emergency", "risk", "centre"]
    assert store.get(cid).escalation_level == 4
    assert store.get(cid).next_check_at is None


def test_hold_pauses_and_resume_continues(store: Store) -> None:
    pol = store.clocks
    cid = new_case(store)
    store.act(cid, "hold", SUP, reason="waiting for the owner", now=at(30))
    assert sweep(store, pol, at(3600)) == []
    store.act(cid, "resume", SUP, now=at(3600))  # paused 3570 s: respond due 3630
    assert sweep(store, pol, at(3630) - MS) == []
    res = sweep(store, pol, at(3630))
    assert [(r.clock, r.level, r.due_at) for r in res] == [("respond", 1, at(3630))]


def test_catch_up_after_downtime_is_one_step_with_one_notification(store: Store) -> None:
    pol = store.clocks
    cid = new_case(store)
    late = at(60 + 3 * 120 + 5)  # level 4 was due at 420 s; the daemon was down
    res = sweep(store, pol, late)
    assert len(res) == 1
    r = res[0]
    assert (r.level, r.from_level, r.catch_up, r.lateness_ms) == (4, 0, True, 5000.0)
    c = counts(store)
    assert [tuple(e) for e in c["esc"]] == [(cid, "respond", 4)]
    assert len(c["outbox"]) == 1 and c["outbox"][0].contact == "centre"
    ev = json.loads(c["outbox"][0].payload)
    assert ev["kind"] == "escalation" and ev["catch_up"] is True and ev["lateness_ms"] == 5000
    assert ev["grid_label"] == "N1-01" and ev["level_name"] == "centre"
    detail = json.loads(c["audit"][0].detail)
    assert detail["catch_up"] is True and detail["level"] == 4
    assert sweep(store, pol, late + timedelta(days=1)) == []
    assert verify(store.engine).ok


def test_closed_and_voided_cases_never_escalate(store: Store) -> None:
    pol = store.clocks
    a = new_case(store)
    b = new_case(store)
    store.act(b, "merge", DSP, into=a, now=at(5))
    store.act(a, "void", SUP, reason="not our matter", now=at(10))
    assert sweep(store, pol, at(10_000)) == []


def test_a_reopened_case_escalates_again_in_its_new_life(store: Store) -> None:
    pol = store.clocks
    cid = new_case(store)
    store.act(cid, "ack", DSP, now=at(10))
    assert [r.clock for r in sweep(store, pol, at(180))] == ["dispatch"]
    store.act(cid, "dispatch", DSP, to="1-01", now=at(200))
    store.act(cid, "arrive", DSP, now=at(250))
    store.act(cid, "handle", DSP, now=at(300))
    store.act(cid, "close", CHK, now=at(400))
    store.act(cid, "reopen", SUP, reason="back again", now=at(1000))  # dispatch due 1120
    res = sweep(store, pol, at(1120))
    assert [(r.clock, r.level, r.notified) for r in res] == [("dispatch:2", 1, True)]
    assert sweep(store, pol, at(1120)) == []
    assert len(counts(store)["outbox"]) == 2


def test_sweeps_batch_through_many_due_cases(store: Store) -> None:
    ids = bulk_cases(store, 250, T0)
    res = sweep(store, store.clocks, at(61), batch=40)
    assert sorted(r.case_id for r in res) == ids
    assert len(counts(store)["outbox"]) == 250
    assert verify(store.engine).ok


# ---- concurrency: two sweepers, two daemons' locks --------------------------------------
@pytest.mark.slow  # a race / fault test: still runs in .ci/run
def test_two_concurrent_sweeps_escalate_each_case_once(db_url: str) -> None:
    a, b = open_store(db_url), open_store(db_url)
    try:
        ids = bulk_cases(a, 300, T0)
        barrier = threading.Barrier(2)
        got: list[list[Any]] = [[], []]

        def run(i: int, s: Store) -> None:
            barrier.wait()
            for t in (61, 61, 62, 181):
                got[i].extend(sweep(s, s.clocks, at(t), batch=25))

        th = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate((a, b))]
        for t in th:
            t.start()
        for t in th:
            t.join(30)
        made = [(r.case_id, r.clock, r.level) for r in got[0] + got[1]]
        assert len(made) == len(set(made)) == 600  # level 1 at 61 s, level 2 at 181 s
        c = counts(a)
        assert len(c["esc"]) == 600 and len({tuple(e) for e in c["esc"]}) == 600
        assert len(c["outbox"]) == 600 and len({o.key for o in c["outbox"]}) == 600
        assert {e.case_id for e in c["esc"]} == set(ids)
        assert verify(a.engine).ok
    finally:
        a.engine.dispose()
        b.engine.dispose()


def test_one_daemon_leads_a_store(db_url: str) -> None:
    a, b = make_engine(db_url), make_engine(db_url)
    try:
        first, second = DaemonLock(a), DaemonLock(b)
        assert first.try_acquire()
        assert not second.try_acquire()
        assert "another daemon" in second.describe_holder()
        first.release()
        assert second.try_acquire()
        second.release()
    finally:
        a.dispose()
        b.dispose()
