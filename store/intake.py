"""JSON Lines intake (DESIGN §4): records in, cases out, nothing lost and nothing twice.

A line is rejected (kept in `dead_letters` with its reason, and on the record) only when it
cannot be a case. Anything else odd is accepted, flagged for triage and its raw value kept in
the case's `raw` column, so that a dispatcher sees every real report.

Choices this module makes (the contract leaves them open):
- Line numbers are physical, 1-based: blank lines are skipped and not counted as records, but
  they still advance the line number, so "line 7" is line 7 of the file.
- A UTF-8 byte-order mark at the start of a line is ignored.
- The dedupe key (`source`, `external_id`) is kept exactly or the line is rejected: any
  stand-in for what cannot be stored could equal another report's real key and lose it as a
  "duplicate". So a line whose `source` or `external_id` holds bytes that are not UTF-8 is
  rejected ("external_id holds bytes that are not UTF-8"), as is one whose key holds a lone
  surrogate or NUL (on both databases, so a line means the same on either).
- Elsewhere, bytes that are not valid UTF-8 are decoded with U+FFFD in their place; if the
  line still parses, the case is accepted and flagged ("not valid UTF-8 …") and the line as
  received is kept in `raw["line"]` with each bad byte written as `\\xNN` (backslashreplace).
  A dead letter keeps the same backslashreplace text.
- In text fields, lone surrogates (JSON "\\ud800") cannot be stored as UTF-8 by either
  database: each is written as the literal six characters `\\ud800` and the case is flagged.
  NUL is stored as is on SQLite; PostgreSQL text cannot hold it, so there it becomes the
  literal six characters `\\u0000`, flagged the same way. `raw` JSON keeps the exact values.
- `received_at` more than a day ahead of our clock (`MAX_AHEAD`) is a wrong clock at the
  sender: the case is flagged, the value kept in raw and our time of intake used, since the
  clocks start at receipt. One in the past is a backfill and kept as given.
- The time of intake (`now`, unless injected) is read per batch, when its lines are read.
  Input from a pipe or tty is committed as it arrives (see `ingest`), not at 2,000 lines.
- A time without an offset is read in the deployment's time zone (feeds in China commonly
  send local times) and not flagged. Numbers are read as Unix seconds (milliseconds when
  above 10^11). An unreadable `reported_at` is stored as NULL and flagged; an unreadable
  `received_at` becomes `now` and is flagged.
- Missing `grid` / `category` / `priority` are not flagged (the contract makes them optional);
  unknown ones are. A grid may be given by its 14-digit code or its map label ("N3-07"); a
  category by its code (an integer is zero-padded: 590 → "0590") or its Chinese name.
- Hard limits (a breach rejects the line): a line of at most 4 MiB, `source` ≤ 64 and
  `external_id` ≤ 200 characters (their column sizes), `title`, `location` and `reporter`
  ≤ 100,000 characters, `description` ≤ 1,000,000 characters (100 kB of text is accepted).

How it is fast (≥ 20k records/s into SQLite, DESIGN §5): batches of `batch` lines, each one
transaction under the record's head lock; hand-written validation; orjson for plain lines
(json for anything it might read differently); dedupe by one range query per source and
batch on SQLite (IN queries when the range holds other ids); ids handed out under the lock
and rows sent as tuples to the driver's executemany (no ORM, no per-value SQLAlchemy
processing; SQLite times bound as ready text); the cyclic GC paused for the run; and, for
long inputs, a forked worker process parsing and validating the next batches while this
process writes (see `ingest(workers=)`). The worker also writes each case's record detail
and its hashed encoding, so the writer only chains hashes (`store.record.chain_rows`).
"""

from __future__ import annotations

import gc
import io
import itertools
import json
import math
import multiprocessing
import operator
import os
import queue
import re
import stat
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel.sql.sqltypes import UTCDateTime
from tafang.store.cases import Actor, Store, utcnow
from tafang.store.clocks import DUE_COLUMNS
from tafang.store.config import PRIORITIES, Deployment
from tafang.store.models import Case, DeadLetter
from tafang.store.record import AUDIT_ROW, chain_rows, dump_detail, encode_detail

try:  # a parser four times faster than json's; intake works without it
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    orjson = None

CASES = Case.__table__
DEAD = DeadLetter.__table__

MAX_LINE_BYTES = 4 * 1024 * 1024
MAX_SOURCE = 64
MAX_EXTERNAL_ID = 200
MAX_TEXT = 100_000
MAX_DESCRIPTION = 1_000_000
MAX_AHEAD = timedelta(days=1)  # a received_at further ahead of our clock is not believed

