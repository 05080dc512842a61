"""The roster and the handover (交接班): shifts from config, notes, the incoming leader's ack,
all on the record; the store on SQLite and PostgreSQL, the CLI in-process."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from tafang.console.cli import main
from tafang.store import handover
from tafang.store.cases import Actor, Refused, Store
from tafang.store.config import ConfigError, Deployment, load_config
from tafang.store.models import AuditEntry
from tafang.store.record import verify
from tafang.store.roster import day_slots, handover_at, slot_at

from tests.conftest import ROOT, login_of, roster_as
from tests.test_pg_roles import logins  # noqa: F401  (the fixture: real login roles)

D01 = Actor("d01", "t1")
S01 = Actor("s01", "t9")  # 带班领导 of the day shift
S02 = Actor("s02", "t8")  # 带班领导 of the night shift
C01 = Actor("c01", "t7")
V01 = Actor("v01", "wall")
# 19:00 in Hangzhou on 3 December: the second half of the day shift, so the handover nearest
# is the one to tonight's night shift (2026-12-03/night), whose leader is s02.
EVENING = datetime(2026, 12, 3, 11, 0, tzinfo=UTC)
NIGHT = datetime(2026, 12, 3, 12, 30, tzinfo=UTC)  # 20:30 local


def _entries(store: Store, action: str) -> list[dict]:
    a = AuditEntry.__table__
    with store.engine.connect() as conn:
        rows = conn.execute(
            select(a.c.operator, a.c.detail).where(a.c.action == action).order_by(a.c.seq)
        ).all()
    return [{"operator": r.operator, **json.loads(r.detail)} for r in rows]


# ---- the roster, pure ------------------------------------------------------------------------
def test_the_gudang_roster_tiles_the_day(gudang: Deployment) -> None:
    day, night = day_slots(gudang, EVENING.date())
    assert (day.key, night.key) == ("2026-12-03/day", "2026-12-03/night")
    assert (day.shift.leader, night.shift.leader) == ("s01", "s02")
    assert night.end - night.start == timedelta(hours=12)
    assert slot_at(gudang, datetime(2026, 12, 3, 23, 59, tzinfo=UTC)).key == "2026-12-03/night"
    assert slot_at(gudang, datetime(2026, 12, 4, 0, 0, tzinfo=UTC)).key == "2026-12-04/day"
    h = handover_at(gudang, EVENING)
    assert (h.outgoing.key, h.incoming.key, h.leader) == (
        "2026-12-03/day",
        "2026-12-03/night",
        "s02",
    )
    assert handover_at(gudang, NIGHT).key == "2026-12-03/night"  # just received
    assert handover_at(gudang, NIGHT + timedelta(hours=7)).key == "2026-12-04/day"


def _with_shifts(tmp_path: Path, shifts: str) -> Path:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    start = text.index("[[shifts]]")
    end = text.index("# ----", start)
    p = tmp_path / "config.toml"
    p.write_text(text[:start] + shifts + "\n" + text[end:], encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("shifts", "says"),
    [
        (
            '[[shifts]]\ncode = "a"\nname = "A"\nstart = "08:00"\nend = "18:00"\n'
            'squads = ["sq1"]\nleader = "s01"\n'
            '[[shifts]]\ncode = "b"\nname = "B"\nstart = "20:00"\nend = "08:00"\n'
            'squads = ["sq3"]\nleader = "s02"\n',
            "ends at 18:00 but the next shift (b) starts at 20:00",
        ),
        (
            '[[shifts]]\ncode = "a"\nname = "A"\nstart = "08:00"\nend = "08:00"\n'
            'squads = ["sq1"]\nleader = "s01"\n',
            "start and end are both 08:00",
        ),
        (
            '[[shifts]]\ncode = "a"\nname = "A"\nstart = "8am"\nend = "20:00"\n'
            'squads = ["sq1"]\nleader = "s01"\n',
            "is not a time HH:MM",
        ),
        (
            '[[shifts]]\ncode = "a"\nname = "A"\nstart = "08:00"\nend = "20:00"\n'
            'squads = ["sq9"]\nleader = "s01"\n',
            "shifts[0].squads[0]: unknown code 'sq9'",
        ),
        (
            '[[shifts]]\ncode = "a"\nname = "A"\nstart = "08:00"\nend = "20:00"\n'
            'squads = ["sq1"]\nleader = "d01"\n'
            '[[shifts]]\ncode = "b"\nname = "B"\nstart = "20:00"\nend = "08:00"\n'
            'squads = ["sq3"]\nleader = "s02"\n',
            "d01 is a dispatcher; the 带班领导 must be a supervisor",
        ),
    ],
)
def test_bad_shifts_are_refused_with_the_key(tmp_path: Path, shifts: str, says: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(_with_shifts(tmp_path, shifts))
    assert says in str(e.value)


# ---- the handover in the store ---------------------------------------------------------------
def _case(store: Store, **kw: object) -> int:
    g = store.d.grids_by_label["N1-03"].code
    fields = {"title": "路面塌陷", "grid": g, "category": "0590", "priority": "critical", **kw}
    return store.create(fields, D01, now=EVENING - timedelta(hours=1)).id


def test_handover_lists_cases_by_kind_and_the_notes(store: Store) -> None:
    breached = _case(store)  # received an hour ago, never acknowledged: breached
    held = _case(store, title="店外经营")
    store.act(
        held, "hold", S01, reason="当事人外出", now=EVENING - timedelta(minutes=59, seconds=50)
    )
    watched = _case(store, title="噪声")
    store.act(watched, "supervise", S01, reason="群众多次投诉", now=EVENING)
    handover.add_note(store, "N1-03 塌陷处已围挡，夜班请复查", D01, now=EVENING)
    v = handover.read(store, EVENING + timedelta(minutes=5))
    assert v.key == "2026-12-03/night"
    assert {c.id for c in v.open} == {breached, held, watched}
    assert [c.id for c in v.held] == [held]
    assert breached in {c.id for c in v.breached} and held not in {c.id for c in v.breached}
    assert [c.id for c in v.supervised] == [watched]
    assert [(n.by, n.text) for n in v.notes] == [("d01", "N1-03 塌陷处已围挡，夜班请复查")]
    assert v.ack is None


def test_the_incoming_leader_acknowledges_once_on_the_record(store: Store) -> None:
    _case(store)
    handover.add_note(store, "交班：一件特急未受理", D01, now=EVENING)
    v = handover.acknowledge(store, S02, now=EVENING + timedelta(minutes=50))
    assert v.ack is not None and (v.ack.by, v.ack.leader) == ("s02", "s02")
    with pytest.raises(Refused) as e:
        handover.acknowledge(store, S01, now=EVENING + timedelta(minutes=55))
    assert e.value.code == "handover_acked" and "s02" in str(e.value)
    [ack] = _entries(store, "handover_ack")
    assert ack == {
        "operator": "s02",
        "handover": "2026-12-03/night",
        "leader": "s02",
        "stand_in": False,
        "open": 1,
        "held": 0,
        "breached": 1,
        "supervised": 0,
        "notes": 1,
    }
    assert _entries(store, "handover_note")[0]["text"] == "交班：一件特急未受理"
    assert verify(store.engine).ok


def test_a_stand_in_supervisor_is_named_so_and_others_may_not_ack(store: Store) -> None:
    for who in (D01, C01, V01):
        with pytest.raises(Refused):
            handover.acknowledge(store, who, now=EVENING)
    handover.acknowledge(store, S01, now=EVENING)
    assert _entries(store, "handover_ack")[0]["stand_in"] is True


def test_notes_need_text_and_a_worker(store: Store) -> None:
    with pytest.raises(Refused):
        handover.add_note(store, "   ", D01, now=EVENING)
    with pytest.raises(Refused):
        handover.add_note(store, "x" * 2001, D01, now=EVENING)
    with pytest.raises(Refused):
        handover.add_note(store, "大屏不能写", V01, now=EVENING)
    assert handover.add_note(store, "checker's note", C01, now=EVENING) == "2026-12-03/night"
    assert _entries(store, "handover_note")[0]["operator"] == "c01"


# ---- the command line ------------------------------------------------------------------------
@pytest.fixture
def run(
    db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    """`tafang` in-process as `who` (the roster maps this process's login to that code)."""

    def _run(who: str, *argv: str) -> tuple[int, str, str]:
        cfg = roster_as(tmp_path / f"{who}.toml", {who: login_of(db_url)})
        monkeypatch.setenv("TAFANG_DB", db_url)
        monkeypatch.setenv("TAFANG_CONFIG", str(cfg))
        monkeypatch.setenv("TAFANG_OPERATOR", who)
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def test_officer_and_handover_from_the_command_line(run) -> None:
    code, out, err = run("d01", "officer", "2-03", "break", "--json")
    assert code == 0, err
    got = json.loads(out)
    assert (got["code"], got["duty"], got["status"], got["was"]) == (
        "2-03",
        "on_break",
        "on_break",
        "on_duty",
    )
    code, out, _ = run("d01", "officer", "--json")
    duty = {o["code"]: o["duty"] for o in json.loads(out)}
    assert duty["2-03"] == "on_break" and duty["2-04"] == "on_duty"
    code, out, err = run("d01", "officer", "2-03", "back")
    assert code == 0 and "on break -> on duty" in out, err
    assert run("v01", "officer", "2-03", "off")[0] == 1  # a viewer may not
    assert run("d01", "officer", "9-99", "off")[0] == 1  # no such officer: not found
    assert run("d01", "officer", "2-03")[0] == 2  # a code without a word

    code, out, err = run("d01", "handover", "note", "夜班请关注", "N1-03")
    assert code == 0 and "note added" in out, err
    code, out, _ = run("d01", "handover", "--json")
    h = json.loads(out)
    assert [n["text"] for n in h["notes"]] == ["夜班请关注 N1-03"]
    assert h["acknowledged"] is None and h["counts"]["notes"] == 1
    assert run("d01", "handover", "ack")[0] == 1  # a dispatcher may not take it over
    code, out, err = run(h["leader"], "handover", "ack", "--json")
    assert code == 0, err
    assert json.loads(out)["acknowledged"]["by"] == h["leader"]
    assert run(h["leader"], "handover", "ack")[0] == 1  # once
    assert run("d01", "handover", "ack", "extra")[0] == 2


def test_roster_from_the_command_line(run) -> None:
    code, out, _ = run("d01", "roster", "--date", "2026-12-03", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["key"] for r in rows] == ["2026-12-03/day", "2026-12-03/night"]
    assert rows[1]["leader"] == "s02" and [q["code"] for q in rows[1]["squads"]] == ["sq3", "sq4"]
    assert run("d01", "roster", "--date", "tomorrow")[0] == 2
    code, out, _ = run("d01", "config", "check", "--json")
    checked = json.loads(out)
    assert [s["leader"] for s in checked["shifts"]] == ["s01", "s02"]
    assert checked["voice"]["command"][:3] == ["espeak-ng", "-v", "cmn"]


if sys.platform == "win32":  # pragma: no cover
    pytest.skip("POSIX logins", allow_module_level=True)


# ---- PostgreSQL: the operators' own login roles ---------------------------------------------


def test_duty_notes_and_ack_as_real_login_roles(logins: dict) -> None:  # noqa: F811
    """The grants of migration 0005: a dispatcher's login sets duty and writes a note, a
    supervisor's login acknowledges; a viewer's own SQL session may write neither table."""
    import psycopg

    dep: Deployment = logins["dep"]
    d01 = Store(logins["as"]("d01"), dep)
    d01.set_officer_status("2-03", "on_break", D01, now=EVENING)
    handover.add_note(d01, "夜班复查 N1-03", D01, now=EVENING)
    s01 = Store(logins["as"]("s01"), dep)
    assert handover.acknowledge(s01, S01, now=EVENING).ack is not None
    assert {o.code: o.duty for o in s01.officers()}["2-03"] == "on_break"
    url = logins["as"]("v01").url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in (
            "INSERT INTO handover_notes (handover, at, by, text) VALUES ('x', now(), 'v01', 'x')",
            "INSERT INTO handover_acks (handover, at, by, leader) VALUES ('x', now(), 'v01', '')",
            "UPDATE officers SET duty = 'off_duty'",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
    assert verify(s01.engine).ok
