"""Scripts and people (issue 8, item 6): `--json` on ingest, report, audit verify and db upgrade
with the same exit codes; a progress bar on stderr only when stderr is a terminal; shell
completion. Each run is the CLI on a real SQLite file with pipes for its streams, in this
process; the progress-bar tests run a real `python -m tafang` process under a pty."""

from __future__ import annotations

import getpass
import io
import json
import os
import pty
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from tafang.store.db import make_engine
from tafang.store.record import record_head

from tests.conftest import roster_as

ROOT = Path(__file__).resolve().parent.parent
REC = {"source": "ping_an", "external_id": "PA-1", "title": "共享单车堵塞消防通道", "grid": "N1-01"}


def tafang(
    tmp_path: Path, *argv: str, stdin: bytes | None = None, stderr_tty: bool = False
) -> tuple[int, str, str]:
    """Run `python -m tafang` on tmp_path's store; stderr a pipe, or a pty when stderr_tty."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAFANG_", "TTY_"))}
    env |= {"TAFANG_DB": str(tmp_path / "t.db"), "TAFANG_OPERATOR": "d01"}
    env |= {"COLUMNS": "160", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    cfg = tmp_path / "config.toml"  # the roster maps this process's login to d01
    if not cfg.exists():
        roster_as(cfg, {"d01": getpass.getuser()})
    cmd = [sys.executable, "-m", "tafang", "--config", str(cfg), *argv]
    if not stderr_tty:
        return in_process(cmd[3:], stdin, env, tmp_path)
    master, slave = pty.openpty()
    p = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
        cwd=tmp_path,
    )
    os.close(slave)
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write(stdin or b"")
    p.stdin.close()
    seen = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        seen += data
    os.close(master)
    out = p.stdout.read()
    p.wait(timeout=120)
    return p.returncode, out.decode(), seen.decode("utf-8", "replace")


def in_process(
    argv: list[str], stdin: bytes | None, env: dict[str, str], cwd: Path
) -> tuple[int, str, str]:
    """`tafang.console.cli.main(argv)` in this process with its own environment, working
    directory and pipes for stdin, stdout and stderr (none of them a terminal): what a
    script meets, without paying for a new interpreter each time."""
    from tafang.console.cli import main

    out, err = io.BytesIO(), io.BytesIO()
    pipes = (
        io.TextIOWrapper(io.BytesIO(stdin or b""), encoding="utf-8"),
        io.TextIOWrapper(out, encoding="utf-8", write_through=True),
        io.TextIOWrapper(err, encoding="utf-8", write_through=True),
    )
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_pipes = sys.stdin, sys.stdout, sys.stderr
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.stdin, sys.stdout, sys.stderr = pipes
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's --help
        code = e.code if isinstance(e.code, int) else 0
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_pipes
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
    return code, out.getvalue().decode(), err.getvalue().decode()


def write_lines(tmp_path: Path, lines: list[str], name: str = "in.jsonl") -> Path:
    f = tmp_path / name
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return f


def test_ingest_json_counts_and_rejected_lines(tmp_path: Path) -> None:
    f = write_lines(tmp_path, [json.dumps(REC), "", "{not json", json.dumps({"source": "x"})])
    code, out, err = tafang(tmp_path, "ingest", "--json", str(f))
    assert code == 1, err
    d = json.loads(out)  # one document, nothing else on stdout
    assert (d["accepted"], d["duplicate"], d["rejected"]) == (1, 0, 2)
    assert d["origin"] == "in.jsonl"
    assert [r["line"] for r in d["rejected_lines"]] == [3, 4]
    assert "JSON" in d["rejected_lines"][0]["reason"]
    assert all(r["reason"] for r in d["rejected_lines"])
    if "blank" in d:  # intake counts blank lines: the counts add up to the lines read
        assert d["blank"] == 1
    # the human lines stay on stderr, and only they
    assert err.splitlines() == [
        f"in.jsonl:{r['line']}: rejected: {r['reason']}" for r in d["rejected_lines"]
    ]

    code, out, _ = tafang(
        tmp_path, "ingest", "--json", str(write_lines(tmp_path, [json.dumps(REC)]))
    )
    d = json.loads(out)
    assert code == 0 and (d["accepted"], d["duplicate"], d["rejected"]) == (0, 1, 0)
    assert d["rejected_lines"] == []

    code, out, _ = tafang(
        tmp_path, "ingest", "--json", "-", stdin=json.dumps({**REC, "external_id": "S"}).encode()
    )
    assert code == 0 and json.loads(out)["accepted"] == 1 and json.loads(out)["origin"] == "stdin"
    code, out, err = tafang(tmp_path, "ingest", "--json", str(tmp_path / "missing.jsonl"))
    assert code == 2 and out == "" and "cannot read" in err


def _ingest_three(tmp_path: Path) -> None:
    lines = [json.dumps({**REC, "external_id": f"A{i}"}) for i in range(3)]
    assert tafang(tmp_path, "ingest", str(write_lines(tmp_path, lines)))[0] == 0


def test_audit_verify_json_intact_broken_and_anchor(tmp_path: Path) -> None:
    _ingest_three(tmp_path)
    eng = make_engine(str(tmp_path / "t.db"))
    seq, digest = record_head(eng)
    code, out, err = tafang(tmp_path, "audit", "verify", "--json", "--anchor", f"{seq}:{digest}")
    assert (code, err) == (0, "")
    d = json.loads(out)
    assert {k: d[k] for k in ("ok", "checked", "broken", "anchor")} == {
        "ok": True,
        "checked": seq,
        "broken": None,
        "anchor": {"seq": seq, "hash": digest, "ok": True},
    }
    assert d["keyed"] is None and d["cases"] == {"checked": 3, "imported": 0, "ok": True}
    with eng.begin() as c:  # tamper with entry 2 of the record in the SQLite file
        c.execute(text("UPDATE audit SET detail = '{}' WHERE seq = 2"))
    eng.dispose()
    code, out, err = tafang(tmp_path, "audit", "verify", "--json", "--anchor", f"{seq}:{digest}")
    d = json.loads(out)
    assert code == 1
    assert d["ok"] is False and d["checked"] == 1
    assert d["broken"]["seq"] == 2 and "altered" in d["broken"]["reason"]
    assert d["anchor"] == {"seq": seq, "hash": digest, "ok": None}  # not reached
    assert "entry 2" in err  # the human message stays on stderr
    code, out, _ = tafang(tmp_path, "audit", "verify", "--json")
    assert code == 1 and json.loads(out)["anchor"] is None


def test_audit_verify_json_anchor_catches_a_cut_back(tmp_path: Path) -> None:
    _ingest_three(tmp_path)
    eng = make_engine(str(tmp_path / "t.db"))
    seq, digest = record_head(eng)
    with eng.begin() as c:
        prev = c.execute(text("SELECT hash FROM audit WHERE seq = :s"), {"s": seq - 1}).scalar()
        c.execute(text("DELETE FROM audit WHERE seq = :s"), {"s": seq})
        c.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": seq - 1, "h": prev})
    eng.dispose()
    code, out, _ = tafang(tmp_path, "audit", "verify", "--json", "--anchor", f"{seq}:{digest}")
    d = json.loads(out)
    assert code == 1 and d["ok"] is False and d["anchor"]["ok"] is False
    assert d["broken"]["seq"] == seq and "cut back" in d["broken"]["reason"]
    code, out, err = tafang(tmp_path, "audit", "verify", "--json", "--anchor", "x:y")
    assert code == 2 and out == "" and "anchor" in err


def test_db_upgrade_json(tmp_path: Path) -> None:
    code, out, err = tafang(tmp_path, "db", "upgrade", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert set(d) == {"revision", "url", "officers_added"}
    assert d["url"].startswith("sqlite") and d["url"].endswith("t.db")
    assert d["officers_added"] > 0 and d["revision"]
    code, out, _ = tafang(tmp_path, "db", "upgrade", "--json")
    assert code == 0 and json.loads(out)["officers_added"] == 0
    assert json.loads(out)["revision"] == d["revision"]


def test_db_upgrade_json_unreachable_exit_3(tmp_path: Path) -> None:
    env_db = "postgresql+psycopg://u:hunter2@127.0.0.1:1/none?connect_timeout=2"
    r = subprocess.run(
        [sys.executable, "-m", "tafang", "--db", env_db, "db", "upgrade", "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert r.returncode == 3 and r.stdout == "" and "hunter2" not in r.stderr


def test_report_json(tmp_path: Path) -> None:
    _ingest_three(tmp_path)
    code, out, err = tafang(tmp_path, "report", "daily", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["cases"] == 3 and d["timezone"] == "Asia/Shanghai"
    assert set(d["rates"]) == {"respond", "dispatch", "arrive"}
    assert set(d["rates"]["respond"]) == {"met", "due", "rate"}
    assert d["by_channel"] == [{"channel": "ping_an", "name": "平安通", "cases": 3}]
    assert d["by_status"] == {"new": 3}
    code, out2, _ = tafang(tmp_path, "report", "daily", "--format", "json")
    assert code == 0 and json.loads(out2) == d
    out_file = tmp_path / "r.json"
    code, out, err = tafang(tmp_path, "report", "daily", "--json", "--out", str(out_file))
    assert code == 0 and out == "" and "wrote" in err
    assert json.loads(out_file.read_text(encoding="utf-8"))["cases"] == 3
    code, out, err = tafang(tmp_path, "report", "daily", "--json", "--format", "csv")
    assert code == 2 and out == "" and "--json" in err


def test_no_terminal_no_progress(tmp_path: Path) -> None:
    """stderr a pipe: nothing on it but the documented lines."""
    f = write_lines(
        tmp_path, [json.dumps({**REC, "external_id": str(i)}) for i in range(50)] + ["[1]"]
    )
    code, out, err = tafang(tmp_path, "ingest", str(f))
    assert code == 1 and out == "accepted=50 duplicate=0 rejected=1 blank=0\n"
    assert re.fullmatch(r"in\.jsonl:51: rejected: not a JSON object[^\n]*\n", err), err
    code, out, err = tafang(tmp_path, "ingest", "-", stdin=f.read_bytes())
    assert code == 1 and re.fullmatch(r"stdin:51: rejected: not a JSON object[^\n]*\n", err), err
    code, out, err = tafang(tmp_path, "audit", "verify")
    assert code == 0 and err == "" and out.startswith("ok: record intact")


@pytest.mark.slow  # a race / fuzz / real-time test: still runs in .ci/run
def test_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    lines = [json.dumps({**REC, "external_id": str(i)}) for i in range(12_000)]
    f = write_lines(tmp_path, lines)
    code, out, seen = tafang(tmp_path, "ingest", str(f), stderr_tty=True)
    assert code == 0 and out == "accepted=12,000 duplicate=0 rejected=0 blank=0\n".replace(",", "")
    assert "ingest in.jsonl" in seen and "12,000 lines" in seen and "lines/s" in seen
    assert "ETA" in seen and "100%" in seen
    code, out, seen = tafang(tmp_path, "ingest", "-", stdin=f.read_bytes(), stderr_tty=True)
    assert code == 0 and out == "accepted=0 duplicate=12000 rejected=0 blank=0\n"
    assert "ingest stdin" in seen and "12,000 lines" in seen and "lines/s" in seen
    assert "ETA" not in seen  # no total from a pipe: rate only
    code, out, seen = tafang(tmp_path, "audit", "verify", stderr_tty=True)
    assert code == 0 and out.startswith("ok: record intact")
    assert "audit verify" in seen and "entries/s" in seen and "100%" in seen


def test_completion_scripts(tmp_path: Path) -> None:
    code, out, err = tafang(tmp_path, "completion", "bash")
    assert code == 0, err
    for word in (
        "ingest",
        "report",
        "audit",
        "verify",
        "upgrade",
        "dispatch",
        "--json",
        "completion",
    ):
        assert word in out, word
    script = tmp_path / "tafang.bash"
    script.write_text(out, encoding="utf-8")
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    code, out, _ = tafang(tmp_path, "completion", "zsh")
    assert code == 0 and out.startswith("#compdef tafang") and "ingest" in out
    if shutil.which("zsh"):
        script.write_text(out, encoding="utf-8")
        assert subprocess.run(["zsh", "-n", str(script)], capture_output=True).returncode == 0
    assert tafang(tmp_path, "completion", "fish")[0] == 2


@pytest.mark.parametrize("argv", [["ingest"], ["report"], ["audit", "verify"], ["db", "upgrade"]])
def test_help_names_json(tmp_path: Path, argv: list[str]) -> None:
    code, out, _ = tafang(tmp_path, *argv, "--help")
    assert code == 0 and "--json" in out
