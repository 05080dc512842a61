"""The entry points: `ingest` (JSON Lines from a file, a pipe or any iterable of lines) and
`ingest_records` (records already parsed, from HTTP feeds); both end in `insert.commit`."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from tafang.store.cases import Actor, Store
from tafang.store.intake.bounded import read_lines, take
from tafang.store.intake.insert import Tally, commit
from tafang.store.intake.lines import parse_lines, shallow
from tafang.store.intake.outcome import IngestResult
from tafang.store.intake.pool import fork_is_safe, run_parallel
from tafang.store.intake.prepare import Context, prepare
from tafang.store.intake.stream import is_stream, stream_batches


def ingest(
    store: Store,
    lines: Iterable[bytes | str],
    *,
    origin: str,
    actor: Actor,
    now: datetime | None = None,
    batch: int = 5000,
    workers: int | None = None,
    history: bool = False,
) -> IngestResult:
    """Import JSON Lines (a file opened in binary mode, or any iterable of lines).

    `now` (tests inject it) is the receipt time of records without `received_at`; when None
    it is read per batch, as that batch's lines are read. A stream that is not a regular
    file (stdin, a pipe, a tty) is read by a thread and a batch is committed as soon as input
    pauses for `STREAM_IDLE` seconds (or its first line is `STREAM_MAX_WAIT` old), so `tail
    -f log | tafang ingest -` shows each case at once.

    `workers`: processes that parse and validate while this one writes. None = one when
    the input is longer than a batch, the machine has a second core and this process runs
    no other thread (forking a threaded process is unsafe); two for history, whose lines
    cost more to prepare than to write (a year: 2.4 s CPU preparing, 1.5 s writing); 0 = all
    in this process. Streams are never handed to workers.

    `history`: the records are past cases, brought in as they were (`intake.history`).
    """
    ctx = Context.of(store, now, origin, actor, history)
    if is_stream(lines):
        return _ingest_stream(store, ctx, lines, batch)
    it = read_lines(lines, ctx.d.intake.max_line_bytes)  # bounded: see `bounded`
    first = take(it, batch)
    more = len(first) == batch
    if workers is None:
        workers = (2 if history else 1) if more and fork_is_safe() else 0
    with no_gc():
        if workers > 0 and more:
            return run_parallel(store, ctx, first, it, batch, workers)
        tally = Tally()
        n0 = 1
        chunk = first
        while chunk:
            c = ctx.fresh()
            commit(store, c, prepare(c, parse_lines(chunk, n0)), tally)
            n0 += len(chunk)
            chunk = take(it, batch)
        return tally.result()


def _ingest_stream(store: Store, ctx: Context, source: Any, batch: int) -> IngestResult:
    tally = Tally()
    n0 = 1
    for chunk, arrived in stream_batches(source, batch, ctx.d.intake.max_line_bytes):
        c = ctx.fresh(arrived)
        with no_gc():  # per batch: a stream may run for days
            commit(store, c, prepare(c, parse_lines(chunk, n0)), tally)
        n0 += len(chunk)
    return tally.result()


def ingest_records(
    store: Store,
    records: Iterable[tuple[int | None, dict[str, Any]]],
    *,
    origin: str,
    actor: Actor,
    now: datetime | None = None,
    batch: int = 2000,
) -> IngestResult:
    """Import already-parsed records (HTTP feeds): the same checks, dedupe and record."""
    ctx = Context.of(store, now, origin, actor)
    tally = Tally()
    it = iter(records)
    with no_gc():
        while chunk := list(itertools.islice(it, batch)):
            items = [(n, None, shallow(rec), None, True) for n, rec in chunk]
            c = ctx.fresh()
            commit(store, c, prepare(c, items), tally)
    return tally.result()


@contextmanager
def no_gc() -> Iterator[None]:
    """Bulk loading allocates millions of short-lived containers and no cycles: the cyclic
    collector would rescan every live object again and again (a third of the run time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
