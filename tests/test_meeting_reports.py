"""Meeting reports (sla/meeting.py, meeting_render.py, report_schedule.py): the formats, the
daemon's schedule and announcement, the CLI's periods; SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from tafang.console.cli import main
from tafang.sla.meeting import SECTIONS, inputs_for, sections
from tafang.sla.meeting_render import CSV_HEAD, render
from tafang.sla.report_schedule import latest, write_due
from tafang.store.cases import Actor, Store
from tafang.store.config import Reports
from tafang.store.intake import ingest
from tafang.store.models import Outbox

from tests.conftest import login_of, roster_as

SUP = Actor("s01", "t")
EVIL = "=cmd|<script>alert(1)</script>\x1b[2J"


def _history(store: Store) -> None:
    recs = [
        {
            "source": "ping_an",
            "external_id": f"M{i}",
            "title": "路边暴露垃圾堆积",
            "category": "0102",
            "grid": "33010600700801",
            "received_at": "2023-03-01T09:00:00+08:00",
            "acknowledged_at": "2023-03-01T09:01:30+08:00"
            if i % 2
            else "2023-03-01T09:00:10+08:00",
            "assignee": "1-03",
        }
        for i in range(4)
    ]
    recs.append({**recs[1], "external_id": "X", "source": EVIL})  # late: 2 of 5 on time
    r = ingest(store, [json.dumps(x) for x in recs], origin="t", actor=SUP, history=True)
    assert r.accepted == 5, r.errors


@pytest.fixture
def day_inputs(store: Store):
    _history(store)
    return inputs_for(store, store.d, "daily", day=date(2023, 3, 1))


def test_sections_are_a_list_one_can_add_to(day_inputs) -> None:
    keys = [s.key for s in sections(day_inputs)]
    assert keys[:3] == ["rates", "trend", "stages"] and "by_squad" in keys and "by_officer" in keys
    assert len(SECTIONS) >= 9


def test_csv_is_one_tidy_table_of_plain_numbers(day_inputs) -> None:
    rows = list(csv.reader(io.StringIO(render(day_inputs, "csv"))))
    assert tuple(rows[0]) == CSV_HEAD and all(len(r) == len(CSV_HEAD) for r in rows)
    respond = [r for r in rows if r[:2] == ["rates", "rates"] and r[2] == "respond"]
    assert respond == [["rates", "rates", "respond", "按时响应率 On-time response", "value",
                        "0.4000", "2", "5"]]  # fmt: skip
    for r in rows[1:]:
        for cell in r[5:]:
            assert cell == "" or re.fullmatch(r"-?\d+(\.\d+)?", cell), r
    body = "\n".join(",".join(r) for r in rows)
    assert "\x1b" not in body and "␛" in body  # the hostile channel, shown literally
    assert not any(c[:1] and c[:1] in "=+@" for r in rows for c in r[2:4])  # no formulas
    assert any(c.startswith("'=cmd") for r in rows for c in r[2:4])


def test_json_keeps_the_earlier_keys_and_adds_sections(day_inputs) -> None:
    d = json.loads(render(day_inputs, "json"))
    assert d["cases"] == 5 and d["rates"]["respond"] == {"met": 2, "due": 5, "rate": 0.4}
    sq = next(s for s in d["sections"] if s["key"] == "by_squad")
    row = sq["tables"][0]["rows"][0]
    assert row["squad"] == "sq1" and row["cases"] == 5
    assert row["respond"] == {"met": 2, "due": 5, "rate": 0.4}


def test_markdown_prints_each_rate_with_its_denominator(day_inputs) -> None:
    md = render(day_inputs, "md")
    assert "| respond | 按时响应率 On-time response | 40.0% (2/5) |" in md
    assert "\x1b" not in md


def test_html_is_self_contained_and_escaped(day_inputs) -> None:
    page = render(day_inputs, "html")
    assert page.count("<svg") >= 3 and "<script" not in page and "\x1b" not in page
    assert "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)\s*=|@import|url\(""", page)  # nothing fetched


def test_a_range_report_and_its_usage_errors(store: Store) -> None:
    _history(store)
    i = inputs_for(store, store.d, "range", start=date(2023, 3, 1), end=date(2023, 3, 2))
    assert i.assessment.total.cases == 5 and (i.end - i.start).days == 2
    with pytest.raises(ValueError, match="before"):
        inputs_for(store, store.d, "range", start=date(2023, 3, 2), end=date(2023, 3, 1))


