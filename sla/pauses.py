"""Keeping the daemon's process from pausing a sweep: the garbage collector's full pass.

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


def freeze_heap() -> int:
    """Collect now, then freeze what survived (gc.freeze); returns the frozen count.

    Called after start-up (imports, config, roster, the catch-up sweep) and again when the
    daemon has been quiet a while; cheap to repeat."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
