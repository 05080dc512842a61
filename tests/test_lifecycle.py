"""The case lifecycle on a real SQLite file and the real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from tafang.store.cases import MOVES, Actor, Conflict, NotFound, Refused, Store
from tafang.store.clocks import RUNNING
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.models import OPEN_STATUSES, STATUSES
from tafang.store.record import verify

from tests.conftest import migrated_sqlite

D01 = Actor("d01", "term-1")
D02 = Actor("d02", "term-2")
SUP = Actor("s01", "term-9")
CHK = Actor("c01", "term-7")  # a checker (监管): closes what others handled
T0 = datetime(2026, 11, 25, 0, 59, 58, tzinfo=UTC)


def new_case(store: Store, **kw: object) -> int:
    g = store.d.tower.grids[0].code
    fields = {"title": "共享单车堵塞消防通道", "grid": g, "category": "0590", **kw}
    return store.create(fields, D01, now=T0).id


def test_full_life_and_officer_follows(store: Store) -> None:
    cid = new_case(store)
    officer = "2-03"
    assert store.get(cid).status == "new"
    store.act(cid, "ack", D01, now=T0 + timedelta(seconds=2))
    store.act(cid, "dispatch", D01, to=officer, now=T0 + timedelta(seconds=30))
    off = {o.code: o for o in store.officers()}[officer]
    assert (off.status, off.case_id, off.load) == ("en_route", cid, 1)
    store.act(cid, "arrive", D01, now=T0 + timedelta(minutes=4))
    assert {o.code: o for o in store.officers()}[officer].status == "on_scene"
    store.act(cid, "handle", D01, now=T0 + timedelta(minutes=20))
    off = {o.code: o for o in store.officers()}[officer]
    assert (off.status, off.case_id) == ("available", None)
    c = store.act(cid, "close", CHK, now=T0 + timedelta(minutes=30))
    assert c.status == "closed" and c.version == 6
    actions = [e.action for e in store.timeline(cid)]
    assert actions == ["create", "ack", "dispatch", "arrive", "handle", "close"]
    assert store.timeline(cid)[-1].operator == "c01"
    assert verify(store.engine).ok


def test_illegal_move_is_refused_with_reason(store: Store) -> None:
    cid = new_case(store)
    with pytest.raises(
        Refused, match=r"cannot close case \d+: it is new .*needs a case that is handled"
    ):
        store.act(cid, "close", CHK)
    with pytest.raises(Refused, match="needs a reason"):
        store.act(cid, "void", SUP)
    with pytest.raises(Refused, match="needs a supervisor"):
        store.act(cid, "hold", D01, reason="waiting for owner")
    with pytest.raises(Refused, match="no officer, squad or partner team '9-99'"):
        store.act(cid, "dispatch", D01, to="9-99")
    with pytest.raises(NotFound):
        store.act(999_999, "ack", D01)
    assert store.get(cid).status == "new" and store.get(cid).version == 1


def test_stale_version_loses_and_is_told_who(store: Store) -> None:
    cid = new_case(store)
    seen = store.get(cid).version
    store.act(cid, "ack", D01, expected_version=seen)
    with pytest.raises(Conflict, match=r"changed by d01 \(terminal term-1\)"):
        store.act(cid, "dispatch", D02, to="1-02", expected_version=seen)
    assert store.get(cid).status == "acknowledged"


def test_hold_pauses_and_resume_continues(store: Store) -> None:
    cid = new_case(store)
    before = store.get(cid)
    store.act(cid, "hold", SUP, reason="业主不在", now=T0 + timedelta(seconds=10))
    held = store.get(cid)
    assert held.status == "held" and held.next_check_at is None
    store.act(cid, "resume", SUP, now=T0 + timedelta(seconds=70))
    after = store.get(cid)
    assert after.status == "new"
    assert after.respond_due - before.respond_due == timedelta(seconds=60)


def test_return_restarts_dispatch_clock_and_frees_officer(store: Store) -> None:
    cid = new_case(store)
    store.act(cid, "dispatch", D01, to="1-02", now=T0 + timedelta(seconds=20))
    t = T0 + timedelta(minutes=10)
    c = store.act(cid, "return", D01, reason="not our area", now=t)
    assert c.status == "acknowledged" and c.assignee is None
    assert c.dispatch_due > t
    assert {o.code: o for o in store.officers()}["1-02"].status == "available"


def test_merge_void_reopen_supervise_escalate(store: Store) -> None:
    a, b = new_case(store), new_case(store, title="重复报告")
    with pytest.raises(Refused, match="into itself"):
        store.act(b, "merge", D01, into=b)
    c = store.act(b, "merge", D01, into=a, reason="duplicate")
    assert c.status == "merged" and c.merged_into == a
    with pytest.raises(Refused, match="merge into an open case"):
        store.act(new_case(store), "merge", D01, into=b)
    assert [e.action for e in store.timeline(a)][-1] == "merged_in"
    store.act(a, "supervise", SUP, reason="尽快处置")
    store.act(a, "escalate", SUP, reason="manual")
    c = store.get(a)
    assert c.supervised and c.escalation_level == 1
    store.act(a, "void", SUP, reason="不予立案")
    c = store.act(a, "reopen", SUP, reason="new evidence")
    assert c.status == "acknowledged" and c.escalation_level == 0
    assert verify(store.engine).ok


# ---- random action sequences never reach an illegal state -----------------------------
ACTION_NAMES = sorted(MOVES)


@pytest.mark.slow  # a race / fuzz / real-time test: still runs in .ci/run
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(ACTION_NAMES),
            st.integers(0, 2),
            st.sampled_from(["1-02", "2-03", "sq3", None]),
            st.sampled_from([D01, SUP]),
        ),
        max_size=25,
    )
)
def test_random_sequences_stay_legal(
    tmp_path_factory: pytest.TempPathFactory, gudang: Deployment, steps: list
) -> None:
    engine = make_engine(migrated_sqlite(tmp_path_factory.mktemp("h") / "h.db"))
    store = Store(engine, gudang)
    ids = [new_case(store) for _ in range(3)]
    now = T0
    for action, idx, to, actor in steps:
        now += timedelta(seconds=7)
        cid = ids[idx]
        before = store.get(cid)
        try:
            after = store.act(
                cid, action, actor, to=to, reason="r", into=ids[(idx + 1) % 3], now=now
            )
        except Refused:
            assert store.get(cid) == before  # a refused move changes nothing
            continue
        assert after.status in STATUSES
        assert before.status in MOVES[action].starts
        assert after.version == before.version + 1
        if after.status in ("dispatched", "on_scene"):
            assert after.assignee
        if after.status not in OPEN_STATUSES or after.status in ("handled", "held"):
            assert after.next_check_at is None
        running = RUNNING[after.status]
        if after.next_check_at is not None:
            assert running
        # An officer is never on a case that is not dispatched or on scene with them.
        for o in store.officers():
            if o.case_id is not None and o.status in ("en_route", "on_scene"):
                c = store.get(o.case_id)
                assert c.assignee == o.code and c.status in ("dispatched", "on_scene"), (o, c)
    assert verify(engine).ok
    engine.dispose()


# ---- two processes, one case: exactly one wins ------------------------------------------
RACE = """
import sys
from tafang.store.cases import Actor, Refused, Store
from tafang.store.config import load_config
from tafang.store.db import make_engine
store = Store(make_engine(sys.argv[1]), load_config(sys.argv[2]))
ids = [int(x) for x in sys.argv[4].split(",")]
sys.stdin.readline()  # start together
for cid in ids:
    try:
        store.act(cid, "dispatch", Actor(sys.argv[3], sys.argv[3]), to=sys.argv[5])
        print("won", cid, flush=True)
    except Refused as e:
        print("lost", cid, str(e).replace(chr(10), " "), flush=True)
