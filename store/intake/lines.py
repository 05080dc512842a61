"""Lines of input → parsed values (or the reason a line cannot be read), never raising.

orjson reads plain lines; json reads anything orjson might read differently. A line's raw
text is kept for the dead letter (or `raw["line"]` when it held bytes that are not UTF-8).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from tafang.store.intake.bounded import HEAD, Oversized
from tafang.store.intake.limits import LINE_BYTES_CEILING, MAX_DEPTH
from tafang.store.intake.outcome import Rejected
from tafang.store.intake.reasons import json_reason, too_deep, too_long
from tafang.store.intake.unstorable import SURROGATES, UNSTORABLE_PG, escape_unstorable

try:  # a parser four times faster than json's; intake works without it
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency
    orjson = None

# One parsed input item: (line_no, raw text or None, parsed value or a Rejected, note,
# whether the text may hold NUL or lone surrogates). The raw text may still be the line's
# UTF-8 bytes, end of line included (see `raw_text`): it is decoded only when kept.
Item = tuple[int | None, str | bytes | None, Any, str | None, bool]
_SLOW = object()


class _Blank:
    __slots__ = ()

    def __repr__(self) -> str:
        return "BLANK"


BLANK: Any = _Blank()  # the value of a blank line's item (see `is_blank`)
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
        if t is str:  # most values: tested first (measured)
            continue
        if t is float:
            if not -_BIG < x < _BIG:
                return _SLOW
        elif t is dict or t is list:
            return _SLOW
    return value


def parse_lines(lines: Iterable[Any], first: int = 1) -> Iterator[Item]:
    """Decode and parse each line; never raises for any content. Every line gives one item:
    a blank one (`is_blank`) gives `BLANK` as its value, so that it is counted."""
    fast = orjson is not None
    for n, line in enumerate(lines, first):
        if isinstance(line, bytes | bytearray | memoryview):
            b = bytes(line)
            if fast and len(b) <= LINE_BYTES_CEILING and b[:1] != b"\xef":  # no BOM
                value = _fast_loads(b)
                if value is not _SLOW:  # valid UTF-8 (orjson checks), a dict: as below
                    yield n, b, value, None, b"\\u" in b
                    continue
            try:
                text = b.decode("utf-8")
            except UnicodeDecodeError as e:
                yield _undecodable(n, b, e)
                continue
            size = len(b)
            scan = "\\u" in text
        elif isinstance(line, Oversized):
            yield _oversized(n, line)
            continue
        else:
            text = str(line)
            size = len(text)
            scan = "\\u" in text or SURROGATES.search(text) is not None
        if is_blank(text):
            yield n, None, BLANK, None, False
            continue
        if size > LINE_BYTES_CEILING:
            yield _oversized(n, Oversized(size, LINE_BYTES_CEILING, text[:HEAD]))
            continue
        value = parse_json(text.lstrip("\ufeff") if text[:1] == "\ufeff" else text)
        yield n, strip_eol(text), value, None, scan


def is_blank(text: str) -> bool:
    """Nothing but white space as `str.isspace` knows it (which includes \\x1c–\\x1f, NEL
    and U+3000), or a byte-order mark: counted as blank, not read as a record."""
    if not text or text.isspace():
        return True
    return text[:1] == "\ufeff" and (len(text) == 1 or text.lstrip("\ufeff").isspace())


def parse_json(text: str, depth: int = MAX_DEPTH) -> Any:
    """json.loads' reading of a line, or a `Rejected` naming why not; never raises.

    Two limits make the answer the same on every path (in this process, in a forked worker,
    from a pipe), whatever the call stack: JSON nested deeper than `MAX_DEPTH` is rejected
    before parsing (json's own limit is the interpreter's recursion limit, which depends on
    how deep the caller already is), and an integer beyond Python's int-string limit (4,300
    digits; converting one costs quadratic time) is kept as its digits, a string. A body
    that wraps records (a feed's answer, an API's array) may allow a few more levels."""
    if _deeper_than(text, depth):
        return Rejected(too_deep(depth))
    try:
        return json.loads(text, parse_int=_int)
    except Exception as e:  # any content must become a reason
        return Rejected(json_reason(e))


def _int(digits: str) -> int | str:
    try:
        return int(digits)
    except ValueError:  # beyond sys.get_int_max_str_digits(): kept, as text
        return digits


_STRINGS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = re.compile(r"[^\[\]{}]+")


def _deeper_than(text: str, limit: int) -> bool:
    """Whether the JSON text opens more than `limit` arrays or objects at once (brackets
    inside strings do not count). Cheap unless the line has more than `limit` brackets."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for ch in _NOT_BRACKETS.sub("", _STRINGS.sub("", text)):
        if ch == "[" or ch == "{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def shallow(record: Any) -> Any:
    """A record already parsed (a feed's) as intake takes it, or a `Rejected` if it nests
    deeper than `MAX_DEPTH`, as a line would be (walked without recursion)."""
    stack = [(record, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > MAX_DEPTH:
            return Rejected(too_deep())
        if type(v) is dict or isinstance(v, dict):
            stack.extend((x, depth + 1) for x in v.values() if isinstance(x, dict | list))
        elif isinstance(v, list):
            stack.extend((x, depth + 1) for x in v if isinstance(x, dict | list))
    return record


def _oversized(n: int, o: Oversized) -> Item:
    """A line over the length limit: rejected, its first bytes kept with its size."""
    head = o.head if isinstance(o.head, str) else o.head.decode("utf-8", "backslashreplace")
    kept = f"{head}…({o.size} bytes; not kept)"
    return n, kept, Rejected(too_long(o.size, o.limit)), None, True


def _undecodable(n: int, b: bytes, e: UnicodeDecodeError) -> Item:
    """A line holding bytes that are not UTF-8: read with U+FFFD in their place and flagged
    (the note), or rejected; kept with each bad byte as `\\xNN`."""
    kept = strip_eol(b.decode("utf-8", "backslashreplace"))
    if is_blank(kept):
        return n, None, BLANK, None, False
    text = b.decode("utf-8", "replace")
    if len(b) > LINE_BYTES_CEILING:
        return _oversized(n, Oversized(len(b), LINE_BYTES_CEILING, b[:HEAD]))
    value = parse_json(text.lstrip("\ufeff"))
    if isinstance(value, Rejected):
        reason = f"not UTF-8 text (bad byte at column {e.start + 1}); {value.reason}"
        return n, kept, Rejected(reason), None, True
    why = _bad_bytes_in_key(b, value)
    if why is not None:
        return n, kept, Rejected(why), None, True
    bad = text.count("\ufffd") - kept.count("\ufffd")
    note = (
        f"line was not valid UTF-8 ({bad} invalid byte sequence(s) replaced by U+FFFD; "
        "the line is kept in raw)"
    )
    return n, kept, value, note, "\\u" in text


def _bad_bytes_in_key(b: bytes, value: Any) -> str | None:
    """Why the line is rejected if undecodable bytes fall in `source` or `external_id`.

    Replaced by U+FFFD, `bad\\xff` and `bad\\xfe` would be one key and the second report a
    "duplicate". Parsed again with each bad byte as its own surrogate, a key that differs from
    the U+FFFD parse held bad bytes (the two texts differ only there)."""
    if type(value) is not dict:
        return None
    exact = parse_json(b.decode("utf-8", "surrogateescape").lstrip("\ufeff"))
    if type(exact) is not dict:  # cannot happen (only string contents differ); never guess
        return "source or external_id may hold bytes that are not UTF-8"
    for name in ("source", "external_id"):
        if exact.get(name) != value.get(name):
            return f"{name} holds bytes that are not UTF-8"
    return None


def strip_eol(s: str) -> str:
    return s[:-2] if s.endswith("\r\n") else s[:-1] if s.endswith("\n") else s


def raw_text(raw: str | bytes | None, value: Any, nul_ok: bool) -> str:
    """The dead letter's copy of the input, storable by the database."""
    if type(raw) is bytes:  # a line orjson read: valid UTF-8
        raw = strip_eol(raw.decode("utf-8"))
    if raw is None:
        try:
            raw = json.dumps(value, ensure_ascii=False, default=str)
        except Exception:  # e.g. a cyclic structure from a feed adapter
            raw = repr(value)
    pat = SURROGATES if nul_ok else UNSTORABLE_PG
    return escape_unstorable(raw, nul_ok) if pat.search(raw) else raw