KNOWN_FIELDS = frozenset(
    (
        "source",
        "external_id",
        "title",
        "description",
        "category",
        "grid",
        "location",
        "priority",
        "reported_at",
        "received_at",
        "reporter",
        "lat",
        "lon",
    )
)
TEXT_LIMITS = {
    "title": MAX_TEXT,
    "description": MAX_DESCRIPTION,
    "location": MAX_TEXT,
    "reporter": MAX_TEXT,
}
_TEXT_ITEMS = tuple(TEXT_LIMITS.items())
_PRIORITY_SET = frozenset(PRIORITIES)
_PRIORITY_OBJS = {p: p for p in PRIORITIES}
_SURROGATES = re.compile("[\ud800-\udfff]")
_json_str = json.encoder.encode_basestring  # a str as json.dumps(ensure_ascii=False) writes it
_UNSTORABLE_PG = re.compile("[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicate: int
    rejected: int
    errors: list[tuple[int | None, str]] = field(default_factory=list)

    @property
    def summary(self) -> str:
        """The line `tafang ingest` prints (a contract: operators grep it)."""
        return f"accepted={self.accepted} duplicate={self.duplicate} rejected={self.rejected}"


@dataclass(frozen=True, slots=True)
class Normalised:
    """A record that can be a case: column values ready to insert (clocks not yet set)."""

    values: dict[str, Any]
    triage: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return self.values["source"], self.values["external_id"]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that cannot be a case, with the reason an operator reads."""

    reason: str


class _Lookups:
    """Per-deployment tables for fast hand-written validation (built once, cached)."""

    def __init__(self, d: Deployment) -> None:
        self.grids: dict[str, str] = {g.code: g.code for g in d.tower.grids}
        self.grids.update({g.label: g.code for g in d.tower.grids})
        self.categories: dict[str, str] = {c.code: c.code for c in d.categories}
        self.categories.update({c.name: c.code for c in d.categories})
        self.channels = d.channel_codes
        # Known codes as one object each: a row pickles (to the writer) a reference to it.
        self.channel_objs: dict[str, str] = {c: c for c in d.channel_codes}
        self.tz = ZoneInfo(d.timezone)


_LOOKUPS: dict[int, tuple[Deployment, _Lookups]] = {}


def _lookups(d: Deployment) -> _Lookups:
    hit = _LOOKUPS.get(id(d))
    if hit is None or hit[0] is not d:
        hit = (d, _Lookups(d))
        _LOOKUPS[id(d)] = hit
    return hit[1]


# ---- pure validation ---------------------------------------------------------------------
def _show(v: Any) -> str:
    """A value as a reason shows it: quoted, escapes visible, never longer than ~60 chars."""
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    if len(s) > 60:
        s = s[:57] + "…"
    r = repr(s)
    return r


def _escape_unstorable(s: str, nul_ok: bool) -> str:
    r"""Write lone surrogates (and NUL where the database cannot hold it) as `\uXXXX`."""
    pat = _SURROGATES if nul_ok else _UNSTORABLE_PG
    return pat.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def _key(record: dict[str, Any], name: str, limit: int) -> str | Rejected:
    v = record.get(name)
    if isinstance(v, str):
        s = v.strip()
    elif isinstance(v, int | float) and not isinstance(v, bool):
        if isinstance(v, float) and not math.isfinite(v):
            return Rejected(f"field {name!r} is not a usable identifier: {v}")
        s = str(v)
    elif v is None:
        return Rejected(f"missing required field {name!r}")
    else:
        return Rejected(f"field {name!r} must be a string or number, not {_json_type(v)}")
    if not s:
        return Rejected(f"required field {name!r} is empty")
    if len(s) > limit:
        return Rejected(f"field {name!r} is {len(s)} characters long; the limit is {limit}")
    return s


def _json_type(v: Any) -> str:
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, str):
        return "a string"
    if v is None:
        return "null"
    return "a number"


def _time(v: Any, tz: ZoneInfo) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text or Unix seconds; None if unreadable."""
    try:
        if isinstance(v, str):
            s = v.strip()
            if not s:
                return None
            t = datetime.fromisoformat(s)
            if t.tzinfo is None:
                t = t.replace(tzinfo=tz)
            return t.astimezone(UTC)
        if isinstance(v, int | float) and not isinstance(v, bool):
            x = float(v)
            if not math.isfinite(x):
                return None
            if abs(x) > 1e11:
                x /= 1000.0
            return datetime.fromtimestamp(x, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _coord(v: Any, bound: float) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            return None
    if isinstance(v, int | float):
        try:
            x = float(v)
        except OverflowError:
            return None
        if math.isfinite(x) and -bound <= x <= bound:
            return x
    return None


def normalise(
    record: Any,
    deployment: Deployment,
    *,
    now: datetime | None = None,
    nul_ok: bool = True,
    scan: bool = True,
) -> Normalised | Rejected:
    """Validate one parsed record by hand (no pydantic per record: intake must be fast).

    `nul_ok=False` for PostgreSQL, whose text cannot hold NUL. `now` is the receipt time
    when the record has no readable `received_at`. `scan=False` skips the search for NUL and
    lone surrogates when the caller knows there are none (a JSON line without `\\u`).
    """
    if type(record) is not dict:
        if not isinstance(record, dict):
            return Rejected(f"not a JSON object (got {_json_type(record)})")
    get = record.get
    source = get("source")
    if (
        type(source) is not str
        or not source
        or len(source) > MAX_SOURCE
        or source != source.strip()
    ):
        source = _key(record, "source", MAX_SOURCE)
        if isinstance(source, Rejected):
            return source
    external_id = get("external_id")
    if (
        type(external_id) is not str
        or not external_id
        or len(external_id) > MAX_EXTERNAL_ID
        or external_id != external_id.strip()
    ):
        external_id = _key(record, "external_id", MAX_EXTERNAL_ID)
        if isinstance(external_id, Rejected):
            return external_id
    lk = _lookups(deployment)
    triage: list[str] = []
    raw: dict[str, Any] = {}
    values: dict[str, Any] = {}

    for name, limit in _TEXT_ITEMS:
        v = get(name)
        if type(v) is str:
            s = v
        elif v is None:
            s = ""
        elif isinstance(v, int | float) and not isinstance(v, bool):
            s = str(v)
        else:
            s = ""
            raw[name] = v
            triage.append(f"{name} is not text ({_json_type(v)})")
        if len(s) > limit:
            return Rejected(f"field {name!r} is {len(s)} characters long; the limit is {limit}")
        values[name] = s
    if not values["title"].strip() and not values["description"].strip():
        return Rejected("neither 'title' nor 'description' has any text")

    if scan:
        # The dedupe key must be exact: an escaped key could equal another's literal text.
        for name, k in (("source", source), ("external_id", external_id)):
            m = _UNSTORABLE_PG.search(k)
            if m is not None:
                return Rejected(_unstorable_key(name, m.group()))
        # Text a database cannot hold as is: escape it visibly, keep the exact value in raw.
        pat = _SURROGATES if nul_ok else _UNSTORABLE_PG
        for name in TEXT_LIMITS:
            t = values[name]
            if pat.search(t):
                values[name] = _escape_unstorable(t, nul_ok)
                raw[name] = t  # the exact text: JSON escapes keep it
                triage.append(f"{name} held characters the store cannot keep (written as \\uXXXX)")
    values["source"] = source
    values["external_id"] = external_id

    known = lk.channel_objs.get(source)
    if known is not None:
        values["source"] = known
    else:
        triage.append(f"unknown source channel {_show(source)}")

    grid = get("grid")
    if grid is None or grid == "":
        values["grid"] = None
    else:
        g = lk.grids.get(grid) if type(grid) is str else None
        if g is None:
            g = lk.grids.get(grid.strip() if isinstance(grid, str) else str(grid))
            if g is None:
                triage.append(f"unknown grid {_show(grid)}")
                raw["grid"] = grid
        values["grid"] = g

    cat = get("category")
    if cat is None or cat == "":
        values["category"] = None
    else:
        c = lk.categories.get(cat) if type(cat) is str else None
        if c is None:
            if isinstance(cat, int) and not isinstance(cat, bool) and 0 <= cat < 10_000:
                key = f"{cat:04d}"
            else:
                key = cat.strip() if isinstance(cat, str) else str(cat)
            c = lk.categories.get(key)
            if c is None:
                triage.append(f"unknown category {_show(cat)}")
                raw["category"] = cat
        values["category"] = c

    pri = get("priority")
    if pri is None or pri == "":
        values["priority"] = "normal"
    elif pri in _PRIORITY_SET:
        values["priority"] = _PRIORITY_OBJS[pri]
    else:
        p = pri.strip().lower() if isinstance(pri, str) else None
        if p in _PRIORITY_SET:
            values["priority"] = p
        else:
            triage.append(f"unknown priority {_show(pri)} (taken as normal)")
            raw["priority"] = pri
            values["priority"] = "normal"

    rep = get("reported_at")
    if rep is None or rep == "":
        values["reported_at"] = None
    else:
        t = _time(rep, lk.tz)
        if t is None:
            triage.append(f"unreadable reported_at {_show(rep)}")
            raw["reported_at"] = rep
        values["reported_at"] = t

    rec = get("received_at")
    t = None if rec is None or rec == "" else _time(rec, lk.tz)
    if t is None:
        if rec is not None and rec != "":
            triage.append(f"unreadable received_at {_show(rec)} (taken as the time of intake)")
            raw["received_at"] = rec
        t = now or utcnow()
    else:
        at = now or utcnow()
        if t > at + MAX_AHEAD:  # a wrong clock at the sender: ours start at receipt
            triage.append(
                f"received_at {_show(rec)} is more than a day in the future "
                "(taken as the time of intake)"
            )
            raw["received_at"] = rec
            t = at
    values["received_at"] = t

    for name, bound in (("lat", 90.0), ("lon", 180.0)):
        v = get(name)
        if type(v) is float and -bound <= v <= bound:
            values[name] = v
            continue
        if v is None or v == "":
            values[name] = None
            continue
        x = _coord(v, bound)
        if x is None:
            triage.append(f"{name} is not a usable number: {_show(v)}")
            raw[name] = v
        values[name] = x

    if len(record) > len(KNOWN_FIELDS) or not KNOWN_FIELDS.issuperset(record):
        extra = {k: v for k, v in record.items() if k not in KNOWN_FIELDS}
        if extra:
            raw["extra"] = extra
    values["raw"] = _dump_raw(raw) if raw else "{}"
    values["triage"] = bool(triage)
    values["triage_reason"] = "; ".join(triage)
    return Normalised(values, tuple(triage))


def _unstorable_key(name: str, ch: str) -> str:
    if ch == "\x00":
        return f"{name} holds NUL (\\u0000), which cannot be part of an identifier"
    return f"{name} holds a lone surrogate (\\u{ord(ch):04x}), which is not a character"


def _dump_raw(raw: dict[str, Any]) -> str:
    """JSON of the raw values, readable (CJK as is) unless it holds lone surrogates."""
    s = json.dumps(raw, ensure_ascii=False, default=str)
    if _SURROGATES.search(s):
        s = json.dumps(raw, ensure_ascii=True, default=str)  # \udXXX escapes: exact
    return s


# ---- reading lines ----------------------------------------------------------------------
# One parsed input item: (line_no, raw text or None, parsed value or a Rejected, note,
# whether the text may hold NUL or lone surrogates). The raw text may still be the line's
# UTF-8 bytes, end of line included (see `_raw_text`): it is decoded only when kept.
_Item = tuple[int | None, str | bytes | None, Any, str | None, bool]
_SLOW = object()
_BIG = 9.2e18  # orjson reads integers beyond 64 bits as floats: json.loads keeps them exact


def _fast_loads(b: bytes) -> Any:
    """orjson's reading of a line when it is sure to equal json.loads': a JSON object of
    plain values (no nested containers, no float beyond ±9.2e18, which may have been a big
    integer). Otherwise `_SLOW`: the line goes the json.loads way (which also names the
    error of a line orjson rejects, and keeps lone surrogates, NaN and big integers)."""
    try:
        value = orjson.loads(b)
    except orjson.JSONDecodeError:
        return _SLOW
    if type(value) is not dict:
        return _SLOW
    for x in value.values():
        t = type(x)
        if t is float:
            if not -_BIG < x < _BIG:
                return _SLOW
        elif t is dict or t is list:
            return _SLOW
    return value


def _parse_lines(lines: Iterable[bytes | str], first: int = 1) -> Iterator[_Item]:
    """Decode and parse each non-blank line; never raises for any content."""
    fast = orjson is not None
    for n, line in enumerate(lines, first):
        note: str | None = None
        if isinstance(line, bytes | bytearray | memoryview):
            b = bytes(line)
            if fast and len(b) <= MAX_LINE_BYTES and b[:1] != b"\xef":  # no BOM
                value = _fast_loads(b)
                if value is not _SLOW:  # valid UTF-8 (orjson checks), a dict: as below
                    yield n, b, value, None, b"\\u" in b
                    continue
            try:
                text = b.decode("utf-8")
            except UnicodeDecodeError as e:
                kept = _strip_eol(b.decode("utf-8", "backslashreplace"))
                if not kept.strip():
                    continue
                text = b.decode("utf-8", "replace")
                if len(b) > MAX_LINE_BYTES:
                    yield n, kept, Rejected(_too_long(len(b))), None, True
                    continue
                try:
                    value = json.loads(text.lstrip("\ufeff"))
                except Exception as pe:  # any content must become a reason
                    reason = (
                        f"not UTF-8 text (bad byte at column {e.start + 1}); {_json_reason(pe)}"
                    )
                    yield n, kept, Rejected(reason), None, True
                    continue
                why = _bad_bytes_in_key(b, value)
                if why is not None:
                    yield n, kept, Rejected(why), None, True
                    continue
                bad = text.count("\ufffd") - kept.count("\ufffd")
                yield (
                    n,
                    kept,
                    value,
                    f"line was not valid UTF-8 ({bad} invalid byte sequence(s) replaced by U+FFFD; "
                    "the line is kept in raw)",
                    "\\u" in text,
                )
                continue
            size = len(b)
            scan = "\\u" in text
        else:
            text = str(line)
            size = len(text)
            scan = "\\u" in text or _SURROGATES.search(text) is not None
        if not text.strip():
            continue
        if size > MAX_LINE_BYTES:
            yield n, _strip_eol(text), Rejected(_too_long(size)), None, True
            continue
        try:
            value = json.loads(text.lstrip("\ufeff") if text[:1] == "\ufeff" else text)
        except Exception as pe:  # any content must become a reason
            yield n, _strip_eol(text), Rejected(_json_reason(pe)), None, True
            continue
        yield n, _strip_eol(text), value, note, scan


def _bad_bytes_in_key(b: bytes, value: Any) -> str | None:
    """Why the line is rejected if undecodable bytes fall in `source` or `external_id`.

    Replaced by U+FFFD, `bad\\xff` and `bad\\xfe` would be one key and the second report a
    "duplicate". Parsed again with each bad byte as its own surrogate, a key that differs from
    the U+FFFD parse held bad bytes (the two texts differ only there)."""
    if type(value) is not dict:
        return None
    try:
        exact = json.loads(b.decode("utf-8", "surrogateescape").lstrip("\ufeff"))
    except Exception:  # cannot happen (only string contents differ); never guess a key
        return "source or external_id may hold bytes that are not UTF-8"
    if type(exact) is not dict:
        return "source or external_id may hold bytes that are not UTF-8"
    for name in ("source", "external_id"):
        if exact.get(name) != value.get(name):
            return f"{name} holds bytes that are not UTF-8"
    return None


def _strip_eol(s: str) -> str:
    return s[:-2] if s.endswith("\r\n") else s[:-1] if s.endswith("\n") else s


def _too_long(size: int) -> str:
    return f"line is {size} bytes long; the limit is {MAX_LINE_BYTES}"


def _json_reason(e: BaseException) -> str:
    if isinstance(e, json.JSONDecodeError):
        return f"not valid JSON: {e.msg} at column {e.colno}"
    if isinstance(e, RecursionError):
        return "not valid JSON: nested too deeply"
    return f"not valid JSON: {e}"


# ---- writing ------------------------------------------------------------------------------
def ingest(
    store: Store,
    lines: Iterable[bytes | str],
    *,
    origin: str,
    actor: Actor,
    now: datetime | None = None,
    batch: int = 5000,
    workers: int | None = None,
) -> IngestResult:
    """Import JSON Lines (a file opened in binary mode, or any iterable of lines).

    `now` (tests inject it) is the receipt time of records without `received_at`; when None
    it is read per batch, as that batch's lines are read. A stream that is not a regular
    file (stdin, a pipe, a tty) is read by a thread and a batch is committed as soon as input
    pauses for `STREAM_IDLE` seconds (or its first line is `STREAM_MAX_WAIT` old), so `tail
    -f log | tafang ingest -` shows each case at once.

    `workers`: processes that parse and validate while this one writes. None = one when
    the input is longer than a batch, the machine has a second core and this process runs
    no other thread (forking a threaded process is unsafe); 0 = all in this process. Streams
    are never handed to workers.
    """
    ctx = _Context.of(store, now, origin, actor)
    if _is_stream(lines):
        return _ingest_stream(store, ctx, lines, origin, actor, batch)
    it = iter(lines)
    first = list(itertools.islice(it, batch))
    more = len(first) == batch
    if workers is None:
        workers = 1 if more and _fork_is_safe() else 0
    with _no_gc():
        if workers > 0 and more:
            return _run_parallel(store, ctx, first, it, origin, actor, batch, workers)
        tally = _Tally()
        n0 = 1
        chunk = first
        while chunk:
            c = ctx.fresh()
            _commit(store, c, _prepare(c, _parse_lines(chunk, n0)), origin, actor, tally)
            n0 += len(chunk)
            chunk = list(itertools.islice(it, batch))
        return tally.result()


# ---- streams: commit what has arrived when input pauses -----------------------------------
STREAM_IDLE = 0.2  # seconds without input after which a partial batch is committed
STREAM_MAX_WAIT = 1.0  # nor does a line wait longer than this under a steady trickle
_READ_SIZE = 1 << 16


def _is_stream(lines: Any) -> bool:
    """A file object whose descriptor is not a regular file (pipe, tty, socket)."""
    fileno = getattr(lines, "fileno", None)
    if fileno is None:
        return False
    try:
        return not stat.S_ISREG(os.fstat(fileno()).st_mode)
    except (OSError, ValueError):  # io.UnsupportedOperation is an OSError and ValueError
        return False


def _pump(source: Any, q: queue.Queue[Any]) -> None:
    """Reader thread: put lists of whole lines on `q` as they arrive, then None (or the
    exception that ended reading). A binary buffered file is read with read1 (whatever has
    arrived, up to 64 KiB) and split here; anything else line by line."""
    try:
        read1 = getattr(source, "read1", None)
        if read1 is not None and not isinstance(source, io.TextIOBase):
            tail: list[bytes] = []
            while chunk := read1(_READ_SIZE):
                if b"\n" not in chunk:
                    tail.append(chunk)
                    continue
                if tail:
                    tail.append(chunk)
                    chunk = b"".join(tail)
                    tail = []
                parts = chunk.split(b"\n")
                last = parts.pop()
                q.put([x + b"\n" for x in parts])
                if last:
                    tail.append(last)
            if tail:
                q.put([b"".join(tail)])
        else:
            for line in source:
                q.put([line])
        q.put(None)
    except BaseException as e:  # handed to the ingesting thread, which raises it
        q.put(e)


def _stream_batches(source: Any, batch: int) -> Iterator[tuple[list[bytes | str], datetime]]:
    """Batches of lines from a stream, each with the time its first line arrived."""
    q: queue.Queue[Any] = queue.Queue(maxsize=256)
    threading.Thread(target=_pump, args=(source, q), name="intake-reader", daemon=True).start()
    pending: list[bytes | str] = []
    first_at = 0.0
    arrived = utcnow()
    while True:
        if pending:
            wait = min(STREAM_IDLE, first_at + STREAM_MAX_WAIT - time.monotonic())
            try:
                item = q.get(timeout=wait) if wait > 0 else q.get_nowait()
            except queue.Empty:
                yield pending, arrived
                pending = []
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
        while len(pending) >= batch:
            yield pending[:batch], arrived
            pending = pending[batch:]
            first_at, arrived = time.monotonic(), utcnow()
    if pending:
        yield pending, arrived


def _ingest_stream(
    store: Store, ctx: _Context, source: Any, origin: str, actor: Actor, batch: int
) -> IngestResult:
    tally = _Tally()
    n0 = 1
    for chunk, arrived in _stream_batches(source, batch):
        c = ctx.fresh(arrived)
        with _no_gc():  # per batch: a stream may run for days
            _commit(store, c, _prepare(c, _parse_lines(chunk, n0)), origin, actor, tally)
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
    ctx = _Context.of(store, now, origin, actor)
    tally = _Tally()
    it = iter(records)
    with _no_gc():
        while chunk := list(itertools.islice(it, batch)):
            items = [(n, None, rec, None, True) for n, rec in chunk]
            c = ctx.fresh()
            _commit(store, c, _prepare(c, items), origin, actor, tally)
    return tally.result()


# ---- the two steps: prepare (pure, parallel-safe) and commit (one transaction) ------------
# Columns of a prepared case row, in order; `id` and `updated_seq` follow, both handed out
# under the write lock.
ROW_COLUMNS = (
    *TEXT_LIMITS,
    "source",
    "external_id",
    "grid",
    "category",
    "priority",
    "reported_at",
    "received_at",
    "lat",
    "lon",
    "raw",
    "triage",
    "triage_reason",
    "respond_due",
    "dispatch_due",
    "arrive_due",
    "resolve_due",
    "next_check_at",
    "status",
    "escalation_level",
    "supervised",
    "version",
    "updated_at",
    "updated_by",
    "updated_terminal",
)
INSERT_COLUMNS = (*ROW_COLUMNS, "id", "updated_seq")
_TIME_POSITIONS = tuple(  # `updated_at` is written ready (see _prepare)
    i
    for i, c in enumerate(ROW_COLUMNS)
    if isinstance(CASES.c[c].type, UTCDateTime) and c not in ("updated_at", "next_check_at")
)
_NEXT_CHECK_AT = ROW_COLUMNS.index("next_check_at")
_DUE_POSITIONS = tuple(ROW_COLUMNS.index(c) for c in DUE_COLUMNS)
_SOURCE_AT = ROW_COLUMNS.index("source")
_EXTERNAL_AT = ROW_COLUMNS.index("external_id")


@dataclass(frozen=True)
class _Context:
    """What preparing a record needs; forked workers inherit it (nothing is pickled)."""

    d: Deployment
    clocks: Any
    now: datetime
    nul_ok: bool
    sqlite: bool
    fixed: bool  # `now` was injected by the caller: every batch uses it
    origin: str
    actor: Actor

    @classmethod
    def of(cls, store: Store, now: datetime | None, origin: str, actor: Actor) -> _Context:
        sqlite = store.engine.dialect.name == "sqlite"
        return cls(
            store.d, store.clocks, now or utcnow(), sqlite, sqlite, now is not None, origin, actor
        )

    def fresh(self, at: datetime | None = None) -> _Context:
        """This context for a batch read at `at` (default: now), unless `now` was injected."""
        return self if self.fixed else replace(self, now=at or utcnow())


# A prepared line: ("case", line_no, row, detail, encoded detail) or ("reject", line_no,
# reason, raw text). The detail is the case's "ingest" entry as stored in the record, and
# its encoding as hashed (see store.record.chain_rows): both made here, in the worker.
_Prepared = tuple[Any, ...]


def _prepare(ctx: _Context, items: Iterable[_Item]) -> list[_Prepared]:
    """Validate, start the clocks and lay out rows ready for the driver. Pure CPU work."""
    out: list[_Prepared] = []
    d, now, nul_ok, sqlite = ctx.d, ctx.now, ctx.nul_ok, ctx.sqlite
    start = ctx.clocks.start
    fixed = {
        **_FIXED,
        "updated_at": sqlite_time(now) if sqlite else now,
        "updated_by": ctx.actor.operator,
        "updated_terminal": ctx.actor.terminal,
    }
    # The ingest entry's detail, as dump_detail writes {external_id, origin, source, triage}.
    mid = f',"origin":{_json_str(ctx.origin)},"source":'
    for n, raw, value, note, scan in items:
        if isinstance(value, Rejected):
            out.append(("reject", n, value.reason, _raw_text(raw, None, nul_ok)))
            continue
        try:
            res = normalise(value, d, now=now, nul_ok=nul_ok, scan=scan)
            if isinstance(res, Normalised):
                v = res.values
                if note is not None:  # bytes that were not UTF-8: keep the line as received
                    raw_fields = json.loads(v["raw"])
                    raw_fields["line"] = raw
                    v["raw"] = _dump_raw(raw_fields)
                    v["triage_reason"] = "; ".join(x for x in (v["triage_reason"], note) if x)
                    v["triage"] = True
                try:
                    v.update(start(v))
                except (OverflowError, ValueError):  # e.g. received_at in year 9999
                    _out_of_range(v, now)
                    v.update(start(v))
                v.update(fixed)
                row = _row_of(v)
                if sqlite:
                    row = _sqlite_row(row)
                detail = (
                    f'{{"external_id":{_json_str(v["external_id"])}{mid}'
                    f'{_json_str(v["source"])},"triage":{"true" if v["triage"] else "false"}}}'
                )
                out.append(("case", n, row, detail, _json_str(detail)))
                continue
        except Exception as e:  # never crash on input; name it instead
            res = Rejected(f"could not be read: {type(e).__name__}: {e}")
        out.append(("reject", n, res.reason, _raw_text(raw, value, nul_ok)))
    return out


_FIXED = {
    "status": "new",
    "escalation_level": 0,
    "supervised": False,
    "version": 1,
}
_row_of = operator.itemgetter(*ROW_COLUMNS)


def _out_of_range(v: dict[str, Any], now: datetime) -> None:
    raw_fields = json.loads(v["raw"])
    raw_fields.setdefault("received_at", v["received_at"].isoformat())
    v["raw"] = _dump_raw(raw_fields)
    reason = "received_at out of range for the clocks (taken as the time of intake)"
    v["triage_reason"] = "; ".join(x for x in (v["triage_reason"], reason) if x)
    v["triage"] = True
    v["received_at"] = now


def _sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Times as SQLAlchemy's SQLite DATETIME stores a UTCDateTime: UTC text, no offset.

    The hottest loop of the worker, so `sqlite_time` is written out here; `next_check_at`
    is usually the very object of one deadline and takes its text."""
    vals = list(row)
    fmt = _SQLITE_TIME
    for i in _TIME_POSITIONS:
        t = vals[i]
        if t is not None:
            if t.tzinfo is not UTC:
                t = t.astimezone(UTC)
            vals[i] = fmt % (t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond)
    t = row[_NEXT_CHECK_AT]
    if t is not None:
        for i in _DUE_POSITIONS:
            if row[i] is t:
                vals[_NEXT_CHECK_AT] = vals[i]
                break
        else:
            vals[_NEXT_CHECK_AT] = sqlite_time(t)
    return tuple(vals)


class _Tally:
    """Counts across batches, and the keys this run already took (in-input duplicates)."""

    def __init__(self) -> None:
        self.accepted = self.duplicate = self.rejected = 0
        self.errors: list[tuple[int | None, str]] = []
        self.seen: set[tuple[str, str]] = set()

    def result(self) -> IngestResult:
        return IngestResult(self.accepted, self.duplicate, self.rejected, self.errors)


@contextmanager
def _no_gc() -> Iterator[None]:
    """Bulk loading allocates millions of short-lived containers and no cycles: the cyclic
    collector would rescan every live object again and again (a third of the run time)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _fork_is_safe() -> bool:
    return (
        sys.platform == "linux"
        and (os.cpu_count() or 1) > 1
        and threading.active_count() == 1
        and "fork" in multiprocessing.get_all_start_methods()
    )


# ---- parallel preparation ----------------------------------------------------------------
_WORKER_CTX: _Context | None = None


def _prepare_remote(job: tuple[int, list[bytes | str], datetime]) -> list[_Prepared]:
    n0, lines, now = job
    assert _WORKER_CTX is not None
    return _prepare(replace(_WORKER_CTX, now=now), _parse_lines(lines, n0))


def _worker_init() -> None:
    gc.disable()


def _run_parallel(
    store: Store,
    ctx: _Context,
    first: list[bytes | str],
    rest: Iterator[bytes | str],
    origin: str,
    actor: Actor,
    batch: int,
    workers: int,
) -> IngestResult:
    """Workers parse and validate batches ahead while this process writes them in order."""
    global _WORKER_CTX
    _WORKER_CTX = ctx  # inherited by the forked workers
    tally = _Tally()
    mp = multiprocessing.get_context("fork")
    window = workers * 2 + 1  # batches in flight: bounded memory on any input size
    try:
        with mp.Pool(workers, initializer=_worker_init) as pool:
            pending: deque[tuple[_Context, Any]] = deque()
            n0 = 1
            chunk = first
            while chunk or pending:
                while chunk and len(pending) < window:
                    c = ctx.fresh()
                    job = (n0, chunk, c.now)
                    pending.append((c, pool.apply_async(_prepare_remote, (job,))))
                    n0 += len(chunk)
                    chunk = list(itertools.islice(rest, batch))
                c, prepared = pending.popleft()
                _commit(store, c, prepared.get(), origin, actor, tally)
    finally:
        _WORKER_CTX = None
    return tally.result()


def _raw_text(raw: str | bytes | None, value: Any, nul_ok: bool) -> str:
    """The dead letter's copy of the input, storable by the database."""
    if type(raw) is bytes:  # a line orjson read: valid UTF-8
        raw = _strip_eol(raw.decode("utf-8"))
    if raw is None:
        try:
            raw = json.dumps(value, ensure_ascii=False, default=str)
        except Exception:  # e.g. a cyclic structure from a feed adapter
            raw = repr(value)
    pat = _SURROGATES if nul_ok else _UNSTORABLE_PG
    return _escape_unstorable(raw, nul_ok) if pat.search(raw) else raw


def _commit(
    store: Store,
    ctx: _Context,
    prepared: list[_Prepared],
    origin: str,
    actor: Actor,
    tally: _Tally,
) -> None:
    """Insert new cases, dead letters and their record entries in one transaction (the
    record's head lock serialises concurrent ingests, so the key check inside it cannot
    race; the unique constraint is the last guard: on a clash the batch is tried again)."""
    for attempt in range(3):
        try:
            added, dup, keys = _insert(store, ctx, prepared, origin, actor, tally.seen)
            break
        except IntegrityError:
            if attempt == 2:
                raise
    tally.seen.update(keys)
    tally.accepted += added
    tally.duplicate += dup
    for p in prepared:
        if p[0] == "reject":
            tally.rejected += 1
            tally.errors.append((p[1], p[2]))


def _insert(
    store: Store,
    ctx: _Context,
    prepared: list[_Prepared],
    origin: str,
    actor: Actor,
    seen: set[tuple[str, str]],
) -> tuple[int, int, set[tuple[str, str]]]:
    """One transaction; returns (accepted, duplicate, keys added).

    Rows go to the driver's executemany with ids handed out in advance (we hold the write
    lock), bypassing SQLAlchemy's per-value processing: that is what makes 20k records/s.
    """
    now = ctx.now
    cases = [p for p in prepared if p[0] == "case"]
    bad = [p for p in prepared if p[0] == "reject"]
    with store.write() as (conn, head):
        sql = _Sql(conn)
        existing = sql.existing({(p[2][_SOURCE_AT], p[2][_EXTERNAL_AT]) for p in cases})
        fresh: list[_Prepared] = []
        batch_keys: set[tuple[str, str]] = set()
        dup = 0
        for p in cases:
            r = p[2]
            k = (r[_SOURCE_AT], r[_EXTERNAL_AT])
            if k in existing or k in seen or k in batch_keys:
                dup += 1
                continue
            batch_keys.add(k)
            fresh.append(p)
        entries: list[tuple[str, int | None, str, str]] = []
        if fresh:
            head.change_seq += 1
            seq = head.change_seq
            ids = sql.new_ids(len(fresh))
            sql.insert_tuples(
                "cases",
                INSERT_COLUMNS,
                [p[2] + (case_id, seq) for p, case_id in zip(fresh, ids, strict=True)],
            )
            entries = [
                ("ingest", case_id, p[3], p[4]) for p, case_id in zip(fresh, ids, strict=True)
            ]
        if bad:
            conn.execute(
                insert(DEAD),
                [
                    dict(at=now, origin=origin, line_no=n, reason=why, raw=raw)
                    for _, n, why, raw in bad
                ],
            )
            for _, n, why, _ in bad:
                detail = dump_detail({"origin": origin, "line": n, "reason": why})
                entries.append(("reject", None, detail, encode_detail(detail)))
        if entries:
            audit = chain_rows(
                head,
                now,
                actor.operator,
                actor.terminal,
                entries,
                stored_at=sqlite_time(now) if ctx.sqlite else None,
            )
            sql.insert_tuples("audit", AUDIT_ROW, audit)
    return len(fresh), dup, batch_keys


_SQLITE_TIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # the fastest spelling (measured)


def sqlite_time(t: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DATETIME stores a UTCDateTime (UTC, no offset)."""
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    return _SQLITE_TIME % (
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.microsecond,
    )


class _Sql:
    """The few statements bulk intake sends straight to the driver, per dialect."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.mark = "?" if self.sqlite else "%s"

    def existing(self, keys: set[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of `keys` the store already holds: per source, a few hundred ids a query,
        so that the unique (source, external_id) index answers (row-value IN does not).

        On SQLite one range query per source comes first: feeds number their reports in
        order, so a batch's ids mostly span a range the store holds none of, or only these
        (a re-sent file). When the range holds more than a few ids besides, the IN queries
        answer instead. (PostgreSQL compares text by its collation, not as Python does.)"""
        by_source: dict[str, list[str]] = {}
        for src, ext in keys:
            by_source.setdefault(src, []).append(ext)
        out: set[tuple[str, str]] = set()
        step = 500
        for src, exts in by_source.items():
            if self.sqlite:
                # BINARY collation compares UTF-8 bytes: the order of code points, as min/max.
                limit = 2 * len(exts) + 8
                got = [
                    r[0]
                    for r in self.conn.exec_driver_sql(
                        "SELECT external_id FROM cases WHERE source = ? "
                        "AND external_id BETWEEN ? AND ? LIMIT ?",
                        (src, min(exts), max(exts), limit),
                    )
                ]
                if len(got) < limit:  # the whole range: every key the store has in it
                    if got:
                        wanted = set(exts)
                        out.update((src, x) for x in got if x in wanted)
                    continue
            for i in range(0, len(exts), step):
                part = exts[i : i + step]
                q = (
                    f"SELECT external_id FROM cases WHERE source = {self.mark} "
                    f"AND external_id IN ({','.join([self.mark] * len(part))})"
                )
                out.update((src, r[0]) for r in self.conn.exec_driver_sql(q, (src, *part)))
        return out

    def new_ids(self, n: int) -> list[int]:
        if self.sqlite:
            top = self.conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM cases").scalar()
            return list(range(int(top or 0) + 1, int(top or 0) + 1 + n))
        q = "SELECT nextval(pg_get_serial_sequence('cases', 'id')) FROM generate_series(1, %s)"
        return [int(r[0]) for r in self.conn.exec_driver_sql(q, (n,))]

    def insert_tuples(self, table: str, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        q = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([self.mark] * len(cols))})"
        self.conn.exec_driver_sql(q, rows)
