"""Progress bars on stderr for `tafang ingest` and `tafang audit verify`.

Only when stderr is a terminal: a script reading stderr gets nothing but the documented lines,
and the command does no extra work. The bar moves once per intake batch (files), per chunk
read (pipes) or per batch of record entries, never per record; it is redrawn at most ten
times a second, by the caller's thread (no refresh thread: intake forks a worker only from a
process that runs no other thread).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

STEP_LINES = 5000  # intake's batch: the bar moves once per batch of lines read
REDRAW = 0.1  # seconds between redraws at most


class _Rate(ProgressColumn):
    """Records (lines or entries) per second since the start, and how many so far."""

    def render(self, task: Task) -> Text:
        count, unit = task.fields.get("count", 0), task.fields.get("unit", "")
        elapsed = task.elapsed or 0.0
        rate = f"{count / elapsed:,.0f} {unit}/s" if elapsed > 0 else f"- {unit}/s"
        return Text(f"{count:,} {unit} · {rate}")


class Bar:
    """One task on a rich Progress; safe to move from intake's reader thread."""

    def __init__(self, progress: Progress, unit: str, total: float | None, what: str) -> None:
        self._progress = progress
        self._task = progress.add_task(what, total=total, count=0, unit=unit)
        self._lock = threading.Lock()
        self._count = 0
        self._done = 0.0
        self._drawn = 0.0

    def set(self, count: int, done: float, total: float | None = None) -> None:
        """`count` records so far, `done` units of the total (bytes, entries)."""
        with self._lock:
            self._count, self._done = count, done
            self._progress.update(self._task, completed=done, count=count, total=total)
            now = time.monotonic()
            if now - self._drawn >= REDRAW:
                self._drawn = now
                self._progress.refresh()

    def add(self, count: int, done: float) -> None:
        self.set(self._count + count, self._done + done)


def wanted() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


@contextmanager
def bar(what: str, unit: str, total: float | None) -> Iterator[Bar | None]:
    """A bar on stderr when it is a terminal, else None (and nothing is drawn or counted).
    With a total: bar, percentage, rate and ETA; without (stdin): rate and time elapsed."""
    if not wanted():
        yield None
        return
    columns: list[ProgressColumn | str] = [TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), TaskProgressColumn(), _Rate()]
        columns += [TextColumn("ETA"), TimeRemainingColumn()]
    else:
        columns += [_Rate(), TimeElapsedColumn()]
    progress = Progress(
        *columns,
        console=Console(file=sys.stderr),
        auto_refresh=False,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with progress:
        b = Bar(progress, unit, total, what)
        try:
            yield b
        finally:
            progress.refresh()


class MeteredInput:
    """The input as intake reads it, moving `bar`: per batch of lines when iterated (a file),
    per chunk when read with read1 (a pipe or tty, which intake reads from a thread)."""

    def __init__(self, f: BinaryIO, bar: Bar) -> None:
        self._f = f
        self._bar = bar
        self._lines = 0
        self._partial = False  # the last read ended inside a line

    def fileno(self) -> int:
        return self._f.fileno()

    def read1(self, size: int = -1) -> bytes:
        chunk = self._f.read1(size)  # type: ignore[attr-defined]
        self._bar.add(chunk.count(b"\n"), len(chunk))
        return chunk

    def readline(self, size: int = -1) -> bytes:
        """What intake reads a file with (bounded: see store/intake/bounded.py)."""
        line = self._f.readline(size)
        if line.endswith(b"\n") or (not line and self._partial):
            self._lines += 1  # a whole line (read in pieces when long), or the last one
        self._partial = bool(line) and not line.endswith(b"\n")
        if not line or self._lines % STEP_LINES == 0:
            self._bar.set(self._lines, self._f.tell())
        return line

    def __iter__(self) -> Iterator[bytes]:
        f, n = self._f, 0
        for n, line in enumerate(f, 1):
            yield line
            if n % STEP_LINES == 0:
                self._bar.set(n, f.tell())
        self._bar.set(n, f.tell())

    def __enter__(self) -> MeteredInput:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._f.close()
