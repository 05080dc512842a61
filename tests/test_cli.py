"""The `tafang` command's contracts (DESIGN §4): shapes, exit codes, hostile input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tafang.console.cli import main
from tafang.store.db import make_engine

from tests.conftest import login_of, roster_as

ROOT = Path(__file__).resolve().parent.parent
CASE_KEYS = {
    "id",
    "status",
    "source",
    "external_id",
    "category",
    "grid",
    "priority",
    "received_at",
    "assignee",
    "escalation_level",
    "triage",
}


@pytest.fixture
def run(
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
):
    # The roster maps this process's login (root on SQLite, postgres on PostgreSQL) to d01.
    cfg = roster_as(tmp_path_factory.mktemp("roster") / "config.toml", {"d01": login_of(db_url)})
    monkeypatch.setenv("TAFANG_DB", db_url)
    monkeypatch.setenv("TAFANG_OPERATOR", "d01")
    monkeypatch.setenv("TAFANG_CONFIG", str(cfg))

    def _run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        if stdin is not None:
            import io

            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin.encode())))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return _run


def _ingest(run, tmp_path: Path, lines: list[str]) -> tuple[int, str, str]:
    f = tmp_path / "in.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return run("ingest", str(f))


REC = {
    "source": "ping_an",
    "external_id": "PA-1",
    "title": "共享单车堵塞消防通道",
    "category": "0590",
    "grid": "N1-01",
    "received_at": "2026-11-25T08:59:58+08:00",
}


def test_case_life_from_the_command_line(run, tmp_path: Path) -> None:
    code, out, err = _ingest(run, tmp_path, [json.dumps(REC)])
    assert (code, out.strip()) == (0, "accepted=1 duplicate=0 rejected=0 blank=0"), err
    code, out, _ = run("cases", "--json")
    cases = json.loads(out)
    assert code == 0 and len(cases) == 1 and CASE_KEYS <= set(cases[0])
    cid = str(cases[0]["id"])
    assert run("case", "ack", cid)[0] == 0
    code, out, _ = run("case", "dispatch", cid, "--to", "2-03", "--json")
    assert code == 0 and json.loads(out)["assignee"] == "2-03"
    code, _, err = run("case", "close", cid)
    assert code == 1 and "close needs a supervisor or checker" in err  # d01 is a dispatcher
    code, out, _ = run("case", "show", cid, "--json")
    shown = json.loads(out)
    assert [e["action"] for e in shown["timeline"]] == ["ingest", "ack", "dispatch"]
    assert set(shown["timeline"][0]) >= {"at", "action", "operator", "detail"}
    assert shown["timeline"][1]["operator"] == "d01"
    code, out, _ = run("case", "show", cid)
    assert code == 0 and "timeline:" in out and "dispatch" in out
    assert run("audit", "verify")[0] == 0


def test_exit_codes_for_refusals_and_usage(run) -> None:
    assert run("db", "upgrade")[0] == 0  # a read alone creates no store (test_small_faults)
    assert run("case", "show", "424242")[0] == 1
    assert run("case", "ack", "424242")[0] == 1
    with pytest.raises(SystemExit):
        run("--help")
    for argv in (
        ["case", "show", "abc"],
        ["case", "show", "99999999999999999999"],
        ["case", "dispatch", "1"],
        ["cases", "--status", "bogus"],
        ["nonsense"],
        [],
        ["case", "merge", "1"],
        ["report", "daily", "--date", "2026-13-45"],
    ):
        code, _, err = run(*argv)
        assert code == 2, (argv, err)
        assert err.strip(), argv


def test_rejected_lines_named_and_exit_1(run, tmp_path: Path) -> None:
    code, out, err = _ingest(
        run,
        tmp_path,
        [json.dumps(REC), "{not json", "[1,2]", json.dumps({"source": "x", "title": "t"})],
    )
    assert code == 1
    assert out.strip() == "accepted=1 duplicate=0 rejected=3 blank=0"
    for n in (2, 3, 4):
        assert f":{n}: rejected:" in err
    code, out, _ = _ingest(run, tmp_path, [json.dumps(REC)])
    assert (code, out.strip()) == (0, "accepted=0 duplicate=1 rejected=0 blank=0")


def test_hostile_text_printed_without_escapes(run, tmp_path: Path) -> None:
    rec = {**REC, "external_id": "X", "title": "[red]FAKE[/red] \x1b[31mRED\x1b[0m \x07bell"}
    assert _ingest(run, tmp_path, [json.dumps(rec)])[0] == 0
    code, out, _ = run("cases")
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    assert "[red]FAKE[/red]" in out
    cid = str(json.loads(run("cases", "--json")[1])[0]["id"])
    code, out, _ = run("case", "show", cid)
    assert "\x1b" not in out and "[red]FAKE[/red]" in out
    code, out, _ = run("case", "show", cid, "--json")
    assert json.loads(out)["title"] == rec["title"]  # JSON keeps it exactly


def test_audit_verify_exit_1_on_tampering(run, db_url: str, tmp_path: Path) -> None:
    _ingest(run, tmp_path, [json.dumps(REC)])
    eng = make_engine(db_url)
    with eng.begin() as c:
        c.execute(text("UPDATE audit SET detail = '{}' WHERE seq = 1"))
    eng.dispose()
    code, _, err = run("audit", "verify")
    assert code == 1 and "entry 1" in err


@pytest.mark.parametrize("fmt", ["md", "csv", "html"])
def test_reports(run, tmp_path: Path, fmt: str) -> None:
    _ingest(run, tmp_path, [json.dumps(REC)])
    out_file = tmp_path / f"r.{fmt}"
    code, _, err = run(
        "report", "daily", "--date", "2026-11-25", "--format", fmt, "--out", str(out_file)
    )
    assert code == 0, err
    body = out_file.read_text(encoding="utf-8")
    assert "按时响应率" in body and "平安通" in body


def test_wrong_config_exit_2_names_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        (ROOT / "tests/fixtures/tiny.toml").read_text(encoding="utf-8")
        + "\n[bogus_section]\nx = 1\n",
        encoding="utf-8",
    )
    r = subprocess.run(
        [sys.executable, "-m", "tafang", "--config", str(bad), "config", "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 2
    assert str(bad) in r.stderr and "bogus_section" in r.stderr and "unknown key" in r.stderr


def test_config_check_json_shape() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "tafang", "config", "check", "--json"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"channels", "categories", "grids", "squads", "partners", "sla"} <= set(d)
    assert len(d["grids"]) == 105 and {"code", "label", "circle", "half"} <= set(d["grids"][0])
    assert sum(len(s["officers"]) for s in d["squads"]) >= 40


def test_hostile_values_in_json_reports_and_ids(run, tmp_path: Path) -> None:
    rec = {
        **REC,
        "external_id": "S",
        "source": "ev\u001b[2Jil|x\n# head",
        "title": "lone \ud800 surrogate",
    }
    line = json.dumps(rec)  # ASCII-escaped JSON: \\ud800 stays an escape
    assert _ingest(run, tmp_path, [line])[0] == 0
    code, out, _ = run("cases", "--json")
    assert code == 0 and len(json.loads(out)) == 1
    code, _, err = run(
        "report",
        "daily",
        "--date",
        "2026-11-25",
        "--format",
        "csv",
        "--out",
        str(tmp_path / "r.csv"),
    )
    body = (tmp_path / "r.csv").read_text(encoding="utf-8")
    # The one sanitiser (tafang.store.text) shows ESC as ␛, as the console does.
    assert code == 0 and "\x1b" not in body and "\u241b" in body
    code, _, err = run("report", "daily", "--out", str(tmp_path / "nope" / "r.md"))
    assert code == 2 and "cannot write" in err
    for bad in ("1_0", "١", "-1", "0"):
        assert run("case", "show", bad)[0] == 2, bad
    assert run("cases", "--limit", "0")[0] == 2


def strict_json(text: str) -> Any:
    """Parse as strict readers do (jq, JSON.parse): no NaN / Infinity, no lone surrogates."""

    def refuse(token: str) -> Any:
        raise ValueError(f"not JSON: {token}")

    def walk(v: Any) -> None:
        if isinstance(v, str):
            assert not any("\ud800" <= ch <= "\udfff" for ch in v), f"lone surrogate in {v!r}"
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k)
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)

    value = json.loads(text, parse_constant=refuse)
    walk(value)
    return value


def test_json_output_stays_json_whatever_a_feed_sent(run, tmp_path: Path) -> None:
    """A feed's `NaN` / `-Infinity` numbers and a broken UTF-16 escape are kept raw in the
    store; `--json` must still print what jq and JSON.parse accept (one such line made the
    whole `cases --json` array unreadable to them)."""
    line = (
        '{"source": "hotline", "external_id": "nan", "title": "x\\ud800y", '
        '"lat": NaN, "lon": -Infinity, "readings": [Infinity]}'
    )
    assert _ingest(run, tmp_path, [line])[0] == 0
    code, out, _ = run("cases", "--json")
    assert code == 0
    (case,) = strict_json(out)
    assert case["raw"]["lat"] == "NaN" and case["raw"]["lon"] == "-Infinity"
    assert case["raw"]["extra"]["readings"] == ["Infinity"]  # unknown fields: kept
    code, out, _ = run("case", "show", str(case["id"]), "--json")
    assert code == 0 and strict_json(out)["raw"]["title"] == "x\ufffdy"


def test_an_anchor_catches_a_record_cut_back(run, db_url: str, tmp_path: Path) -> None:
    """A cleanly cut tail (entries deleted, head rewound) verifies as a chain; the anchor the
    daemon logs does not let it pass."""
    from tafang.store.record import record_head

    _ingest(run, tmp_path, [json.dumps({**REC, "external_id": f"A{i}"}) for i in range(3)])
    eng = make_engine(db_url)
    seq, digest = record_head(eng)
    assert run("audit", "verify", "--anchor", f"{seq}:{digest}")[0] == 0
    with eng.begin() as c:
        prev = c.execute(text("SELECT hash FROM audit WHERE seq = :s"), {"s": seq - 1}).scalar()
        c.execute(text("DELETE FROM audit WHERE seq = :s"), {"s": seq})
        c.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": seq - 1, "h": prev})
    eng.dispose()
    assert run("audit", "verify", "--chain-only")[0] == 0  # the chain alone cannot tell
    code, _, err = run("audit", "verify")  # the cases replayed can: the last case has no entry
    assert code == 1 and "no record entry created it" in err
    code, _, err = run("audit", "verify", "--anchor", f"{seq}:{digest}")
    assert code == 1 and f"entry {seq}" in err and "cut back" in err
    assert run("audit", "verify", "--anchor", "x:y")[0] == 2
