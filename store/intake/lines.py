"""Lines of input → parsed values (or the reason a line cannot be read), never raising.

orjson reads plain lines; json reads anything orjson might read differently. A line's raw
text is kept for the dead letter (or `raw["line"]` when it held bytes that are not UTF-8).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from tafang.store.intake.limits import MAX_LINE_BYTES
from tafang.store.intake.outcome import Rejected
from tafang.store.intake.reasons import json_reason, too_long
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


def parse_lines(lines: Iterable[bytes | str], first: int = 1) -> Iterator[Item]:
    """Decode and parse each non-blank line; never raises for any content."""
    fast = orjson is not None
    for n, line in enumerate(lines, first):
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
                item = _undecodable(n, b, e)
                if item is not None:
                    yield item
                continue
            size = len(b)
            scan = "\\u" in text
        else:
            text = str(line)
            size = len(text)
            scan = "\\u" in text or SURROGATES.search(text) is not None
        if not text.strip():
            continue
        if size > MAX_LINE_BYTES:
            yield n, strip_eol(text), Rejected(too_long(size)), None, True
            continue
        try:
            value = json.loads(text.lstrip("\ufeff") if text[:1] == "\ufeff" else text)
        except Exception as pe:  # any content must become a reason
            yield n, strip_eol(text), Rejected(json_reason(pe)), None, True
            continue
        yield n, strip_eol(text), value, None, scan


def _undecodable(n: int, b: bytes, e: UnicodeDecodeError) -> Item | None:
    """A line holding bytes that are not UTF-8: read with U+FFFD in their place and flagged
    (the note), or rejected; kept with each bad byte as `\\xNN`. None for a blank line."""
    kept = strip_eol(b.decode("utf-8", "backslashreplace"))
    if not kept.strip():
        return None
    text = b.decode("utf-8", "replace")
    if len(b) > MAX_LINE_BYTES:
        return n, kept, Rejected(too_long(len(b))), None, True
    try:
        value = json.loads(text.lstrip("\ufeff"))
    except Exception as pe:  # any content must become a reason
        reason = f"not UTF-8 text (bad byte at column {e.start + 1}); {json_reason(pe)}"
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
