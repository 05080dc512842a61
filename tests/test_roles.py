"""Who may make which move (roles from the roster) and 监管分离: the one who dispatched or
handled a case is not the one who closes it. Store-level rules on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from tafang.store.cases import Actor, Refused, Store
from tafang.store.config import load_config
from tafang.store.db import make_engine
from tafang.store.moves import MOVES, ROLES, allowed, refusal_for

from tests.conftest import ROOT

D01 = Actor("d01", "t1")
D02 = Actor("d02", "t2")
SUP = Actor("s01", "t9")
CHK = Actor("c01", "t7")
ADM = Actor("a01", "t0")
VIEW = Actor("v01", "wall")
T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)

EXPECTED = {
    "viewer": set(),
    "admin": set(),
    "dispatcher": {
        "ack",
        "dispatch",
        "reassign",
        "arrive",
        "handle",
        "return",
        "merge",
        "escalate",
        "note",
    },
    "checker": {"close", "rework", "note"},
}
EXPECTED["supervisor"] = EXPECTED["dispatcher"] | {
    "hold",
    "resume",
    "void",
    "reopen",
    "supervise",
    "close",
    "rework",
}


def test_the_role_table_is_the_registry() -> None:
    """`allowed` (what the console greys out) says exactly the table of issue 10."""
    for role in ROLES:
        assert {m for m, move in MOVES.items() if allowed(move, role)} == EXPECTED[role], role
    assert not any(allowed(m, None) for m in MOVES.values())


def handled_case(store: Store, by: Actor = D01) -> int:
    """A case dispatched and handled by `by`."""
    cid = store.create({"title": "占道经营", "grid": store.d.tower.grids[0].code}, by, now=T0).id
    store.act(cid, "dispatch", by, to="1-01")
    store.act(cid, "arrive", by)
    store.act(cid, "handle", by)
    return cid


def refused(store: Store, *args: object, **kw: object) -> Refused:
    with pytest.raises(Refused) as e:
        store.act(*args, **kw)  # type: ignore[arg-type]
    return e.value


def test_a_viewer_and_an_admin_make_no_move(store: Store) -> None:
    cid = handled_case(store)
    for actor in (VIEW, ADM):
        e = refused(store, cid, "note", actor)
        assert e.code == "role" and "roles rule" in str(e)
    with pytest.raises(Refused, match="roles rule"):
        store.create({"title": "x"}, VIEW)


def test_someone_off_the_roster_is_told_how_to_be_added(store: Store) -> None:
    cid = handled_case(store)
    e = refused(store, cid, "note", Actor("mallory", "t"))
    assert e.code == "not_on_roster" and "[[operators]]" in str(e)
    assert store.get(cid).status == "handled"  # reads still work


def test_permission_comes_before_the_reason(store: Store) -> None:
    """A dispatcher voiding without a reason hears about the role, not the reason."""
    cid = handled_case(store)
    assert refused(store, cid, "void", D01).code == "role"
    assert refused(store, cid, "rework", D01).code == "role"
    assert refused(store, cid, "rework", CHK).code == "needs_reason"


def test_a_dispatcher_may_not_close_nor_resume_a_supervisors_hold(store: Store) -> None:
    cid = handled_case(store)
    assert refused(store, cid, "close", D01).code == "role"
    other = store.create({"title": "噪声", "grid": store.d.tower.grids[0].code}, D01).id
    store.act(other, "hold", SUP, reason="业主不在")
    assert refused(store, other, "resume", D02).code == "role"
    assert refused(store, other, "void", D02, reason="x").code == "role"
    assert store.act(other, "resume", SUP).status == "new"


def test_separation_the_handler_does_not_check(store: Store) -> None:
    """监管分离: a supervisor who handled the case may not close it; a checker may."""
    cid = handled_case(store, by=SUP)
    e = refused(store, cid, "close", SUP)
    assert e.code == "separation" and "监管分离" in str(e)
    c = store.act(cid, "close", CHK)
    assert c.status == "closed" and store.timeline(cid)[-1].operator == "c01"


def test_a_dispatcher_of_the_case_may_not_close_it_either(store: Store) -> None:
    cid = store.create({"title": "渣土", "grid": store.d.tower.grids[0].code}, SUP, now=T0).id
    store.act(cid, "dispatch", SUP, to="1-01")  # s01 dispatched it
    store.act(cid, "arrive", D01)
    store.act(cid, "handle", D01)  # d01 recorded the handling
    assert refused(store, cid, "close", SUP).code == "separation"
    assert store.act(cid, "close", Actor("s02", "t3")).status == "closed"


def test_rework_goes_back_to_the_handler(store: Store) -> None:
    cid = handled_case(store)
    c = store.act(cid, "rework", CHK, reason="现场仍有堆物")
    assert c.status == "dispatched" and c.assignee == "1-01"
    detail = store.timeline(cid)[-1].detail
    assert detail["handler"] == "d01" and detail["back_to"] == "1-01"


def test_a_dispatcher_escalates_up_to_the_emergency_circle_only(store: Store) -> None:
    cid = store.create({"title": "x", "grid": store.d.tower.grids[0].code}, D01).id
    store.act(cid, "escalate", D01, reason="no answer")  # -> enforcement circle
    store.act(cid, "escalate", D01, reason="no answer")  # -> emergency circle
    e = refused(store, cid, "escalate", D01)  # no reason given: the rule speaks first
    assert e.code == "escalate_above"
    assert store.act(cid, "escalate", SUP, reason="高位监督").escalation_level == 3


def test_refusal_for_names_the_rule_in_chinese_params() -> None:
    r = refusal_for(MOVES["hold"], "dispatcher", "d01")
    assert r is not None and r.params["roles_zh"] == "带班领导" and r.params["role_zh"]
    assert refusal_for(MOVES["close"], "checker", "c01", hands=frozenset({"d01"})) is None


# ---- the CLI: who acts is who the system says (SQLite: the OS user) ------------------------


@pytest.fixture
def cli(sqlite_url: str, tmp_path, capsys, monkeypatch):  # type: ignore[no-untyped-def]
    """`tafang` on a SQLite store whose roster maps this process's OS user to `me`."""
    from tafang.console.cli import main

    from tests.conftest import login_of, roster_as

    monkeypatch.delenv("TAFANG_OPERATOR", raising=False)

    def run(me: str | None, *argv: str) -> tuple[int, str]:
        logins = {me: login_of(sqlite_url)} if me else {}
        cfg = roster_as(tmp_path / f"config-{me}.toml", logins)
        rc = main(["--db", sqlite_url, "--config", str(cfg), *argv])
        return rc, capsys.readouterr().err

    return run


