"""Assessment (人员考核, store/assessment.py): every figure against a hand-computed fixture,
on SQLite and PostgreSQL.

The day 2023-03-01 (a Wednesday; Asia/Shanghai), category 0102 (暴露垃圾: 1 working day to
resolve; 1-3-5 = 60 / 180 / 300 s from receipt), all received at 09:00 or 10:00 local:

  A  imported, on time at every stage, closed by c01, handled by d01 (officer 1-03)
  B  imported, late at every stage, handled 9 days later, 1 返工, 1 回退, 督办, closed by
     its own handler d01 (officer 1-03)
  C  imported, still new (its resolve deadline, Thursday 09:00, lies after the day)
  D  imported, void: counted in the overview, in no rate
  E  live, through the store's own moves years later: 回退, 挂账 and resume, 督办, 返工,
     closed by checker c01 after d01 handled it (officer 2-01)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from tafang.store.assessment import assess
from tafang.store.cases import Actor, Store
from tafang.store.intake import ingest

DAY0 = datetime(2023, 2, 28, 16, 0, tzinfo=UTC)  # 2023-03-01 00:00 local
DAY1 = datetime(2023, 3, 1, 16, 0, tzinfo=UTC)
T9 = "2023-03-01T09:00:00+08:00"
DISP, SUP, CHK = Actor("d01", "t1"), Actor("s01", "t2"), Actor("c01", "t3")


def _rec(key: str, **kw: object) -> str:
    base = {
        "source": "ping_an",
        "external_id": key,
        "title": "路边暴露垃圾堆积",
        "category": "0102",
        "grid": "33010600700801",
        "received_at": T9,
    }
    return json.dumps({**base, **kw})


HISTORY = [
    _rec(
        "A",
        acknowledged_at="2023-03-01T09:00:30+08:00",
        dispatched_at="2023-03-01T09:02:00+08:00",
        arrived_at="2023-03-01T09:04:00+08:00",
        handled_at="2023-03-01T10:00:00+08:00",
        closed_at="2023-03-01T11:00:00+08:00",
        assignee="1-03",
        handled_by="d01",
        closed_by="c01",
    ),
    _rec(
        "B",
        acknowledged_at="2023-03-01T09:01:30+08:00",
        dispatched_at="2023-03-01T09:03:20+08:00",
        arrived_at="2023-03-01T09:06:40+08:00",
        handled_at="2023-03-10T10:00:00+08:00",
        closed_at="2023-03-10T11:00:00+08:00",
        assignee="1-03",
        handled_by="d01",
        closed_by="d01",
        reworks=1,
        returns=1,
        supervisions=1,
    ),
    _rec("C"),
    _rec("D", status="void"),
]


def _live_case(store: Store) -> int:
    r = ingest(
        store,
        [_rec("E", received_at="2023-03-01T10:00:00+08:00")],
        origin="live",
        actor=DISP,
    )
    assert r.accepted == 1
    cid = max(c.id for c in store.cases("all"))
    for actor, move, kw in (
        (DISP, "ack", {}),
        (DISP, "dispatch", {"to": "2-01"}),
        (DISP, "return", {"reason": "wrong squad"}),
        (DISP, "dispatch", {"to": "2-01"}),
        (SUP, "supervise", {"reason": "slow"}),
        (SUP, "hold", {"reason": "waiting for the owner"}),
        (SUP, "resume", {}),
        (DISP, "arrive", {}),
        (DISP, "handle", {}),
        (CHK, "rework", {"reason": "still dirty"}),
        (DISP, "arrive", {}),
        (DISP, "handle", {}),
        (CHK, "close", {}),
    ):
        store.act(cid, move, actor, **kw)
    return cid


@pytest.fixture
def assessed(store: Store):
    r = ingest(store, HISTORY, origin="fixture", actor=SUP, history=True)
    assert (r.accepted, r.rejected) == (4, 0), r.errors
    _live_case(store)
    return assess(store, store.d, DAY0, DAY1, datetime.now(UTC))


def _rates(t) -> dict[str, tuple[int, int]]:
    return {k: (r.met, r.due) for k, r in t.rates.items()}


def test_every_rate_with_its_denominator(assessed) -> None:
    t = assessed.total
    assert (t.cases, t.supervised) == (4, 2)  # D is void
    assert _rates(t) == {
        "respond": (1, 4),  # C is due (its minute passed in the day) and not met
        # E's dispatch and arrival clocks started again at its 回退 and 返工 (store/clocks.py),
        # and it met them then: A and E
        "dispatch": (2, 4),
        "arrive": (2, 4),
        "handled_on_time": (1, 3),  # C's deadline lies after the day: not due
        "closed": (3, 3),
        "reworked": (2, 3),  # B imported, E on the record ÷ handled A, B, E
        "returned": (2, 3),  # ÷ dispatched A, B, E
        "extended": (1, 4),  # E's hold ÷ filed
        "separation": (2, 3),  # B closed by its own handler
    }
    o = assessed.overview
    assert o.cases == 5 and o.by_status == {"closed": 3, "new": 1, "void": 1}


def test_per_officer_squad_and_the_rest(assessed) -> None:
    by = assessed.by
    assert {k: t.cases for k, t in by["officer"].items()} == {"1-03": 2, "2-01": 1}
    assert {k: t.cases for k, t in by["squad"].items()} == {"sq1": 2, "sq2": 1}
    assert {k: t.cases for k, t in by["channel"].items()} == {"ping_an": 4}
    assert {k: t.cases for k, t in by["category"].items()} == {"0102": 4}
    assert {k: t.cases for k, t in by["group"].items()} == {"basic": 4}
    assert list(by["circle"]) and sum(t.cases for t in by["circle"].values()) == 4
    sq1 = by["squad"]["sq1"]
    assert _rates(sq1)["respond"] == (1, 2) and _rates(sq1)["separation"] == (1, 2)
    assert _rates(by["officer"]["2-01"])["reworked"] == (1, 1)
    assert sq1.supervised == 1


def test_time_per_stage_mean_and_p90(assessed) -> None:
    sq1 = assessed.by["squad"]["sq1"]
    assert sq1.stage("respond") == (2, 60.0, pytest.approx(90.0, abs=0.01))
    n, mean, p90 = sq1.stage("dispatch")  # A 90 s, B 110 s
    assert (n, mean, p90) == (2, pytest.approx(100.0, abs=0.01), pytest.approx(110.0, abs=0.01))
    n, mean, p90 = sq1.stage("arrive")  # A 120 s, B 200 s
    assert (n, mean, p90) == (2, pytest.approx(160.0, abs=0.01), pytest.approx(200.0, abs=0.01))
    assert assessed.by["squad"]["sq1"].stage("close")[0] == 2
    assert assessed.total.stage("respond")[0] == 3  # A, B, E; C never acknowledged


def test_an_empty_period_has_no_rates(store: Store) -> None:
    a = assess(store, store.d, DAY0, DAY1, datetime.now(UTC))
    assert a.total.cases == 0 and all(r.value is None for r in a.total.rates.values())
    assert a.total.stage("handle") == (0, None, None)


def test_assess_from_the_command_line(store: Store, db_url: str, monkeypatch, capsys) -> None:
    from tafang.console.cli import main

    ingest(store, HISTORY, origin="fixture", actor=SUP, history=True)
    monkeypatch.setenv("TAFANG_DB", db_url)
    monkeypatch.delenv("TAFANG_CONFIG", raising=False)
    argv = ["assess", "--from", "2023-03-01", "--to", "2023-03-01", "--by", "officer"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (row,) = out["rows"]
    assert row["officer"] == "1-03" and row["cases"] == 2
    assert row["respond"] == {"met": 1, "due": 2, "rate": 0.5}
    assert main(argv) == 0
    assert "| 1-03 | 李明 | 2 | 1 | 50.0% (1/2) |" in capsys.readouterr().out
    assert main(["assess", "--from", "2023-03-02", "--to", "2023-03-01"]) == 2
