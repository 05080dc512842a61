"""The spoken alarm (灵活语音): the sentence, and the announcer running a real command."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from tafang.console.i18n import Strings
from tafang.console.voice import Announcer, sentence, speakable, spoken_duration, zh_number
from tafang.store.config import Deployment

ZH, EN = Strings("zh"), Strings("en")


@dataclass
class Case:
    grid: str | None
    category: str | None
    title: str = ""

    @property
    def display_title(self) -> str:
        return self.title


def _n1_03(d: Deployment) -> str:
    return d.grids_by_label["N1-03"].code


def test_the_sentence_of_a_breach(gudang: Deployment) -> None:
    c = Case(_n1_03(gudang), "0402")
    assert (
        sentence("breach", [c], gudang, ZH, 125) == "北一综合执法圈 N1-03，路面塌陷，已超时两分钟"
    )
    assert sentence("breach", [c, c, c], gudang, ZH, 3725) == (
        "北一综合执法圈 N1-03，路面塌陷，已超时一小时两分钟，另有两件"
    )
    assert sentence("breach", [c], gudang, EN, 125) == (
        "North 1 enforcement circle N1-03, Road collapse, overdue by 2 minutes"
    )


def test_the_sentence_of_a_new_critical_case(gudang: Deployment) -> None:
    c = Case(None, None, "--rm -rf \x1b[31m井盖缺失")
    said = sentence("critical", [c], gudang, ZH)
    assert said == "特急案件，位置不明，rm -rf [31m井盖缺失"
    assert "\x1b" not in said and not speakable("-v en hi").startswith("-")


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "零"),
        (2, "两"),
        (10, "十"),
        (12, "十二"),
        (20, "二十"),
        (105, "一百零五"),
        (1010, "一千零一十"),
    ],
)
def test_numbers_as_said(n: int, words: str) -> None:
    assert zh_number(n) == words


def test_durations_as_said() -> None:
    assert spoken_duration(59, ZH) == ""  # just breached: "已超时" alone
    assert spoken_duration(60, ZH) == "一分钟"
    assert spoken_duration(7200, ZH) == "两小时"


@pytest.fixture
def speaker(tmp_path: Path) -> tuple[Path, Path]:
    """A real command: a script that appends its last argument to a file, one line each."""
    out = tmp_path / "said.txt"
    script = tmp_path / "speak"
    script.write_text(
        f"#!{sys.executable}\nimport sys\n"
        f"with open({str(out)!r}, 'a', encoding='utf-8') as f:\n"
        "    f.write(' '.join(sys.argv[1:]) + '\\n')\n",
        encoding="utf-8",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, out


def _wait_for(path: Path, lines: int) -> list[str]:
    for _ in range(200):
        if path.exists() and len(path.read_text(encoding="utf-8").splitlines()) >= lines:
            break
        time.sleep(0.02)
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_the_announcer_runs_the_command_with_the_sentence(speaker: tuple[Path, Path]) -> None:
    script, out = speaker
    a = Announcer([str(script), "-v", "cmn"], min_interval=0)
    assert a.available
    assert a.say("北一综合执法圈 N1-03，路面塌陷，已超时两分钟")
    a.wait(10)
    assert _wait_for(out, 1) == ["-v cmn 北一综合执法圈 N1-03，路面塌陷，已超时两分钟"]
    assert (a.said, a.failed) == (1, 0)


def test_the_announcer_is_rate_limited(speaker: tuple[Path, Path]) -> None:
    script, out = speaker
    now = [100.0]
    a = Announcer([str(script)], min_interval=15, clock=lambda: now[0])
    assert a.say("one")
    a.wait(10)
    now[0] += 5
    assert not a.say("two")  # within 15 s of the last: dropped, counted
    now[0] += 11
    assert a.say("three")
    a.wait(10)
    assert _wait_for(out, 2) == ["one", "three"]
    assert a.dropped == 1


def test_a_missing_command_is_not_available(tmp_path: Path) -> None:
    a = Announcer([str(tmp_path / "no-such-speaker")])
    assert not a.available and not a.say("anything")


def test_a_failing_command_is_counted(tmp_path: Path) -> None:
    a = Announcer(["false"], min_interval=0)
    assert a.say("x")
    a.wait(10)
    assert a.failed == 1


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_ng_says_the_sentence_in_mandarin(tmp_path: Path, gudang: Deployment) -> None:
    """The default command's voice exists and speaks the sentence (to a file, not a speaker)."""
    wav = tmp_path / "said.wav"
    said = sentence("breach", [Case(_n1_03(gudang), "0402")], gudang, ZH, 125)
    a = Announcer(["espeak-ng", "-v", "cmn", "-w", str(wav)], min_interval=0)
    assert a.say(said)
    a.wait(20)
    assert a.failed == 0 and wav.stat().st_size > 10_000  # about two seconds of speech
    subprocess.run(["espeak-ng", "--version"], check=True, capture_output=True)
