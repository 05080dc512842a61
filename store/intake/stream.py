"""Input that is not a regular file (a pipe, a tty): a reader thread, and batches cut when
input pauses, so that `tail -f log | tafang ingest -` shows each case at once."""

from __future__ import annotations

import io
import os
import queue
import stat
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from tafang.store.cases import utcnow
from tafang.store.intake.bounded import BATCH_BYTES, LineSplitter, read_lines
from tafang.store.intake.limits import MAX_LINE_BYTES

STREAM_IDLE = 0.2  # seconds without input after which a partial batch is committed
STREAM_MAX_WAIT = 1.0  # nor does a line wait longer than this under a steady trickle
_READ_SIZE = 1 << 16


def is_stream(lines: Any) -> bool:
    """A file object whose descriptor is not a regular file (pipe, tty, socket)."""
    fileno = getattr(lines, "fileno", None)
    if fileno is None:
        return False
    try:
        return not stat.S_ISREG(os.fstat(fileno()).st_mode)
    except (OSError, ValueError):  # io.UnsupportedOperation is an OSError and ValueError
        return False


def _pump(source: Any, q: queue.Queue[Any], limit: int) -> None:
    """Reader thread: put lists of whole lines on `q` as they arrive, then None (or the
    exception that ended reading). A binary buffered file is read with read1 (whatever has
    arrived, up to 64 KiB) and split here; anything else line by line. A line longer than
    `limit` comes as a `bounded.Oversized`, never held whole."""
    try:
        read1 = getattr(source, "read1", None)
        if read1 is not None and not isinstance(source, io.TextIOBase):
            split = LineSplitter(limit)
            while chunk := read1(_READ_SIZE):
                if lines := split.feed(chunk):
                    q.put(lines)
            if last := split.end():
                q.put(last)
        else:
            for line in read_lines(source, limit):
                q.put([line])
        q.put(None)
    except BaseException as e:  # handed to the ingesting thread, which raises it
        q.put(e)


def stream_batches(
    source: Any, batch: int, limit: int = MAX_LINE_BYTES
) -> Iterator[tuple[list[bytes | str], datetime]]:
    """Batches of lines from a stream, each with the time its first line arrived."""
    q: queue.Queue[Any] = queue.Queue(maxsize=256)
    threading.Thread(
        target=_pump, args=(source, q, limit), name="intake-reader", daemon=True
    ).start()
    pending: list[bytes | str] = []
    held = 0  # bytes in pending
    first_at = 0.0
    arrived = utcnow()
    while True:
        if pending:
            wait = min(STREAM_IDLE, first_at + STREAM_MAX_WAIT - time.monotonic())
            try:
                item = q.get(timeout=wait) if wait > 0 else q.get_nowait()
            except queue.Empty:
                yield pending, arrived
                pending, held = [], 0
                continue
        else:
            item = q.get()
        if item is None:
            break
        if isinstance(item, BaseException):
            raise item
        if not pending:
            first_at, arrived = time.monotonic(), utcnow()
        pending.extend(item)
        held += sum(map(len, item))
        while len(pending) >= batch or held >= BATCH_BYTES:  # bounded in lines and bytes
            yield pending[:batch], arrived
            pending = pending[batch:]
            held = sum(map(len, pending))
            first_at, arrived = time.monotonic(), utcnow()
    if pending:
        yield pending, arrived
