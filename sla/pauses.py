"""Keeping the daemon's process from pausing a sweep: the garbage collector's full pass, and
the SQLite checkpoint (store/checkpoint.py) taken between deadlines instead of in a commit.

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
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

CHECKPOINT_SECONDS = 5.0  # how often the daemon's own WAL checkpoint is tried
CHECKPOINT_CLEAR = timedelta(milliseconds=500)  # no checkpoint this close to a deadline
CHECKPOINT_MAX_SKIPS = 6  # … unless that many were put off in a row (the log must not grow)


def freeze_heap() -> int:
    """Collect now, then freeze what survived (gc.freeze); returns the frozen count.

    Called after start-up (imports, config, roster, the catch-up sweep) and again when the
    daemon has been quiet a while; cheap to repeat."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


class CheckpointPacer:
    """Runs the checkpoint when no deadline is near: `__call__(next_deadline)` runs it (True)
    unless the deadline is within `clear` of the clock, at most `max_skips` times in a row.

    A PASSIVE checkpoint blocks no writer, but it writes and fsyncs the database file: kept
    away from a deadline, its I/O does not meet the escalation's commit."""

    def __init__(
        self,
        run: Callable[[], Any],
        clock: Callable[[], datetime],
        *,
        clear: timedelta = CHECKPOINT_CLEAR,
        max_skips: int = CHECKPOINT_MAX_SKIPS,
    ) -> None:
        self.run, self.clock, self.clear, self.max_skips = run, clock, clear, max_skips
        self.skipped = 0
        self.last: Any = None

    def __call__(self, next_deadline: datetime | None) -> bool:
        near = next_deadline is not None and next_deadline - self.clock() < self.clear
        if near and self.skipped < self.max_skips:
            self.skipped += 1
            return False
        self.skipped = 0
        self.last = self.run()
        return True
