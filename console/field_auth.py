"""How a field request is signed and checked (`tafang serve`): HMAC-SHA256 with the caller's key.

The caller sends four headers: `X-Tafang-Caller` (an officer code such as `2-03`, or
`feed:<channel>` for a feed pushing intake), `X-Tafang-Timestamp` (Unix seconds),
`X-Tafang-Request-Id` (1–64 characters of letters, digits and `._:-`, unique per request:
a retry sends the same one) and `X-Tafang-Signature`, the hex HMAC-SHA256, keyed by the
caller's key, of

    METHOD \\n PATH \\n TIMESTAMP \\n REQUEST_ID \\n BODY

(PATH with its query string, BODY the raw bytes). A timestamp more than `MAX_AGE` seconds
from the server's clock is refused, so a captured request cannot be replayed later; within
that window the request id answers a replay with the first answer, doing nothing again.

The key of caller C is the secret `TAFANG_FIELD_KEY_<C>` (C upper-cased, every character
other than a letter or digit as `_`: `2-03` → `TAFANG_FIELD_KEY_2_03`), read like the
robots' secrets: the environment, else the systemd credential of that name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

MAX_AGE = 300  # seconds: older (or further ahead) timestamps are refused
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
HEADERS = ("x-tafang-caller", "x-tafang-timestamp", "x-tafang-request-id", "x-tafang-signature")


def key_name(caller: str) -> str:
    """The secret's name holding a caller's key."""
    return "TAFANG_FIELD_KEY_" + re.sub(r"[^A-Za-z0-9]", "_", caller).upper()


def signature(
    key: str, method: str, path: str, timestamp: str, request_id: str, body: bytes
) -> str:
    """The hex HMAC-SHA256 of a request (see the module's doc)."""
    head = f"{method.upper()}\n{path}\n{timestamp}\n{request_id}\n".encode()
    return hmac.new(key.encode(), head + body, hashlib.sha256).hexdigest()


def signed_headers(
    key: str, caller: str, method: str, path: str, body: bytes, request_id: str, now: float
) -> dict[str, str]:
    """The headers of a signed request (for the app's side, tests and the bench)."""
    ts = str(int(now))
    return {
        "X-Tafang-Caller": caller,
        "X-Tafang-Timestamp": ts,
        "X-Tafang-Request-Id": request_id,
        "X-Tafang-Signature": signature(key, method, path, ts, request_id, body),
        "Content-Type": "application/json",
    }


@dataclass(frozen=True, slots=True)
class Signed:
    """A request whose signature checked out: who sent it and its request id."""

    caller: str
    request_id: str


class Unsigned(Exception):
    """Why a request's signature is refused (the answer's reason; 401)."""


def check(
    headers: dict[str, str],
    method: str,
    path: str,
    body: bytes,
    now: float,
    key_of: Callable[[str], str | None],
) -> Signed:
    """The caller and request id of a correctly signed, fresh request; else Unsigned."""
    missing = [h for h in HEADERS if not headers.get(h)]
    if missing:
        raise Unsigned(f"missing header {missing[0]} (see the signing scheme)")
    caller, ts, rid, sig = (headers[h] for h in HEADERS)
    if not REQUEST_ID.match(rid):
        raise Unsigned("x-tafang-request-id must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    try:
        age = now - int(ts)
    except ValueError:
        raise Unsigned("x-tafang-timestamp must be Unix seconds") from None
    if abs(age) > MAX_AGE:
        raise Unsigned(f"timestamp is {int(age)} s from the server's clock (at most {MAX_AGE})")
    key = key_of(caller)
    if not key:
        raise Unsigned(f"no key for caller {caller[:64]!r}")
    want = signature(key, method, path, ts, rid, body)
    if not hmac.compare_digest(want, sig.lower()):
        raise Unsigned("signature does not match")
    return Signed(caller, rid)