def test_the_schedule_names_the_period_before() -> None:
    from tafang.store.config import load_config

    d = load_config(None)
    before = datetime(2026, 12, 7, 0, 29, tzinfo=UTC)  # Monday 08:29 local
    assert [x.stem for x in latest(d, before)] == [
        "daily-2026-12-05",
        "weekly-2026-11-23",
        "monthly-2026-11",
    ]
    at = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)  # Monday 08:30
    assert [x.stem for x in latest(d, at)][:2] == ["daily-2026-12-06", "weekly-2026-11-30"]
    first = datetime(2027, 1, 1, 0, 30, tzinfo=UTC)
    assert latest(d, first)[2].stem == "monthly-2026-12"
    off = d.model_copy(update={"reports": Reports(daily="", weekly="", monthly="")})
    assert latest(off, at) == []


def test_the_daemon_writes_once_and_announces_once(store: Store, tmp_path: Path) -> None:
    _history(store)
    d = store.d.model_copy(update={"reports": Reports(folder=str(tmp_path / "out"))})
    s2 = Store(store.engine, d, clocks=store.clocks)
    now = datetime(2023, 3, 2, 0, 31, tzinfo=UTC)  # 08:31 on Thursday 2 March
    written = write_due(s2, now)
    assert [p.name for p in written] == [
        "daily-2023-03-01.html",
        "weekly-2023-02-20.html",
        "monthly-2023-02.html",
    ]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(names) == 12 and not [n for n in names if n.startswith(".")]
    assert "40.0% (2/5)" in (tmp_path / "out" / "daily-2023-03-01.md").read_text("utf-8")
    assert write_due(s2, now) == []
    with store.engine.connect() as conn:
        rows = conn.execute(select(Outbox.key, Outbox.contact, Outbox.payload)).all()
    assert sorted(r.key for r in rows) == [
        "report-daily-2023-03-01",
        "report-monthly-2023-02",
        "report-weekly-2023-02-20",
    ]
    assert {r.contact for r in rows} == {"centre"}
    assert json.loads(rows[0].payload)["kind"] == "meeting_report"


def test_report_range_from_the_command_line(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    cfg = roster_as(tmp_path / "config.toml", {"s01": login_of(db_url)})
    monkeypatch.setenv("TAFANG_DB", db_url)
    monkeypatch.setenv("TAFANG_CONFIG", str(cfg))
    monkeypatch.setenv("TAFANG_OPERATOR", "s01")
    lines = tmp_path / "h.jsonl"
    lines.write_text(
        json.dumps(
            {
                "source": "ping_an",
                "external_id": "C1",
                "title": "x",
                "received_at": "2023-03-01T09:00:00+08:00",
                "closed_at": "2023-03-01T12:00:00+08:00",
            }
        )
        + "\n",
        encoding="utf-8",
    )
    assert main(["ingest", "--history", str(lines)]) == 0
    capsys.readouterr()
    code = main(["report", "range", "--from", "2023-03-01", "--to", "2023-03-31", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["cases"] == 1 and json.loads(out)["kind"] == "range"
    # DESIGN §4's form leaves the period out: the same report
    assert main(["report", "--from", "2023-03-01", "--to", "2023-03-31", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == json.loads(out)
    for argv in (
        ["report"],
        ["report", "--to", "2023-03-01"],
        ["report", "range", "--from", "2023-03-01"],
        ["report", "range", "--from", "2023-03-31", "--to", "2023-03-01"],
        ["report", "daily", "--from", "2023-03-01"],
        ["report", "range", "--from", "2023-02-30", "--to", "2023-03-01"],
    ):
        assert main(argv) == 2, argv
        assert capsys.readouterr().err.strip()


def test_a_relative_folder_is_never_the_working_directory(
    tmp_path: Path, gudang, monkeypatch
) -> None:
    from tafang.sla.policy import Policy
    from tafang.sla.report_schedule import report_folder
    from tafang.store.db import make_engine

    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'tafang.db'}")
    s = Store(engine, gudang, clocks=Policy(gudang))
    assert report_folder(s) == (tmp_path / "db" / "reports").resolve()
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    assert report_folder(s) == tmp_path / "state" / "reports"
    engine.dispose()