"""


@pytest.mark.slow  # a race / fuzz / real-time test: still runs in .ci/run
def test_two_processes_dispatching_one_case_exactly_one_wins(
    db_url: str, gudang: Deployment, tmp_path
) -> None:
    from tests.conftest import ROOT

    engine = make_engine(db_url)
    store = Store(engine, gudang)
    ids = [new_case(store) for _ in range(30)]
    for cid in ids:
        store.act(cid, "ack", D01)
    script = tmp_path / "race.py"
    script.write_text(RACE)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(script),
                db_url,
                str(ROOT / "config.toml"),
                ("d01", "d02")[i],
                ",".join(map(str, ids)),
                officer,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for i, officer in enumerate(["1-02", "2-03"])
    ]
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    for cid in ids:
        verdicts = [
            line.split()[0]
            for out in outs
            for line in out.splitlines()
            if line.split()[1] == str(cid)
        ]
        assert sorted(verdicts) == ["lost", "won"], (cid, outs)
        c = store.get(cid)
        assert c.status == "dispatched" and c.version == 3
        assert [e.action for e in store.timeline(cid)].count("dispatch") == 1
    assert verify(engine).ok
    engine.dispose()


# ---- the record detects edits behind the application's back ---------------------------
def test_audit_detects_edit_and_delete(store: Store) -> None:
    cid = new_case(store)
    store.act(cid, "ack", D01)
    store.act(cid, "dispatch", D01, to="2-03")
    assert verify(store.engine).ok
    with store.engine.begin() as c:
        c.execute(text("UPDATE audit SET operator = 'mallory' WHERE seq = 2"))
    v = verify(store.engine)
    assert not v.ok and v.bad_seq == 2 and "altered" in v.reason
    with store.engine.begin() as c:
        c.execute(text("UPDATE audit SET operator = 'd01' WHERE seq = 2"))
        c.execute(text("DELETE FROM audit WHERE seq = 3"))
    v = verify(store.engine)
    assert (not v.ok and v.bad_seq == 3 and "missing" in v.reason) or "deleted" in v.reason


def test_open_case_query_uses_partial_index(sqlite_url: str, gudang: Deployment) -> None:
    store = Store(make_engine(sqlite_url), gudang)
    new_case(store)
    with store.engine.connect() as c:
        plan = " ".join(
            str(r[-1])
            for r in c.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT * FROM cases WHERE status NOT IN "
                    "('closed', 'void', 'merged') ORDER BY received_at, id"
                )
            )
        )
    assert "ix_cases_open_received" in plan


def _officer(store: Store, code: str):  # type: ignore[no-untyped-def]
    return {o.code: o for o in store.officers()}[code]


def test_officer_with_two_cases_stays_busy_until_both_are_done(store: Store) -> None:
    a, b = new_case(store), new_case(store, title="second")
    store.act(a, "dispatch", D01, to="2-03")
    store.act(b, "dispatch", D01, to="2-03")
    store.act(a, "arrive", D01)
    assert (_officer(store, "2-03").status, _officer(store, "2-03").case_id) == ("on_scene", a)
    store.act(a, "handle", D01)
    o = _officer(store, "2-03")
    assert (o.status, o.case_id, o.load) == ("en_route", b, 1)
    store.act(b, "return", D01, reason="wrong squad")
    assert _officer(store, "2-03").status == "available"


def test_hold_and_void_free_the_officer_and_off_duty_is_refused(store: Store) -> None:
    cid = new_case(store)
    store.act(cid, "dispatch", D01, to="2-06")
    store.act(cid, "hold", SUP, reason="owner away")
    assert _officer(store, "2-06").status == "available"
    store.act(cid, "resume", SUP)
    assert _officer(store, "2-06").status == "en_route"
    store.act(cid, "hold", SUP, reason="owner away")
    store.act(cid, "void", SUP, reason="duplicate report")
    assert (_officer(store, "2-06").status, _officer(store, "2-06").case_id) == ("available", None)
    store.set_officer_status("1-04", "off_duty", SUP)
    with pytest.raises(Refused, match="off duty"):
        store.act(new_case(store), "dispatch", D01, to="1-04")
    assert _officer(store, "1-04").status == "off_duty"


def test_resume_after_an_escalation_waits_a_running_interval(store: Store) -> None:
    cid = new_case(store)
    store.act(cid, "escalate", SUP, reason="manual", now=T0 + timedelta(seconds=61))
    before = store.get(cid)
    store.act(cid, "hold", SUP, reason="x", now=T0 + timedelta(seconds=70))
    store.act(cid, "resume", SUP, now=T0 + timedelta(seconds=10_000))
    after = store.get(cid)
    shift = timedelta(seconds=10_000 - 70)
    assert after.escalated_at == before.escalated_at + shift
    assert after.next_check_at == before.next_check_at + shift


def test_audit_reports_unreadable_values_and_a_missing_head(
    sqlite_url: str, gudang: Deployment
) -> None:
    store = Store(make_engine(sqlite_url), gudang)
    cid = new_case(store)
    store.act(cid, "ack", D01)
    with store.engine.begin() as c:
        c.execute(text("UPDATE audit SET at = 'garbage' WHERE seq = 2"))
    v = verify(store.engine)
    assert not v.ok and v.bad_seq == 2 and "unreadable" in v.reason
    with store.engine.begin() as c:
        c.execute(text("DELETE FROM audit_head"))
    v = verify(store.engine)
    assert not v.ok and "head" in v.reason
