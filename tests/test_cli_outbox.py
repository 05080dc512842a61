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
