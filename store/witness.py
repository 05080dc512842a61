"""Witnesses of the record outside the database: anchors appended to a file, and their check.

The daemon writes the record's head — entry `seq` and its MAC (its hash on a plain chain) —
every `[record] witness_interval` seconds to an append-only file (opened O_APPEND, fsynced),
and to the centre's robot through the outbox. A witness line is one JSON object:

    {"at": "…Z", "seq": 1234, "mac": "<the entry's MAC>", "key_id": "…", "keyed_from": 1,
     "sig": "<HMAC of the line's fields under the record key>"}

`key_id`, `keyed_from` and `sig` are null on a plain chain. `audit verify --witness FILE`
checks every line against the record: the entry must exist (else the entries after the
store's head were deleted) and carry the same MAC (else the record was rewritten from
there); with the key, a line's `sig` must be the key's, so a forged line is itself seen.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, select
from tafang.store.record import AUDIT, read_head
from tafang.store.record_key import RecordKey

MAX_LINE = 4096  # a longer line is not an anchor (the file is read, never trusted)


@dataclass(frozen=True)
class Anchor:
    at: str
    seq: int
    mac: str
    key_id: str | None = None
    keyed_from: int | None = None
    sig: str | None = None
    line: int = 0  # line number in the witness file (for the message)

    def signed_text(self) -> bytes:
        return f"tafang anchor {self.at} {self.seq} {self.mac} {self.keyed_from}".encode()


def current_anchor(conn: Connection, key: RecordKey | None, now: datetime) -> Anchor | None:
    """The record's head as an anchor, signed with `key` when the record is keyed by it."""
    head = read_head(conn)
    if head is None:
        return None
    at = now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    a = Anchor(at, head.seq, head.hash, head.key_id, head.keyed_from)
    if key is not None and head.key_id == key.id:
        a = Anchor(a.at, a.seq, a.mac, a.key_id, a.keyed_from, key.mac(a.signed_text()))
    return a


def anchor_line(a: Anchor) -> str:
    return json.dumps(
        {
            "at": a.at,
            "seq": a.seq,
            "mac": a.mac,
            "key_id": a.key_id,
            "keyed_from": a.keyed_from,
            "sig": a.sig,
        },
        separators=(",", ":"),
    )


def append_anchor(path: str | Path, a: Anchor) -> None:
    """One line appended and on disk before returning (O_APPEND: never over earlier lines)."""
    p = Path(path).expanduser()
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (anchor_line(a) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


class WitnessError(Exception):
    """The witness file cannot be read, or a line is not an anchor (names the line)."""


def read_anchors(path: str | Path) -> Iterator[Anchor]:
    """The anchors of a witness file, in order; a torn last line (a crash mid-write) is
    skipped, any other unreadable line raises WitnessError naming it."""
    try:
        f = Path(path).expanduser().open("rb")
    except OSError as e:
        raise WitnessError(f"witness file {path}: cannot read: {e.strerror or e}") from e
    with f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                yield _anchor(raw, n)
            except (ValueError, TypeError, KeyError) as e:
                if not raw.endswith(b"\n"):
                    return  # the last line, torn
                raise WitnessError(f"witness file {path}, line {n}: not an anchor ({e})") from e


def _anchor(raw: bytes, n: int) -> Anchor:
    if len(raw) > MAX_LINE:
        raise ValueError(f"longer than {MAX_LINE} bytes")
    d = json.loads(raw)
    seq, mac = d["seq"], d["mac"]
    if type(seq) is not int or type(mac) is not str:
        raise TypeError("seq must be an integer and mac a string")
    kf = d.get("keyed_from")
    return Anchor(str(d["at"]), seq, mac, d.get("key_id"), kf, d.get("sig"), n)


@dataclass(frozen=True)
class WitnessCheck:
    anchors: int  # anchors checked
    bad_seq: int | None = None
    reason: str = ""
    last: Anchor | None = None  # the latest anchor (highest seq)

    @property
    def ok(self) -> bool:
        return self.bad_seq is None


def check_witness(
    conn: Connection, anchors: Iterator[Anchor], key: RecordKey | None
) -> WitnessCheck:
    """Every anchor against the record (module doc); the first problem, by line."""
    head = read_head(conn)
    head_seq = head.seq if head is not None else 0
    n, last, batch = 0, None, []
    for a in anchors:
        n += 1
        if last is None or a.seq >= last.seq:
            last = a
        bad = _forged(a, key)
        if bad:
            return WitnessCheck(n, a.seq, bad, last)
        batch.append(a)
        if len(batch) >= 1000:
            bad_check = _against(conn, batch, head_seq)
            if bad_check:
                return WitnessCheck(n, *bad_check, last=last)
            batch = []
    bad_check = _against(conn, batch, head_seq) if batch else None
    if bad_check:
        return WitnessCheck(n, *bad_check, last=last)
    return WitnessCheck(n, last=last)


def _forged(a: Anchor, key: RecordKey | None) -> str:
    """Why a keyed anchor is not the key's (a forged or edited witness line), or ""."""
    if key is None or a.key_id is None:
        return ""
    if a.key_id != key.id:
        return f"witness line {a.line} names key id {a.key_id}, not this key's ({key.id})"
    if a.sig != key.mac(a.signed_text()):
        return f"witness line {a.line} (entry {a.seq}) is not signed by the record key: forged"
    return ""


def _against(conn: Connection, batch: list[Anchor], head_seq: int) -> tuple[int, str] | None:
    """The first anchor of `batch` the record does not bear out, as (seq, reason)."""
    seqs = sorted({a.seq for a in batch if a.seq > 0})
    kept = dict(conn.execute(select(AUDIT.c.seq, AUDIT.c.hash).where(AUDIT.c.seq.in_(seqs))).all())
    for a in batch:
        if a.seq == 0:
            continue
        if a.seq > head_seq and a.seq not in kept:
            return head_seq + 1, (
                f"entries {head_seq + 1}..{a.seq} are missing: the witness saw entry {a.seq} at "
                f"{a.at} (line {a.line}) but the record ends at entry {head_seq}"
            )
        if a.seq not in kept:
            return a.seq, f"entry {a.seq} witnessed at {a.at} (line {a.line}) is gone"
        if kept[a.seq] != a.mac:
            return a.seq, (
                f"entry {a.seq} does not match the witness anchor of {a.at} (line {a.line}): "
                "the record was rewritten from there on"
            )
    return None
