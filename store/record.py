"""The record (执法全过程记录): an append-only, hash-chained log of every action.

Each entry's hash covers its content and the previous entry's hash, so editing or deleting
a row behind the application's back breaks the chain at that row. Appends lock the single
`audit_head` row, which serialises them across processes and terminals.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert, select, update
from tafang.store.models import AuditEntry, ChainHead

AUDIT = AuditEntry.__table__
HEAD = ChainHead.__table__
# Columns of the tuples `chain_rows` returns, in order.
AUDIT_ROW = (
    "seq",
    "at",
    "operator",
    "terminal",
    "action",
    "case_id",
    "detail",
    "prev_hash",
    "hash",
)

# A string as json.dumps(..., ensure_ascii=False) writes it (the C encoder, quotes included).
_json_str = json.encoder.encode_basestring
_sha256 = hashlib.sha256


@dataclass
class Head:
    """The chain head as locked for one transaction; appends advance it in memory."""

    seq: int
    hash: str
    change_seq: int


@dataclass(frozen=True)
class Entry:
    at: datetime
    operator: str
    terminal: str
    action: str
    case_id: int | None
    detail: dict[str, Any] | str  # a str is taken as already written by `dump_detail`


def lock_head(conn: Connection) -> Head:
    """Lock the head row for this transaction (FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already holds the write lock)."""
    q = select(HEAD.c.seq, HEAD.c.hash, HEAD.c.change_seq).where(HEAD.c.id == 1)
    if conn.dialect.name != "sqlite":
        q = q.with_for_update()
    row = conn.execute(q).one()
    return Head(row.seq, row.hash, row.change_seq)


def save_head(conn: Connection, head: Head) -> None:
    conn.execute(
        update(HEAD)
        .where(HEAD.c.id == 1)
        .values(seq=head.seq, hash=head.hash, change_seq=head.change_seq)
    )


def digest(
    seq: int,
    prev: str,
    at: datetime,
    operator: str,
    terminal: str,
    action: str,
    case_id: int | None,
    detail: str,
) -> str:
    """SHA-256 of the JSON array [seq, prev, at, operator, terminal, action, case_id, detail]
    (compact separators, non-ASCII as is, UTF-8 with lone surrogates passed through)."""
    if (
        type(seq) is int
        and (case_id is None or type(case_id) is int)
        and type(prev) is str
        and type(operator) is str
        and type(terminal) is str
        and type(action) is str
        and type(detail) is str
    ):
        # The same text json.dumps writes, put together without its per-call overhead.
        body = (
            f"[{seq},{_json_str(prev)},{_json_str(at.isoformat(timespec='microseconds'))},"
            f"{_json_str(operator)},{_json_str(terminal)},{_json_str(action)},"
            f"{'null' if case_id is None else case_id},{_json_str(detail)}]"
        )
    else:
        body = _digest_body(seq, prev, at, operator, terminal, action, case_id, detail)
    return _sha256(body.encode("utf-8", "surrogatepass")).hexdigest()


def _digest_body(
    seq: int,
    prev: str,
    at: datetime,
    operator: str,
    terminal: str,
    action: str,
    case_id: int | None,
    detail: str,
) -> str:
    """The definition of the hashed text (`digest` writes the same text faster)."""
    return json.dumps(
        [
            seq,
            prev,
            at.isoformat(timespec="microseconds"),
            operator,
            terminal,
            action,
            case_id,
            detail,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )


def dump_detail(detail: dict[str, Any] | str) -> str:
    """An entry's detail as stored and hashed; a str is taken as already dumped."""
    if type(detail) is str:
        return detail
    return json.dumps(
        detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )


def encode_detail(detail: str) -> str:
    """A dumped detail as it appears inside the hashed text (a JSON string literal). Costly
    for long details, so bulk writers compute it ahead (intake: in its worker process)."""
    return _json_str(detail)


def rows_for(head: Head, entries: Iterable[Entry]) -> list[dict[str, Any]]:
    """Chain `entries` after `head` (advancing it) and return rows ready to insert."""
    rows = []
    for e in entries:
        seq = head.seq + 1
        detail = dump_detail(e.detail)
        at = e.at.astimezone(UTC)  # stored and re-read as UTC: hash what is re-read
        h = digest(seq, head.hash, at, e.operator, e.terminal, e.action, e.case_id, detail)
        rows.append(
            dict(
                seq=seq,
                at=at,
                operator=e.operator,
                terminal=e.terminal,
                action=e.action,
                case_id=e.case_id,
                detail=detail,
                prev_hash=head.hash,
                hash=h,
            )
        )
        head.seq, head.hash = seq, h
    return rows