def _case_via_cli(cli) -> str:  # type: ignore[no-untyped-def]
    for argv in (
        ("case", "ack", "1"),
        ("case", "dispatch", "1", "--to", "1-01"),
        ("case", "arrive", "1"),
        ("case", "handle", "1"),
    ):
        rc, err = cli("d01", *argv)
        assert rc == 0, err
    return "1"


def test_hostile_cli_calls_are_refused_with_exit_1(cli, sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store(make_engine(sqlite_url), load_config(ROOT / "config.toml"))
    store.create({"title": "堆物", "grid": store.d.tower.grids[0].code}, D01)
    cid = _case_via_cli(cli)
    rc, err = cli(None, "case", "note", cid)  # the OS user is on nobody's roster line
    assert rc == 1 and "is not on the roster" in err and "[[operators]] login" in err
    rc, err = cli("d01", "--operator", "s01", "case", "hold", cid, "-r", "x")
    assert rc == 1 and "is not you" in err
    rc, err = cli("d01", "case", "close", cid)  # d01 dispatched and handled it
    assert rc == 1 and "close needs a supervisor or checker" in err
    rc, err = cli("s01", "case", "close", cid)
    assert rc == 0, err
    rc, err = cli("v01", "case", "reopen", cid, "-r", "x")
    assert rc == 1 and "roles rule" in err
    rc, err = cli(None, "case", "show", cid)  # reads work off the roster
    assert rc == 0, err
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"source": "hotline", "external_id": "h1", "title": "噪声"}\n', "utf-8")
    rc, err = cli(None, "ingest", str(jsonl))  # importing makes cases: a write, refused
    assert rc == 1 and "is not on the roster" in err
    assert cli("v01", "ingest", str(jsonl))[0] == 1  # a viewer does not import either
    rc, err = cli("d01", "ingest", str(jsonl))
    assert rc == 0, err
    timeline = store.timeline(int(cid))
    assert [e.operator for e in timeline][-1] == "s01"


# ---- secrets: from the environment or systemd credentials, never inline -------------------


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ('token = "3f9a0c"', "contacts[0].token"),
        ('secret = "SEC0123"', "contacts[0].secret"),
        ('key = "693axxx6-7aoc"', "contacts[0].key"),
    ],
)
def test_config_check_refuses_an_inline_secret_naming_the_key(
    tmp_path, capsys, line: str, where: str
) -> None:  # type: ignore[no-untyped-def]
    from tafang.console.cli import main

    text_ = (ROOT / "config.toml").read_text(encoding="utf-8")
    text_ = text_.replace(
        '[[contacts]]\nlevel = "grid"\n', f'[[contacts]]\nlevel = "grid"\n{line}\n', 1
    )
    cfg = tmp_path / "config.toml"
    cfg.write_text(text_, encoding="utf-8")
    assert main(["--config", str(cfg), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert where in err and "inline secret" in err


def test_a_url_carrying_a_token_is_refused_too(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from tafang.console.cli import main

    text_ = (ROOT / "config.toml").read_text(encoding="utf-8")
    robot = "https://oapi.dingtalk.com/robot/send"
    first = 'url = "http://127.0.0.1:9/robot/send"'
    cfg = tmp_path / "config.toml"
    cfg.write_text(text_.replace(first, f'url = "{robot}?access_token=ab12cd"', 1), "utf-8")
    assert main(["--config", str(cfg), "config", "check"]) == 2
    err = capsys.readouterr().err
    assert "contacts[0].url" in err and "access_token=" in err and "ab12cd" not in err
    cfg.write_text(text_.replace(first, f'url = "{robot}?access_token="', 1), "utf-8")
    assert main(["--config", str(cfg), "config", "check"]) == 0  # the token comes from env


# ---- reports: closes by someone other than the handler ------------------------------------


def test_the_report_counts_closes_by_someone_other_than_the_handler(store: Store) -> None:
    from zoneinfo import ZoneInfo

    from tafang.sla.reports import build, render
    from tafang.store.record import Entry, append

    now = datetime.now(UTC)
    day = now.astimezone(ZoneInfo(store.d.timezone)).date()
    for _ in range(2):
        store.act(handled_case(store), "close", CHK)
    assert build(store, store.d, "daily", day).separation.cell == "100.0% (2/2)"
    legacy = handled_case(store)  # a close by the handler, written before the rule held
    with store.write() as (conn, head):
        append(conn, head, [Entry(now, "d01", "t1", "close", legacy, {"from": "handled"})])
    rep = build(store, store.d, "daily", day)
    assert rep.separation.cell == "66.7% (2/3)"
    assert "closed by another (监管分离)" in render(rep, store.d, "md")
