"""自查自处 from the command line: `tafang selffound` lands a handled case for the check, and
reports count it apart. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tafang.console.cli import main
from tafang.sla.reports import build_range, report_json
from tafang.store.cases import Actor, Store, utcnow
from tafang.store.config import load_config
from tafang.store.db import make_engine

from tests.conftest import login_of, roster_as


def test_selffound_command_and_report(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A 带班领导 (supervisor) types it in: may enter it, and could close cases, but not this one.
    cfg = roster_as(tmp_path / "config.toml", {"s01": login_of(db_url)})
    base = ["--db", db_url, "--config", str(cfg)]
    found = (utcnow() - timedelta(minutes=30)).astimezone(UTC).isoformat()
    code = main(
        [*base, "selffound", "1-03", "共享单车乱停", "--grid", "N1-01", "--category", "0590",
         "--found-at", found, "--note", "已摆放", "--photo", "https://p/1.jpg", "--json"]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    case = json.loads(out)
    assert case["status"] == "handled" and case["assignee"] == "1-03"
    d = load_config(cfg)
    engine = make_engine(db_url)
    store = Store(engine, d)
    actions = [e.action for e in store.timeline(case["id"])]
    assert actions == ["self_found", "handle"]
    # An ordinary case beside it: the report counts the self-found one apart.
    store.create({"title": "噪音", "grid": "33010600700801"}, Actor("d01", "t"))
    day = datetime.now(UTC)
    rep = build_range(store, d, day - timedelta(days=1), day + timedelta(days=1), "t", None)
    assert (rep.total, rep.self_found) == (1, 1)
    assert report_json(rep, d)["self_found"] == 1
    # The one who entered it may not close it (监管分离 holds); a checker may.
    assert main([*base, "case", "close", str(case["id"])]) == 1
    assert "监管分离" in capsys.readouterr().err
    assert store.act(case["id"], "close", Actor("c01", "t")).status == "closed"
    engine.dispose()


def test_selffound_refusals(db_url: str, tmp_path: Path) -> None:
    cfg = roster_as(tmp_path / "config.toml", {"d01": login_of(db_url)})
    base = ["--db", db_url, "--config", str(cfg), "selffound"]
    assert main([*base, "9-99", "x"]) == 1  # no such officer
    assert main([*base, "1-03", "x", "--grid", "Z9-99"]) == 1  # no such grid
    assert main([*base, "1-03", "x", "--found-at", "yesterday"]) == 2  # usage
    later = (utcnow() + timedelta(hours=2)).isoformat()
    assert main([*base, "1-03", "x", "--handled-at", later]) == 1  # in the future