def chain_rows(
    head: Head,
    at: datetime,
    operator: str,
    terminal: str,
    entries: Iterable[tuple[str, int | None, str, str]],
    stored_at: Any = None,
) -> list[tuple[Any, ...]]:
    """`rows_for` for many entries made at one time by one actor (bulk intake), as tuples in
    `AUDIT_ROW` order. Each entry is (action, case_id, detail, encode_detail(detail)), the
    detail already dumped; `stored_at` is the `at` column's value (default: `at` in UTC,
    which is what is hashed either way). The same chain and digests as `rows_for`."""
    at = at.astimezone(UTC)
    if stored_at is None:
        stored_at = at
    # Every digest body is "[seq,prev," + mid + "action,case_id,detail]".
    mid = (
        f"{_json_str(at.isoformat(timespec='microseconds'))},"
        f"{_json_str(operator)},{_json_str(terminal)},"
    )
    actions: dict[str, str] = {}
    rows = []
    seq, prev = head.seq, head.hash
    if type(seq) is not int or type(prev) is not str:
        raise TypeError("the chain head must hold an int seq and a str hash")
    for action, case_id, detail, encoded in entries:
        act = actions.get(action)
        if act is None:
            act = actions[action] = mid + _json_str(action)
        seq += 1
        if case_id is None:
            cid = "null"
        elif type(case_id) is int:
            cid = case_id
        else:
            raise TypeError(f"case_id must be an int or None, not {type(case_id).__name__}")
        body = f"[{seq},{_json_str(prev)},{act},{cid},{encoded}]"
        h = _sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
        rows.append((seq, stored_at, operator, terminal, action, case_id, detail, prev, h))
        prev = h
    head.seq, head.hash = seq, prev
    return rows


def append(conn: Connection, head: Head, entries: Iterable[Entry]) -> None:
    rows = rows_for(head, entries)
    if rows:
        conn.execute(insert(AUDIT), rows)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    bad_seq: int | None = None
    reason: str = ""
    anchor: bool | None = None  # the anchor matched / did not; None: none given or not reached


def record_head(engine: Engine) -> tuple[int, str]:
    """(seq, hash) of the last entry: the daemon logs it as an anchor outside the database."""
    with engine.connect() as conn:
        row = conn.execute(select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)).one()
    return row.seq, row.hash


def verify(
    engine: Engine,
    batch: int = 20_000,
    anchor: tuple[int, str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Verdict:
    """Walk the whole chain; report the first entry that was edited, deleted or inserted.

    A chain alone cannot tell a cleanly cut tail (entries deleted and the head rewound); an
    `anchor` (seq, hash) kept outside the database — the daemon logs one a minute — can.
    `progress(checked, total)` is called once per batch of entries."""
    verdict = _walk(engine, batch, progress)
    if not verdict.ok or anchor is None:
        return verdict
    seq, digest = anchor
    with engine.connect() as conn:
        kept = conn.execute(select(AUDIT.c.hash).where(AUDIT.c.seq == seq)).scalar_one_or_none()
    if kept is None:
        return Verdict(
            False,
            verdict.checked,
            seq,
            f"entry {seq} of the anchor is gone: the "
            f"record was cut back to {verdict.checked} entries",
            anchor=False,
        )
    if kept != digest:
        return Verdict(
            False,
            verdict.checked,
            seq,
            f"entry {seq} does not match the anchor: the record was rewritten from there on",
            anchor=False,
        )
    return replace(verdict, anchor=True)


def _walk(engine: Engine, batch: int, progress: Callable[[int, int], None] | None) -> Verdict:
    prev, expected, checked = "", 1, 0
    with engine.connect() as conn:
        head = conn.execute(select(HEAD.c.seq, HEAD.c.hash).where(HEAD.c.id == 1)).first()
        if head is None:
            return Verdict(False, 0, None, "the record's head row (audit_head) was deleted")
        last = 0
        while True:
            try:
                rows = conn.execute(
                    select(AUDIT).where(AUDIT.c.seq > last).order_by(AUDIT.c.seq).limit(batch)
                ).all()
            except (ValueError, TypeError):  # a value edited into something unreadable
                bad = _first_unreadable(conn, last)
                return Verdict(
                    False, checked, bad, f"entry {bad} was altered: a stored value is unreadable"
                )
            if not rows:
                break
            if progress is not None:
                progress(checked, head.seq)
            for r in rows:
                if r.seq != expected:
                    return Verdict(
                        False,
                        checked,
                        expected,
                        f"entry {expected} is missing (next present is {r.seq})",
                    )
                if r.prev_hash != prev:
                    return Verdict(
                        False, checked, r.seq, f"entry {r.seq} does not link to entry {r.seq - 1}"
                    )
                h = digest(
                    r.seq, r.prev_hash, r.at, r.operator, r.terminal, r.action, r.case_id, r.detail
                )
                if h != r.hash:
                    return Verdict(
                        False,
                        checked,
                        r.seq,
                        f"entry {r.seq} ({r.action}) was altered: its content does "
                        "not match its hash",
                    )
                prev, expected, checked, last = r.hash, r.seq + 1, checked + 1, r.seq
        if progress is not None:
            progress(checked, head.seq)
        if head.seq != checked or head.hash != prev:
            return Verdict(
                False,
                checked,
                checked + 1,
                f"the record ends at entry {checked} but {head.seq} were written: "
                f"entries {checked + 1}..{head.seq} were deleted",
            )
    return Verdict(True, checked)


def _first_unreadable(conn: Connection, after: int) -> int | None:
    for seq in conn.execute(
        select(AUDIT.c.seq).where(AUDIT.c.seq > after).order_by(AUDIT.c.seq)
    ).scalars():
        try:
            conn.execute(select(AUDIT).where(AUDIT.c.seq == seq)).one()
        except (ValueError, TypeError):
            return seq
    return None


def entries_for_case(conn: Connection, case_id: int) -> list[Any]:
    return list(conn.execute(select(AUDIT).where(AUDIT.c.case_id == case_id).order_by(AUDIT.c.seq)))
