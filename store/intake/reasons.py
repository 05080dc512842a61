"""How a reason (dead letter or triage flag) names what it found in the input."""

from __future__ import annotations

import json
from typing import Any

from tafang.store.intake.limits import MAX_DEPTH, MAX_LINE_BYTES


def show(v: Any) -> str:
    """A value as a reason shows it: quoted, escapes visible, never longer than ~60 chars."""
    s = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str)
    if len(s) > 60:
        s = s[:57] + "…"
    return repr(s)


def json_type(v: Any) -> str:
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


def too_long(size: int, limit: int = MAX_LINE_BYTES) -> str:
    return f"line is {size} bytes long; the limit is {limit}"


def too_deep(limit: int = MAX_DEPTH) -> str:
    return f"JSON nested more than {limit} levels deep; the limit is {limit}"


def json_reason(e: BaseException) -> str:
    if isinstance(e, json.JSONDecodeError):
        end = len(e.doc.rstrip())
        if e.pos >= end:  # json's position is past the text (line 2 column 1 of "…\n")
            return (
                f"not valid JSON: the line ends at column {end} before the JSON does (cut short?)"
            )
        return f"not valid JSON: {e.msg.removesuffix(' at')} at column {e.colno}"
    if isinstance(e, RecursionError):
        return "not valid JSON: nested too deeply"
    return f"not valid JSON: {e}"


def unstorable_key(name: str, ch: str) -> str:
    if ch == "\x00":
        return f"{name} holds NUL (\\u0000), which cannot be part of an identifier"
    return f"{name} holds a lone surrogate (\\u{ord(ch):04x}), which is not a character"
