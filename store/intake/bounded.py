"""Lines of bounded length: a line longer than the limit is never held whole.

A 300 MB line used to be read, decoded and stripped whole before it was rejected (1.25 GB).
Here a file is read with `readline(limit + 1)`, and the rest of a longer line is skipped in
1 MiB steps, counting its size: it becomes an `Oversized` (its size and first bytes), which
`lines.parse_lines` rejects with the reason. Lines are split on b"\\n" only (never on the
separators `str.splitlines` knows: \\x1c–\\x1f, NEL, U+2028 …), so line numbers are those of
`wc -l` and every line is counted once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

HEAD = 1024  # bytes of an oversized line kept in its dead letter
BATCH_BYTES = 32 * 1024 * 1024  # a batch is cut here too: 5,000 lines of 4 MiB are 20 GB
_SKIP = 1 << 20


class Oversized(NamedTuple):
    """A line over the limit, not kept: its size (bytes, or characters for text input, the
    end of line included), the limit it broke and its first `HEAD` bytes."""

    size: int
    limit: int
    head: bytes | str


def cut(line: Any, limit: int) -> Any:
    """`line`, or an `Oversized` if it is longer than `limit`."""
    if isinstance(line, bytes | bytearray | str) and len(line) > limit:
        return Oversized(len(line), limit, line[:HEAD])
    return line


def take(it: Iterator[Any], batch: int, max_bytes: int = BATCH_BYTES) -> list[Any]:
    """The next batch: up to `batch` lines, fewer once they hold `max_bytes`, so that the
    batches in flight (being parsed, pickled to the worker, written) stay bounded in memory."""
    out: list[Any] = []
    size = 0
    for line in it:
        out.append(line)
        if isinstance(line, bytes | bytearray | str):  # an Oversized holds only its head
            size += len(line)
        if len(out) >= batch or size >= max_bytes:
            break
    return out


def read_lines(source: Iterable[Any], limit: int) -> Iterator[Any]:
    """The lines of `source` (a file with `readline`, or any iterable of lines), each at most
    `limit` long; a longer one comes as an `Oversized`, read in bounded steps."""
    readline = getattr(source, "readline", None)
    if readline is None:
        for line in source:
            yield cut(line, limit)
        return
    cap = limit + 1
    while line := readline(cap):
        if len(line) <= limit:
            yield line
            continue
        size, end = len(line), line[-1:]
        eol = b"\n" if isinstance(line, bytes) else "\n"
        while end != eol and (more := readline(_SKIP)):
            size += len(more)
            end = more[-1:]
        yield Oversized(size, limit, line[:HEAD])


class LineSplitter:
    """Whole lines from chunks of bytes (a pipe read with read1), each at most `limit` long.

    Bytes of an unfinished line are held only up to `limit`; past it the line is skipped
    and only its size counted, to come out as an `Oversized` when its end arrives."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tail: list[bytes] = []
        self._held = 0
        self._head: bytes | None = None  # set while skipping an oversized line

    def feed(self, chunk: bytes) -> list[Any]:
        """The lines this chunk ends (possibly none)."""
        if b"\n" not in chunk:
            self._hold(chunk)
            return []
        parts = chunk.split(b"\n")
        last = parts.pop()
        lines: list[Any] = [x + b"\n" for x in parts]
        if self._held:
            lines[0] = self._finish(lines[0])
        if self.limit < len(chunk):  # a line inside this chunk may be over the limit
            lines = [cut(x, self.limit) for x in lines]
        if last:
            self._hold(last)
        return lines

    def end(self) -> list[Any]:
        """The last line, if the input did not end with a newline."""
        return [self._finish(b"")] if self._held else []

    def _hold(self, b: bytes) -> None:
        self._held += len(b)
        if self._head is None:
            self._tail.append(b)
            if self._held > self.limit:
                self._head = b"".join(self._tail)[:HEAD]
                self._tail = []

    def _finish(self, rest: bytes) -> Any:
        size = self._held + len(rest)
        if self._head is None and size <= self.limit:
            line: Any = b"".join([*self._tail, rest])
        else:
            head = self._head if self._head is not None else b"".join([*self._tail, rest])
            line = Oversized(size, self.limit, head[:HEAD])
        self._tail, self._held, self._head = [], 0, None
        return line
