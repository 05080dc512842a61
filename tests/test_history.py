"""History import (`tafang ingest --history`, store/intake/history.py) on SQLite and
PostgreSQL: cases as they were, no escalation, no notification, one record entry a batch."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from tafang.console.cli import main
from tafang.console.history_sim import HistorySim
from tafang.sla.escalate import sweep
from tafang.store.cases import Actor, Store
from tafang.store.intake import ingest
from tafang.store.models import AuditEntry, CaseHistory, Outbox
from tafang.store.record import verify

from tests.conftest import login_of, roster_as

SUP = Actor("s01", "t")


def rec(key: str, **kw: Any) -> dict[str, Any]:
    return {
        "source": "ping_an",
        "external_id": key,
        "title": "共享单车堵塞消防通道",
        "category": "0590",
        "grid": "N1-01",
        "received_at": "2023-05-04T10:00:00+08:00",
        **kw,
    }


CLOSED = rec(
    "closed",
    acknowledged_at="2023-05-04T10:00:20+08:00",
    dispatched_at="2023-05-04T10:01:00+08:00",
    arrived_at="2023-05-04T10:04:00+08:00",
    handled_at="2023-05-04T10:30:00+08:00",
    closed_at="2023-05-04T11:00:00+08:00",
    assignee="2-03",
    acknowledged_by="d01",
    dispatched_by="d01",
    handled_by="d02",
    closed_by="c01",
    reworks=2,
    supervisions=1,
    escalation_level=1,
)
OPEN = rec(  # still on scene, its deadlines long past
    "open",
    acknowledged_at="2023-05-04T10:00:20+08:00",
    dispatched_at="2023-05-04T10:01:00+08:00",
    arrived_at="2023-05-04T10:04:00+08:00",
    assignee="sq2",
)


def _run(store: Store, recs: list[dict[str, Any]], **kw: Any):
    return ingest(store, [json.dumps(r) for r in recs], origin="h.jsonl", actor=SUP, **kw)


def test_cases_come_in_as_they_were(store: Store) -> None:
    r = _run(store, [CLOSED, OPEN, rec("new")], history=True)
    assert (r.accepted, r.rejected) == (3, 0), r.errors
    by_key = {c.external_id: c for c in store.cases("all")}
    c = by_key["closed"]
    assert (c.status, c.assignee, c.assignee_kind, c.escalation_level, c.supervised) == (
        "closed",
        "2-03",
        "officer",
        1,
        True,
    )
    assert c.closed_at == datetime(2023, 5, 4, 3, 0, tzinfo=UTC)
    assert c.arrived_at == datetime(2023, 5, 4, 2, 4, tzinfo=UTC)
    o = by_key["open"]
    assert (o.status, o.assignee, o.assignee_kind) == ("on_scene", "sq2", "squad")
    assert by_key["new"].status == "new"
    with store.engine.connect() as conn:
        h = conn.execute(select(CaseHistory).where(CaseHistory.case_id == c.id)).one()
        assert (h.handled_by, h.closed_by, h.reworks, h.supervisions) == ("d02", "c01", 2, 1)
        assert conn.execute(select(func.count()).select_from(CaseHistory)).scalar() == 3


def test_no_escalation_no_notification_and_one_record_entry(store: Store) -> None:
    _run(store, [CLOSED, OPEN, rec("new")], history=True)
    assert sweep(store, store.clocks, datetime.now(UTC) + timedelta(days=1)) == []
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Outbox)).scalar() == 0
        entries = conn.execute(select(AuditEntry.action, AuditEntry.detail)).all()
    assert [e.action for e in entries] == ["import"]
    detail = json.loads(entries[0].detail)
    assert detail["history"] is True and detail["cases"] == 3 and detail["closed"] == 1
    assert verify(store.engine).ok


def test_a_live_import_after_history_still_runs_its_clocks(store: Store) -> None:
    _run(store, [OPEN], history=True)
    now = datetime.now(UTC)
    _run(store, [rec("live", received_at=now.isoformat())])
    live = next(c for c in store.cases("all") if c.external_id == "live")
    assert live.status == "new" and live.next_check_at is not None
    assert verify(store.engine).ok


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"closed_at": "yesterday"}, "unreadable closed_at"),
        ({"acknowledged_at": "2023-05-04T09:00:00+08:00"}, "before received_at"),
        (
            {"handled_at": "2023-05-04T12:00:00+08:00", "arrived_at": "2023-05-04T13:00:00+08:00"},
            "handled_at '2023-05-04T12:00:00+08:00' is before arrived_at",
        ),
        ({"status": "held"}, "status 'held' is not one of"),
        ({"status": "closed"}, "status closed needs closed_at"),
        ({"status": "dispatched"}, "status dispatched needs dispatched_at"),
        ({"assignee": "9-99"}, "unknown assignee '9-99'"),
        ({"reworks": -1}, "reworks must be a whole number"),
        ({"closed_by": ["c01"]}, "closed_by must be an operator code"),
    ],
)
def test_a_history_that_cannot_be_counted_is_rejected(
    store: Store, fields: dict[str, Any], reason: str
) -> None:
    r = _run(store, [rec("x", **fields)], history=True)
    assert r.accepted == 0 and r.rejected == 1
    assert reason in r.errors[0][1], r.errors


def test_a_plain_ingest_keeps_history_fields_as_unknown(store: Store) -> None:
    r = _run(store, [CLOSED])
    assert r.accepted == 1
    (c,) = store.cases("all")
    assert c.status == "new" and c.closed_at is None  # a feed cannot close a case
    assert json.loads(c.raw)["extra"]["closed_by"] == "c01"


def test_a_simulated_week_imports_cleanly(store: Store) -> None:
    start = datetime(2023, 6, 4, 16, 0, tzinfo=UTC)
    recs = list(HistorySim(store.d, seed=7).records(start, days=7))
    assert 900 < len(recs) < 1400  # ≈ 163 a day
    r = _run(store, recs, history=True)
    assert (r.accepted, r.rejected) == (len(recs), 0), r.errors[:3]
    statuses = {c.status for c in store.cases("all")}
    assert {"closed", "void"} <= statuses
    assert sweep(store, store.clocks, datetime.now(UTC)) == []


def test_history_from_the_command_line_is_a_supervisors_move(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    login = login_of(db_url)
    f = tmp_path / "h.jsonl"
    f.write_text(json.dumps(CLOSED) + "\n", encoding="utf-8")
    monkeypatch.setenv("TAFANG_DB", db_url)
    cfg = roster_as(tmp_path / "d.toml", {"d01": login})
    monkeypatch.setenv("TAFANG_CONFIG", str(cfg))
    assert main(["ingest", "--history", str(f)]) == 1
    assert "supervisor" in capsys.readouterr().err
    cfg = roster_as(tmp_path / "s.toml", {"s01": login})
    monkeypatch.setenv("TAFANG_CONFIG", str(cfg))
    assert main(["ingest", "--history", str(f)]) == 0
    assert capsys.readouterr().out.startswith("accepted=1 ")
    assert main(["audit", "verify"]) == 0


def test_bad_bytes_in_a_history_title_still_make_a_case_flagged(store: Store) -> None:
    line = json.dumps({**CLOSED, "title": "T"}).encode().replace(b'"T"', b'"\xff"')
    r = ingest(store, [line], origin="h.jsonl", actor=SUP, history=True)
    assert r.accepted == 1, r.errors
    (c,) = store.cases("all")
    assert c.status == "closed" and c.triage and "UTF-8" in c.triage_reason
