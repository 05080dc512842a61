"""Service conventions: the systemd unit, credentials, journald priorities, --log-level,
exit code 3, and the calendar the daemon counts with (a frozen clock in January 2027)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tafang.console.cli import main
from tafang.sla.daemon import run_daemon
from tafang.sla.notify.settings import read_secret
from tafang.sla.policy import Policy
from tafang.store.cases import Store
from tafang.store.config import Deployment, ResolveLimit, load_config
from tafang.store.db import make_engine

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "tafang-daemon.service"
GUDANG = load_config(ROOT / "config.toml")
SH = ZoneInfo("Asia/Shanghai")
TAFANG = Path(sys.executable).parent / "tafang"
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/x"


# ---- the unit ---------------------------------------------------------------------------
def unit_keys(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value (systemd allows a key more than once)."""
    out: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    section = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {raw!r}"
        out[section][key.strip()].append(value.strip())
    return out


def test_unit_has_the_service_conventions() -> None:
    u = unit_keys(UNIT)
    unit, svc = u["Unit"], u["Service"]
    assert unit["Wants"] == ["network-online.target"]
    assert set(" ".join(unit["After"]).split()) >= {"network-online.target", "postgresql.service"}
    expected = {
        "Type": "exec",
        "User": "tafang",
        "Group": "tafang",
        "ExecStart": "/opt/tafang/venv/bin/tafang daemon",
        "Restart": "on-failure",
        "RestartPreventExitStatus": "2",
        "StateDirectory": "tafang",
        "ProtectSystem": "strict",
        "ProtectHome": "true",
        "PrivateTmp": "true",
        "NoNewPrivileges": "true",
        "ProtectKernelTunables": "true",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }
    for key, value in expected.items():
        assert svc[key] == [value], key
    assert "TAFANG_CONFIG=/etc/tafang/config.toml" in svc["Environment"]
    assert u["Install"]["WantedBy"] == ["multi-user.target"]


def test_every_robot_secret_of_the_shipped_config_is_a_credential() -> None:
    contacts = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))["contacts"]
    named = {c[k] for c in contacts for k in ("token_env", "secret_env", "key_env") if k in c}
    assert named, "the shipped config names no robot secret: the check would prove nothing"
    creds = {}
    for line in unit_keys(UNIT)["Service"]["LoadCredential"]:
        name, _, source = line.partition(":")
        creds[name] = source
    assert named <= set(creds), sorted(named - set(creds))
    for name, source in creds.items():
        assert source == f"/etc/tafang/credentials/{name}", name


@pytest.mark.skipif(
    not shutil.which("systemd-analyze") and not os.environ.get("CI"),
    reason="systemd-analyze not installed (under CI=true a missing tool fails instead)",
)
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`verify` rejects a missing ExecStart binary, so the copy points at this venv's."""
    text = UNIT.read_text(encoding="utf-8").replace("/opt/tafang/venv/bin/tafang", str(TAFANG))
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")
    r = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 even for an unknown value it ignores: any output is a finding.
    assert (r.returncode, r.stdout.strip(), r.stderr.strip()) == (0, "", "")


# ---- secrets from systemd credentials ----------------------------------------------------
def test_read_secret_environment_wins_then_the_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "T_CRED_KEY").write_text("from-credential\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    monkeypatch.delenv("T_CRED_KEY", raising=False)
    assert read_secret("T_CRED_KEY") == "from-credential"  # trailing newline dropped
    monkeypatch.setenv("T_CRED_KEY", "from-env")
    assert read_secret("T_CRED_KEY") == "from-env"
    monkeypatch.setenv("T_CRED_KEY", "")  # set but empty: as unset
    assert read_secret("T_CRED_KEY") == "from-credential"
    assert read_secret("T_CRED_MISSING") is None
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "X").write_text("nested", encoding="utf-8")
    assert read_secret("sub/X") is None  # a name, never a path
    monkeypatch.delenv("CREDENTIALS_DIRECTORY")
    monkeypatch.delenv("T_CRED_KEY")
    assert read_secret("T_CRED_KEY") is None


