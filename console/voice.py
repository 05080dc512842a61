"""The spoken alarm (灵活语音): new critical cases and breaches said aloud in the centre.

`sentence` builds what is said ("北一综合执法圈 N1-03，路面塌陷，已超时两分钟") from the case,
the deployment and the catalogue's `[voice]` words; `Announcer` says it by running the
configured command (`[voice] command`, espeak-ng's Mandarin voice by default) with the
sentence as its last argument, in its own thread, one at a time, at most one announcement
every `min_interval` seconds (others that come sooner are dropped and counted: the bell and
the screen still tell them). Nothing here blocks the UI: `say` only hands over.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tafang.console.i18n import Strings
from tafang.store.config import Deployment

DIGITS = "零一二三四五六七八九"
TIMEOUT = 30.0
"""Seconds one announcement may take before its process is killed."""


def zh_number(n: int, *, count: bool = True) -> str:
    """A whole number 0–9999 in Chinese words, as a TTS voice should say it; `count`: before
    a measure word a lone 2 is 两 (两分钟), not 二."""
    if n < 0 or n > 9999:
        return str(n)
    if n == 2 and count:
        return "两"
    if n < 10:
        return DIGITS[n]
    out, zero = "", False
    for value, unit in ((1000, "千"), (100, "百"), (10, "十"), (1, "")):
        d = n // value % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        out += ("" if (unit == "十" and d == 1 and not out) else DIGITS[d]) + unit
    return out


def spoken_duration(seconds: float, t: Strings) -> str:
    """How late, in words: nothing under a minute (just breached: "已超时" says it), then
    minutes, then hours and minutes."""
    s = max(int(seconds), 0)
    num = zh_number if t.lang == "zh" else str
    if s < 60:
        return ""
    m = s // 60
    if m < 60:
        return t("voice.minutes", n=num(m))
    h, m = divmod(m, 60)
    return t("voice.hours_minutes", h=num(h), m=num(m)) if m else t("voice.hours", n=num(h))


def place(case: Any, d: Deployment, t: Strings) -> str:
    """Where, as said: the enforcement circle's name and the cell's label (N1-03)."""
    grid = d.grids_by_code.get(case.grid or "")
    if grid is None:
        return t("voice.nowhere")
    circle = next((c for c in d.tower.enforcement_circles if c.code == grid.circle), None)
    name = t.pick(circle.name, circle.name_en) if circle else ""
    return f"{name} {grid.label}".strip()


def what(case: Any, d: Deployment, t: Strings) -> str:
    """What, as said: the category's name, else the case's title (feed text, cut short)."""
    cat = d.categories_by_code.get(case.category or "")
    if cat is not None:
        return t.pick(cat.name, cat.name_en)
    return speakable(case.display_title)[:30]


def speakable(text: str) -> str:
    """Untrusted text made fit to say: control and format characters out, no option-like
    start (the sentence is an argument of the command)."""
    kept = "".join(ch for ch in text if ch.isprintable())
    return kept.lstrip("-").strip()


def sentence(
    kind: str, cases: Sequence[Any], d: Deployment, t: Strings, late_seconds: float = 0
) -> str:
    """The one sentence for a batch: `kind` "breach" (the first case, how late its clock is,
    and how many more breached with it) or "critical" (a new critical case)."""
    first = cases[0]
    words = {"place": place(first, d, t), "what": what(first, d, t)}
    if kind == "breach":
        said = t("voice.breach", late=spoken_duration(late_seconds, t), **words)
    else:
        said = t("voice.critical", **words)
    if len(cases) > 1:
        n = len(cases) - 1
        said += t("voice.more", n=zh_number(n) if t.lang == "zh" else n)
    return speakable(said)


@dataclass
class Announcer:
    """Says sentences with `command` in a thread of its own, rate-limited.

    `available` is False when the command's program cannot be found (checked once, at
    construction): the console then says so in one line and rings the bell instead."""

    command: Sequence[str]
    min_interval: float = 15.0
    clock: Callable[[], float] = time.monotonic
    said: int = 0
    dropped: int = 0
    failed: int = 0
    available: bool = field(init=False)
    _last: float | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _busy: threading.Thread | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.available = bool(self.command) and shutil.which(self.command[0]) is not None

    def say(self, text: str) -> bool:
        """Hand `text` to the speaking thread; False when it was dropped (rate limit, still
        speaking, or no command)."""
        if not self.available or not text:
            return False
        now = self.clock()
        with self._lock:
            too_soon = self._last is not None and now - self._last < self.min_interval
            speaking = self._busy is not None and self._busy.is_alive()
            if too_soon or speaking:
                self.dropped += 1
                return False
            self._last = now
            self._busy = threading.Thread(target=self._run, args=(text,), daemon=True)
            self._busy.start()
        return True

    def _run(self, text: str) -> None:
        try:
            subprocess.run(
                [*self.command, text],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=TIMEOUT,
                check=True,
            )
            self.said += 1
        except (OSError, subprocess.SubprocessError):
            self.failed += 1

    def wait(self, timeout: float | None = None) -> None:
        """Until the announcement in progress (if any) is over: for tests and shutdown."""
        busy = self._busy
        if busy is not None:
            busy.join(timeout)
