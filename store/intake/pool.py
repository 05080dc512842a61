"""A forked worker process parses and prepares the next batches while this process writes.

Fork, so that the worker inherits the context (deployment, clocks) instead of unpickling it:
only when this process runs no other thread, as forking a threaded process is unsafe.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from tafang.store.cases import Store
from tafang.store.intake.bounded import take
from tafang.store.intake.insert import Tally, commit
from tafang.store.intake.lines import parse_lines
from tafang.store.intake.outcome import IngestResult
from tafang.store.intake.prepare import Context, Prepared, prepare

_WORKER_CTX: Context | None = None  # set before the fork, read in the worker


def fork_is_safe() -> bool:
    return (
        sys.platform == "linux"
        and (os.cpu_count() or 1) > 1
        and threading.active_count() == 1
        and "fork" in multiprocessing.get_all_start_methods()
    )


def _prepare_remote(job: tuple[int, list[bytes | str], datetime]) -> list[Prepared]:
    n0, lines, now = job
    assert _WORKER_CTX is not None
    return prepare(replace(_WORKER_CTX, now=now), parse_lines(lines, n0))


def _worker_init() -> None:
    gc.disable()  # as in the writer (see run.no_gc)


def run_parallel(
    store: Store,
    ctx: Context,
    first: list[bytes | str],
    rest: Iterator[bytes | str],
    batch: int,
    workers: int,
) -> IngestResult:
    """Workers parse and validate batches ahead while this process writes them in order."""
    global _WORKER_CTX
    _WORKER_CTX = ctx  # inherited by the forked workers
    tally = Tally()
    mp = multiprocessing.get_context("fork")
    window = workers * 2 + 1  # batches in flight: bounded memory on any input size
    try:
        with mp.Pool(workers, initializer=_worker_init) as pool:
            pending: deque[tuple[Context, Any]] = deque()
            n0 = 1
            chunk = first
            while chunk or pending:
                while chunk and len(pending) < window:
                    c = ctx.fresh()
                    job = (n0, chunk, c.now)
                    pending.append((c, pool.apply_async(_prepare_remote, (job,))))
                    n0 += len(chunk)
                    chunk = take(rest, batch)  # bounded in bytes too
                c, prepared = pending.popleft()
                commit(store, c, prepared.get(), tally)
    finally:
        _WORKER_CTX = None
    return tally.result()
