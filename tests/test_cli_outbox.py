"""`tafang outbox`: undelivered notices listed with their age; give up (on the record), retry."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from tafang.console.cli import main
from tafang.store.cases import Store
from tafang.store.config import load_config
from tafang.store.db import make_engine
from tafang.store.outbox import enqueue

from tests.conftest import login_of, roster_as
from tests.test_pg_roles import logins  # noqa: F401  (the fixture)


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys):  # type: ignore[no-untyped-def]
    cfg = roster_as(tmp_path / "config.toml", {"s01": login_of(db_url)})
    monkeypatch.setenv("TAFANG_DB", db_url)
    monkeypatch.setenv("TAFANG_CONFIG", str(cfg))
    monkeypatch.delenv("TAFANG_OPERATOR", raising=False)
    store = Store(make_engine(db_url), load_config(cfg))
    old = datetime.now(UTC) - timedelta(minutes=12)
    with store.write() as (conn, _h):
        for i, at in enumerate((old, old + timedelta(minutes=11))):
            ev = {"kind": "escalation", "case_id": 40 + i, "level_name": "grid"}
            enqueue(conn, key=f"esc-{40 + i}-respond-1", contact="grid", case_id=40 + i,
                    event=ev, now=at)  # fmt: skip
        conn.execute(text("UPDATE outbox SET attempts = 9, last_error = 'HTTP 500: boom'"))

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield run, store
    store.engine.dispose()


def test_outbox_lists_undelivered_notices_with_their_age(cli) -> None:  # type: ignore[no-untyped-def]
    run, _store = cli
    code, out, _ = run("outbox")
    assert code == 0
    lines = out.splitlines()
    assert "12 min" in lines[0] and "#40" in lines[0] and "HTTP 500" in lines[0]
    assert lines[-1] == "2 undelivered notice(s), oldest 12 min old"
    code, out, _ = run("outbox", "--json")
    data = json.loads(out)
    assert code == 0 and data["undelivered"] == 2 and data["oldest_age_seconds"] >= 12 * 60
    assert [n["key"] for n in data["notices"]] == ["esc-40-respond-1", "esc-41-respond-1"]
    assert data["notices"][0]["attempts"] == 9


def test_give_up_needs_a_reason_and_goes_on_the_record(cli) -> None:  # type: ignore[no-untyped-def]
    run, store = cli
    nid = json.loads(run("outbox", "--json")[1])["notices"][0]["id"]
    code, _out, err = run("outbox", "give-up", str(nid))
    assert code == 2 and "--reason" in err
    code, out, err = run("outbox", "give-up", str(nid), "--reason", "robot gone; phoned")
    assert code == 0, err
    assert "given up" in out
    code, _out, err = run("outbox", "give-up", str(nid), "--reason", "again")
    assert code == 1 and "no undelivered notice" in err
    code, out, _ = run("outbox", "--json")
    assert json.loads(out)["undelivered"] == 1
    with store.engine.connect() as c:
        action, op = c.execute(text("SELECT action, operator FROM audit ORDER BY seq DESC")).first()
    assert (action, op) == ("outbox_give_up", "s01")
    other = json.loads(run("outbox", "--json")[1])["notices"][0]["id"]
    code, out, err = run("outbox", "retry", str(other), "--json")
    assert code == 0, err
    assert json.loads(out)["done"] == "due now"
    assert run("outbox", "retry", "0")[0] == 2


def test_on_postgresql_a_supervisors_own_session_gives_up_a_dispatchers_may_not(
    logins: dict,  # type: ignore[type-arg]  # noqa: F811 (the imported fixture)
) -> None:
    """The column grants of migration 0009: a supervisor's login gives up on a notice (on the
    record as s01); a dispatcher's login may retry one but not mark it given up in SQL."""
    from sqlalchemy.exc import ProgrammingError
    from tafang.store.cases import Actor
    from tafang.store.notices import give_up, retry_now

    dep = logins["dep"]
    owner = Store(logins["owner"], dep)
    with owner.write() as (conn, _h):
        for k in ("a", "b"):
            enqueue(conn, key=k, contact="grid", case_id=None, event={"kind": "escalation"},
                    now=datetime.now(UTC))  # fmt: skip
        ids = [r[0] for r in conn.execute(text("SELECT id FROM outbox ORDER BY key"))]
    sup = Store(logins["as"]("s01"), dep)
    dsp = Store(logins["as"]("d01"), dep)
    give_up(sup, ids[0], Actor("s01", "t"), "robot gone", datetime.now(UTC))
    retry_now(dsp, ids[1], Actor("d01", "t"), datetime.now(UTC))
    with pytest.raises(ProgrammingError, match="permission denied"), dsp.engine.begin() as c:
        c.execute(text("UPDATE outbox SET status = 'given_up' WHERE id = :i"), {"i": ids[1]})
    with owner.engine.connect() as c:
        rows = dict(c.execute(text("SELECT key, status FROM outbox")).all())
        op = c.execute(text("SELECT operator FROM audit WHERE action = 'outbox_give_up'"))
        assert op.scalar_one() == "s01"
    assert rows == {"a": "given_up", "b": "pending"}