# ---- journald priorities -----------------------------------------------------------------
LOG_SCRIPT = """
from tafang.sla.daemon import JsonLog
log = JsonLog(level="debug")
for level in ("debug", "info", "warning", "error"):
    log(level, "probe", level_was=level)
"""


def run_with_stderr_file(
    tmp_path: Path, argv: list[str], journal: str | None, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    """Run `argv` with stderr going to a file; JOURNAL_STREAM = that file's dev:inode when
    `journal` is "same", the given value otherwise, unset when None."""
    err = tmp_path / "stderr.log"
    err.write_bytes(b"")
    e = {k: v for k, v in os.environ.items() if k not in ("JOURNAL_STREAM", "TAFANG_LOG_LEVEL")}
    e.update(env or {})
    if journal == "same":
        st = os.stat(err)
        e["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    elif journal is not None:
        e["JOURNAL_STREAM"] = journal
    with open(err, "ab") as f:
        r = subprocess.run(argv, stderr=f, stdout=subprocess.DEVNULL, env=e, timeout=120)
    return r.returncode, err.read_text(encoding="utf-8").splitlines()


def test_log_lines_carry_syslog_priority_when_stderr_is_the_journal(tmp_path: Path) -> None:
    rc, lines = run_with_stderr_file(tmp_path, [sys.executable, "-c", LOG_SCRIPT], "same")
    assert rc == 0
    prefixes = [line[: line.index("{")] for line in lines]
    assert prefixes == ["<7>", "<6>", "<4>", "<3>"]
    assert [json.loads(line[3:])["level"] for line in lines] == [
        "debug",
        "info",
        "warning",
        "error",
    ]


@pytest.mark.parametrize("journal", [None, "1:2", "garbage"])
def test_log_lines_are_plain_json_when_stderr_is_not_the_journal(
    tmp_path: Path, journal: str | None
) -> None:
    rc, lines = run_with_stderr_file(tmp_path, [sys.executable, "-c", LOG_SCRIPT], journal)
    assert rc == 0 and len(lines) == 4
    assert [json.loads(line)["fields"]["level_was"] for line in lines] == [
        "debug",
        "info",
        "warning",
        "error",
    ]


# ---- --log-level and the daemon through the CLI -----------------------------------------
def events(lines: list[str]) -> list[tuple[str, str]]:
    out = []
    for line in lines:
        obj = json.loads(re.sub(r"^<\d>", "", line))
        out.append((obj["level"], obj["event"]))
    return out


@pytest.mark.slow  # a race / fuzz / real-time test: still runs in .ci/run
def test_daemon_once_through_the_cli_in_the_journal_and_with_log_levels(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    base = [str(TAFANG), "--db", str(db), "--config", str(ROOT / "config.toml")]
    rc, lines = run_with_stderr_file(tmp_path, [*base, "daemon", "--once"], "same")
    assert rc == 0
    assert ("info", "started") in events(lines) and ("info", "done") in events(lines)
    for line in lines:
        level = json.loads(line[3:])["level"]
        assert line[:3] == {"info": "<6>", "error": "<3>", "warning": "<4>"}[level], line

    rc, lines = run_with_stderr_file(
        tmp_path, [*base, "--log-level", "error", "daemon", "--once"], None
    )
    assert rc == 0
    assert all(level == "error" for level, _e in events(lines)), lines

    env = {"TAFANG_LOG_LEVEL": "WARNING"}
    rc, lines = run_with_stderr_file(tmp_path, [*base, "daemon", "--once"], None, env)
    assert rc == 0 and ("info", "started") not in events(lines)

    env = {"TAFANG_LOG_LEVEL": "chatty"}
    rc, lines = run_with_stderr_file(tmp_path, [*base, "daemon", "--once"], None, env)
    assert rc == 2 and "log level must be one of" in "\n".join(lines)


# ---- exit code 3: the store is unreachable ----------------------------------------------
@pytest.mark.parametrize("argv", [["cases"], ["case", "show", "1"], ["daemon", "--once"]])
def test_unreachable_store_is_exit_3_with_a_clear_message(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["--db", UNREACHABLE, "--config", str(ROOT / "config.toml"), *argv])
    err = capsys.readouterr().err
    assert rc == 3, err
    assert err.startswith("tafang: cannot reach the store: ") and "127.0.0.1" in err
    assert "Traceback" not in err


def test_bad_store_url_stays_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--db", "nosuchdialect://x/y", "--config", str(ROOT / "config.toml"), "cases"])
    assert rc == 2, capsys.readouterr().err


# ---- the calendar in January 2027 --------------------------------------------------------
FROZEN = datetime(2027, 1, 11, 2, 0, tzinfo=UTC)  # Monday 10:00 in Shanghai
# A notice as an operator would type it in (dates illustrative): Friday 5 February and the
# week of 8-12 February off, Sunday 14 February worked instead (调休).
NOTICE: dict[str, Any] = {
    "holidays": [date(2027, 2, 5), *(date(2027, 2, d) for d in range(8, 13))],
    "workdays": [date(2027, 2, 14)],
}


def with_calendar(entries: dict[str, Any]) -> Deployment:
    return Deployment.model_validate({**GUDANG.model_dump(), "calendar": entries})


def test_working_days_count_a_typed_in_2027_holiday_as_off() -> None:
    start = datetime(2027, 2, 4, 10, 0, tzinfo=SH)  # Thursday: 6 working hours left today
    one_day = ResolveLimit(amount=1, unit="working_days")  # 8 working hours
    typed = Policy(with_calendar(NOTICE))
    assert typed.resolve_deadline(start, one_day) == datetime(2027, 2, 14, 10, 0, tzinfo=SH)
    assert not typed.calendar.gaps(FROZEN.date())
    # Without the notice the same limit runs out on the (unknown) Friday holiday.
    bare = Policy(with_calendar({}))
    assert bare.resolve_deadline(start, one_day) == datetime(2027, 2, 5, 10, 0, tzinfo=SH)


def run_once_at(url: str, d: Deployment, at: datetime) -> list[dict[str, Any]]:
    store = Store(make_engine(url), d, clocks=Policy(d))
    stream = io.StringIO()
    try:
        assert run_daemon(store, d, once=True, clock=lambda: at, log_stream=stream) == 0
    finally:
        store.engine.dispose()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_daemon_logs_the_calendar_gap_at_start_when_2027_is_unknown(sqlite_url: str) -> None:
    lines = run_once_at(sqlite_url, with_calendar({}), FROZEN)
    gaps = [x for x in lines if x["event"] == "calendar_gap"]
    assert len(gaps) == 1
    assert gaps[0]["level"] == "error"
    assert gaps[0]["fields"]["years"] == [2027] and gaps[0]["fields"]["today"] == "2027-01-11"
    assert [x["event"] for x in lines].index("calendar_gap") < [x["event"] for x in lines].index(
        "done"
    )


def test_daemon_is_quiet_about_the_calendar_once_the_notice_is_typed_in(sqlite_url: str) -> None:
    lines = run_once_at(sqlite_url, with_calendar(NOTICE), FROZEN)
    assert [x for x in lines if x["event"] == "calendar_gap"] == []
    assert any(x["event"] == "done" for x in lines)


def test_running_daemon_repeats_the_calendar_gap_while_it_remains(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daily repeat, with the day shortened to 0.2 s: the scheduler runs the check again."""
    import threading
    import time

    import tafang.sla.daemon as daemon_mod

    monkeypatch.setattr(daemon_mod, "CALENDAR_SECONDS", 0.2)
    d = with_calendar({})
    store = Store(make_engine(sqlite_url), d, clocks=Policy(d))
    stream, stop = io.StringIO(), threading.Event()
    rc: list[int] = []
    t = threading.Thread(
        target=lambda: rc.append(
            run_daemon(store, d, clock=lambda: FROZEN, log_stream=stream, stop_event=stop)
        )
    )
    t.start()
    try:
        end = time.monotonic() + 10
        while stream.getvalue().count('"calendar_gap"') < 3 and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        stop.set()
        t.join(15)
        store.engine.dispose()
    assert rc == [0]
    assert stream.getvalue().count('"calendar_gap"') >= 3  # at start, then each "day"
