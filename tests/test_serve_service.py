"""deploy/tafang-serve.service: the field API's systemd unit, held to the daemon unit's
conventions, checked by systemd-analyze, and its credential directory naming the keys the
API reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tafang.console.field_auth import key_name

from tests.test_service import unit_keys

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "deploy" / "tafang-serve.service"
DAEMON = ROOT / "deploy" / "tafang-daemon.service"
TAFANG = Path(sys.executable).parent / "tafang"


def test_serve_unit_keeps_the_daemon_units_conventions() -> None:
    serve, daemon = unit_keys(UNIT), unit_keys(DAEMON)
    assert serve["Unit"]["After"] == daemon["Unit"]["After"]
    assert serve["Service"]["ExecStart"] == [
        "/opt/tafang/venv/bin/tafang serve --host 127.0.0.1 --port 8470"
    ]
    same = "Type User Group Restart RestartPreventExitStatus StateDirectory ProtectSystem "
    same += "ProtectHome PrivateTmp NoNewPrivileges RestrictAddressFamilies SystemCallFilter "
    same += "CapabilityBoundingSet UMask"
    for key in same.split():
        assert serve["Service"][key] == daemon["Service"][key], key
    assert "TAFANG_CONFIG=/etc/tafang/config.toml" in serve["Service"]["Environment"]
    assert serve["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_key_directory_gives_the_names_the_api_reads() -> None:
    """systemd loads a directory credential ID:DIR as ID_<file name> (exec-credential.c)."""
    [line] = unit_keys(UNIT)["Service"]["LoadCredential"]
    cred_id, _, path = line.partition(":")
    assert path == "/etc/tafang/field-keys"
    for caller, file_name in (("2-03", "2_03"), ("feed:12345", "FEED_12345")):
        assert f"{cred_id}_{file_name}" == key_name(caller)


@pytest.mark.skipif(
    not shutil.which("systemd-analyze") and not os.environ.get("CI"),
    reason="systemd-analyze not installed (under CI=true a missing tool fails instead)",
)
def test_serve_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    text = UNIT.read_text(encoding="utf-8").replace("/opt/tafang/venv/bin/tafang", str(TAFANG))
    copy = tmp_path / UNIT.name
    copy.write_text(text, encoding="utf-8")
    r = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert (r.returncode, r.stdout.strip(), r.stderr.strip()) == (0, "", "")
