"""Keeping the daemon's process from pausing a sweep: the garbage collector's full pass, the
SQLite checkpoint (store/checkpoint.py) and the outbox's claim kept away from deadlines, the
GIL handed on every millisecond.

A full (generation 2) collection walks every tracked object of the process with the GIL
held. After start-up the daemon holds ~100k of them (SQLAlchemy, the config, the calendar,
httpx, APScheduler), so CPython's own trigger ran one a few seconds into a run and now and
then afterwards: 60–230 ms during which no thread runs, a deadline due then escalates that
late (bench/sla.py --trace, issue 15). `freeze_heap` collects once, at a moment the daemon
chooses, and moves the survivors to the permanent generation: later collections walk only
what was allocated since, which is small and short-lived.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

CHECKPOINT_SECONDS = 5.0  # how often the daemon's own WAL checkpoint is tried
CHECKPOINT_CLEAR = timedelta(milliseconds=500)  # no checkpoint this close to a deadline
CHECKPOINT_MAX_SKIPS = 6  # … unless that many were put off in a row (the log must not grow)
# The outbox's claim holds the write lock (40–200 ms seen on a loaded machine, with hundreds
# of rows waiting for a dead robot): not started this close to a deadline, at most 3 times
# in a row (a notice waits at most ~4 s longer).
DELIVER_CLEAR = timedelta(milliseconds=250)
DELIVER_MAX_SKIPS = 3
# While another thread runs Python (the outbox job decoding and planning hundreds of rows),
# a sweep thread waits up to the switch interval (5 ms by default) for the GIL after each
# database round trip it made: a one-case sweep's apply took 32–48 ms on PostgreSQL, its
# start 90–120 ms after the timer (bench/sla.py --trace, load ~14). 1 ms bounds each wait.
SWITCH_INTERVAL = 0.001
# How long the outbox's delivery waits, at one of its steps, for a sweep to end: a one-case
# sweep takes ~5–10 ms; a storm's longer sweep is not waited for beyond this.
GATE_WAIT = 0.1
GATE_LEAD = timedelta(milliseconds=40)  # … and from this long before the next deadline


def freeze_heap() -> int:
    """Collect now, then freeze what survived (gc.freeze); returns the frozen count.

    Called after start-up (imports, config, roster, the catch-up sweep) and again when the
    daemon has been quiet a while; cheap to repeat."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class ClearOfDeadlines:
    """Whether a job may run now: `due(next_deadline)` is False while the deadline is within
    `clear` of the clock (or overdue), but never more than `max_skips` times in a row.

    Used for the daemon's work that holds the SQLite write lock or writes the database file
    (the checkpoint, the outbox's claim): kept away from a deadline, it does not make the
    sweep wait (SQLite's busy handler sleeps in steps of up to 100 ms) or meet its I/O."""

    def __init__(self, clock: Callable[[], datetime], *, clear: timedelta, max_skips: int) -> None:
        self.clock, self.clear, self.max_skips = clock, clear, max_skips
        self.skipped = 0

    def due(self, next_deadline: datetime | None) -> bool:
        near = next_deadline is not None and next_deadline - self.clock() < self.clear
        if near and self.skipped < self.max_skips:
            self.skipped += 1
            return False
        self.skipped = 0
        return True


def share_gil_finely(interval: float = SWITCH_INTERVAL) -> float:
    """A busy thread hands the GIL on after `interval` s instead of 5 ms; returns the old."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    return old


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SweepGate:
    """While a sweep runs (from its early wake to its commit), and from GATE_LEAD before the
    next deadline, the outbox's delivery waits at its next step (before a claim, a request,
    a settle) instead of running Python beside the sweep or the timer that starts it.

    The GIL is shared: with the delivery's sender threads busy (one per robot, httpx in
    pure Python), a one-case sweep's `apply` took 15–18 ms instead of ~5 on PostgreSQL
    (bench/sla.py --trace, issue 15), and the timer that starts a sweep fired up to 32 ms
    late. A gate costs the delivery a few ms a sweep."""

    def __init__(self, clock: Callable[[], datetime] = _utcnow) -> None:
        self.clock = clock  # the daemon's: `next_due` is a deadline by it
        self._clear = threading.Event()
        self._clear.set()
        self._lock = threading.Lock()
        self._sweeps = 0
        self.next_due: datetime | None = None  # the armed deadline (the daemon sets it)

    @contextmanager
    def sweeping(self) -> Iterator[None]:
        with self._lock:
            self._sweeps += 1
            self._clear.clear()
        try:
            yield
        finally:
            with self._lock:
                self._sweeps -= 1
                if self._sweeps == 0:
                    self._clear.set()

    def wait(self, timeout: float = GATE_WAIT) -> bool:
        """Wait (at most `timeout` in all) until no sweep runs and the next deadline is not
        within GATE_LEAD (once it is due, the sweep's own start closes the gate)."""
        end = time.monotonic() + timeout
        due = self.next_due
        if due is not None:
            ahead = (due - self.clock()).total_seconds()
            if 0 < ahead <= GATE_LEAD.total_seconds():
                time.sleep(min(ahead, timeout))
        return self._clear.wait(max(0.0, end - time.monotonic()))
