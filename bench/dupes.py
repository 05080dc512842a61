"""Duplicate suggestions: quality on a labelled feed and time per incoming case (issue 14).

1. Precision and recall on the labelled feed (console/dupes_sim.py: planted duplicates across
   channels with the usual variation in wording and place), over several seeds.
2. Time to suggest for one incoming case against 10,000 open cases: spread over a week (a
   normal backlog) and all within the last window (the worst case), p50 / p99.

Targets: precision ≥ 0.9 at recall ≥ 0.7; ≤ 5 ms per incoming case against 10,000 open.
Run: .venv/bin/python bench/dupes.py [--seeds 5] [--events 1500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from tafang.console.dupes_sim import DupeFeed, evaluate
from tafang.store.config import load_config
from tafang.store.dupes import DupeIndex, report_of

ROOT = Path(__file__).resolve().parent.parent


def quality(dep, seeds: int, events: int) -> None:  # type: ignore[no-untyped-def]
    right = suggested = found = duplicates = 0
    for seed in range(1, seeds + 1):
        q = evaluate(dep, DupeFeed(dep, seed=seed).reports(events))
        print(
            f"  seed {seed}: precision {q.precision:.3f}  recall {q.recall:.3f}  "
            f"({q.right}/{q.suggested} suggestions right, {q.found}/{q.duplicates} found)"
        )
        right, suggested = right + q.right, suggested + q.suggested
        found, duplicates = found + q.found, duplicates + q.duplicates
    p, r = right / max(suggested, 1), found / max(duplicates, 1)
    print(f"precision {p:.3f} (target ≥ 0.9)  recall {r:.3f} (target ≥ 0.7)")


def speed(dep, label: str, per_hour: float) -> None:  # type: ignore[no-untyped-def]
    """10,000 open cases at `per_hour`, then 1,000 new ones timed one by one."""
    feed = DupeFeed(dep, seed=99).reports(8_000, per_hour=per_hour)[:11_000]
    backlog, incoming = feed[:10_000], feed[10_000:]
    index = DupeIndex(dep)
    index.add_all(report_of(r) for r in backlog)
    last = backlog[-1].received_at
    times, cpu = [], []
    for r in incoming:
        new = report_of(replace(r, received_at=last + timedelta(seconds=1)))
        t0, c0 = time.perf_counter(), time.thread_time()
        index.suggest(new)
        cpu.append((time.thread_time() - c0) * 1000)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    cpu.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    print(
        f"{label}: p50 {statistics.median(times):.2f} ms  p99 {p99:.2f} ms  "
        f"max {times[-1]:.2f} ms  (target ≤ 5 ms, {len(index):,} open; CPU p99 "
        f"{cpu[int(len(cpu) * 0.99) - 1]:.2f} ms: the rest is waiting for a core)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--events", type=int, default=1500)
    args = ap.parse_args()
    dep = load_config(ROOT / "config.toml")
    print(f"load average {os.getloadavg()[0]:.2f}; [dupes] {dep.dupes.model_dump()}")
    quality(dep, args.seeds, args.events)
    speed(dep, "10,000 open over a week", per_hour=10_000 / (7 * 24))
    speed(dep, "10,000 open within the window (worst case)", per_hour=10_000 / 1.5)


if __name__ == "__main__":
    main()
