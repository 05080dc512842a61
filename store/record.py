"""The record (执法全过程记录): an append-only, hash-chained log of every action.

Each entry's hash covers its content and the previous entry's hash, so editing or deleting
a row behind the application's back breaks the chain at that row. Appends lock the single
`audit_head` row, which serialises them across processes and terminals.

With a record key (store/record_key.py) the hash is HMAC-SHA256 under that key, so nobody
without it — a database owner included — can re-chain an edited record. The key is bound to
the store at the first write made with it: `audit_head.keyed_from` is the first keyed entry
(entries before it stay plain and verify as plain), `key_id` names the key and `key_mark` is
the key's MAC of `keyed_from`, so that point cannot be moved. A writer without the key (or
with another key) is refused once the record is keyed: a plain entry after `keyed_from` would
be a hole.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    String,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    update,
)
from tafang.store.db import UNREAD
from tafang.store.models import AuditEntry, ChainHead
from tafang.store.record_key import RecordKey, RecordKeyError

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
    keyed_from: int | None = None  # first keyed entry; None: the record is a plain chain
    key_id: str | None = None
    key_mark: str | None = None
    key: RecordKey | None = None  # this process's key, bound by `bind_key`
    introduced: bool = False  # this transaction binds the key to the store (save_head)
    asked: Any = None  # the answer to `lock_head`'s `ask`

    def key_for(self, seq: int) -> RecordKey | None:
        """The key entry `seq` is chained with (None: plain SHA-256)."""
        if self.keyed_from is None or seq < self.keyed_from:
            return None
        return self.key


@dataclass(frozen=True)
class Entry:
    at: datetime
    operator: str
    terminal: str
    action: str
    case_id: int | None
    detail: dict[str, Any] | str  # a str is taken as already written by `dump_detail`


_ROW_COLUMNS = tuple(AUDIT.c[name] for name in AUDIT_ROW)  # what `_walk` reads, in order
_HEAD_COLUMNS = (
    HEAD.c.seq,
    HEAD.c.hash,
    HEAD.c.change_seq,
    HEAD.c.keyed_from,
    HEAD.c.key_id,
    HEAD.c.key_mark,
)
# Built once (a reused statement keeps its SQLAlchemy cache key: no rebuilding per write).
_READ_HEAD = select(*_HEAD_COLUMNS).where(HEAD.c.id == 1)
_LOCK_HEAD = _READ_HEAD.with_for_update()
_SAVE_HEAD = update(HEAD).where(HEAD.c.id == 1)
_INSERT_ENTRIES = insert(AUDIT).inline()  # no key returned: `append` runs UNREAD


def lock_head(conn: Connection, key: RecordKey | None = None, ask: Any = None) -> Head:
    """Lock the head row for this transaction (FOR UPDATE on PostgreSQL; SQLite's
    BEGIN IMMEDIATE already holds the write lock), with `key` bound (`bind_key`).

    `ask`, a column expression, is asked in the same statement; its answer is `head.asked`
    (the sweep's leader fence: one round trip, not two)."""
    q = _READ_HEAD if conn.dialect.name == "sqlite" else _LOCK_HEAD
    if ask is not None:
        q = _asking(q, ask)
    row = conn.execute(q).one()
    head = Head(row.seq, row.hash, row.change_seq, row.keyed_from, row.key_id, row.key_mark)
    head.asked = row.asked if ask is not None else None
    bind_key(head, key)
    return head


@functools.lru_cache(maxsize=8)
def _asking(q: Any, ask: Any) -> Any:
    """The head's select with `ask` added, built once per question (the sweep asks the same
    fence in every sweep; building the statement each time cost its cache key too)."""
    return q.add_columns(ask.label("asked"))


def read_head(conn: Connection) -> Head | None:
    """The head row without a lock (verify, the witness); None if it was deleted."""
    row = conn.execute(select(*_HEAD_COLUMNS).where(HEAD.c.id == 1)).first()
    if row is None:
        return None
    return Head(row.seq, row.hash, row.change_seq, row.keyed_from, row.key_id, row.key_mark)


def bind_key(head: Head, key: RecordKey | None) -> None:
    """Decide how this transaction's entries are chained: plain while the record was never
    keyed and no key is at hand; keyed from the next entry on when a key comes for the first
    time (the migration point); refused when the record is keyed and this key is not its."""
    head.key = key
    if head.keyed_from is None:
        if key is not None:
            head.keyed_from, head.key_id = head.seq + 1, key.id
            head.key_mark, head.introduced = key.mark(head.seq + 1), True
        return
    if key is None:
        raise RecordKeyError(
            f"the record is keyed (from entry {head.keyed_from}, key id {head.key_id}) and "
            "this process has no record key: set TAFANG_RECORD_KEY_FILE, config "
            "[record] key_file or the systemd credential record-key"
        )
    if key.id != head.key_id:
        raise RecordKeyError(
            f"the record key from {key.source} (id {key.id}) is not this record's "
            f"(id {head.key_id}): entries chained with it would not verify"
        )


def save_head(conn: Connection, head: Head, notify: str | None = None) -> None:
    """Write the head back; with `notify` (a channel, PostgreSQL), announce the change_seq on
    it in the same statement (one round trip, not two: issue 15, the sweep's commit path)."""
    values: dict[str, Any] = dict(seq=head.seq, hash=head.hash, change_seq=head.change_seq)
    if head.introduced:
        values.update(keyed_from=head.keyed_from, key_id=head.key_id, key_mark=head.key_mark)
    if notify is None:
        conn.execute(_SAVE_HEAD, values, execution_options=UNREAD)
    elif head.introduced:
        saved = _SAVE_HEAD.values(values).returning(HEAD.c.change_seq).cte("saved")
        said = func.pg_notify(literal(notify), cast(saved.c.change_seq, String))
        conn.execute(select(said).select_from(saved), execution_options=UNREAD)
    else:
        params = {f"h_{k}": v for k, v in values.items()}
        conn.execute(_SAVE_HEAD_NOTIFY, {**params, "channel": notify}, execution_options=UNREAD)


def _save_and_notify() -> Any:
    """save_head's statement with the NOTIFY, built once: UPDATE … RETURNING in a CTE, then
    pg_notify(channel, change_seq) over it."""
    names = ("seq", "hash", "change_seq")
    saved = (
        _SAVE_HEAD.values({n: bindparam(f"h_{n}") for n in names})
        .returning(HEAD.c.change_seq)
        .cte("saved")
    )
    said = func.pg_notify(bindparam("channel", type_=String), cast(saved.c.change_seq, String))
    return select(said).select_from(saved)


_SAVE_HEAD_NOTIFY = _save_and_notify()


def digest(
    seq: int,
    prev: str,
    at: datetime,
    operator: str,
    terminal: str,
    action: str,
    case_id: int | None,
    detail: str,
    key: RecordKey | None = None,
) -> str:
    """SHA-256 (with `key`: HMAC-SHA256) of the JSON array [seq, prev, at, operator,
    terminal, action, case_id, detail] (compact separators, non-ASCII as is, UTF-8 with lone
    surrogates passed through)."""
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
    data = body.encode("utf-8", "surrogatepass")
    return _sha256(data).hexdigest() if key is None else key.mac(data)


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
        key = head.key_for(seq)
        h = digest(seq, head.hash, at, e.operator, e.terminal, e.action, e.case_id, detail, key)
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
        body = f"[{seq},{_json_str(prev)},{act},{cid},{encoded}]".encode("utf-8", "surrogatepass")
        key = head.key_for(seq)
        h = _sha256(body).hexdigest() if key is None else key.mac(body)
        rows.append((seq, stored_at, operator, terminal, action, case_id, detail, prev, h))
        prev = h
    head.seq, head.hash = seq, prev
    return rows


def append(conn: Connection, head: Head, entries: Iterable[Entry]) -> None:
    rows = rows_for(head, entries)
    if rows:
        conn.execute(_INSERT_ENTRIES, rows, execution_options=UNREAD)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    bad_seq: int | None = None
    reason: str = ""
    anchor: bool | None = None  # the anchor matched / did not; None: none given or not reached
    keyed_from: int | None = None  # first keyed entry (None: a plain chain throughout)
    key_id: str | None = None
    needs_key: bool = False  # keyed, and no key was given: the MACs could not be checked


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
    key: RecordKey | None = None,
) -> Verdict:
    """Walk the whole chain; report the first entry that was edited, deleted or inserted.

    Entries from `keyed_from` on are checked with `key` (a keyed record without the key is
    refused with `needs_key`: its MACs cannot be checked). A chain alone cannot tell a
    cleanly cut tail (entries deleted and the head rewound); an `anchor` (seq, hash) kept
    outside the database — the daemon writes one to its witnesses — can.
    `progress(checked, total)` is called once per batch of entries."""
    verdict = _walk(engine, batch, progress, key)
    if not verdict.ok or anchor is None:
        return verdict
    seq, digest = anchor
    with engine.connect() as conn:
        kept = conn.execute(select(AUDIT.c.hash).where(AUDIT.c.seq == seq)).scalar_one_or_none()
    if kept is None:
        return replace(
            verdict,
            ok=False,
            bad_seq=seq,
            reason=f"entry {seq} of the anchor is gone: the "
            f"record was cut back to {verdict.checked} entries",
            anchor=False,
        )
    if kept != digest:
        return replace(
            verdict,
            ok=False,
            bad_seq=seq,
            reason=f"entry {seq} does not match the anchor: the record was rewritten from there on",
            anchor=False,
        )
    return replace(verdict, anchor=True)


def _key_problem(head: Head, key: RecordKey | None) -> Verdict | None:
    """Why the keyed part cannot be checked (no key, another key, a moved start), or None."""
    if head.keyed_from is None:
        return None
    base = Verdict(False, 0, head.keyed_from, keyed_from=head.keyed_from, key_id=head.key_id)
    if key is None:
        return replace(
            base,
            needs_key=True,
            reason=f"entries from {head.keyed_from} on are chained with the record key "
            f"(id {head.key_id}); give it to check them",
        )
    if key.id != head.key_id:
        return replace(
            base,
            reason=f"the record names key id {head.key_id} but the key from {key.source} is "
            f"id {key.id}: a wrong key, or audit_head was edited",
        )
    if head.key_mark != key.mark(head.keyed_from):
        return replace(
            base,
            reason=f"the start of the keyed record (entry {head.keyed_from}) does not carry "
            "the key's mark: audit_head was edited to pass keyed entries off as plain",
        )
    return None


def _walk(
    engine: Engine,
    batch: int,
    progress: Callable[[int, int], None] | None,
    key: RecordKey | None = None,
) -> Verdict:
    prev, expected, checked = "", 1, 0
    with engine.connect() as conn:
        head = read_head(conn)
        if head is None:
            return Verdict(False, 0, None, "the record's head row (audit_head) was deleted")
        problem = _key_problem(head, key)
        if problem is not None:
            return problem
        head.key = key
        done = replace(Verdict(True, 0), keyed_from=head.keyed_from, key_id=head.key_id)
        last = 0
        while True:
            try:
                rows = conn.execute(
                    select(*_ROW_COLUMNS)
                    .where(AUDIT.c.seq > last)
                    .order_by(AUDIT.c.seq)
                    .limit(batch)
                ).all()
            except (ValueError, TypeError):  # a value edited into something unreadable
                bad = _first_unreadable(conn, last)
                return replace(
                    done,
                    ok=False,
                    checked=checked,
                    bad_seq=bad,
                    reason=f"entry {bad} was altered: a stored value is unreadable",
                )
            if not rows:
                break
            if progress is not None:
                progress(checked, head.seq)
            broken = _check_rows(rows, head, prev, expected)
            if broken is not None:
                return replace(
                    done, ok=False, checked=checked + broken[0], bad_seq=broken[1], reason=broken[2]
                )
            last = rows[-1].seq
            prev, expected, checked = rows[-1].hash, last + 1, checked + len(rows)
        if progress is not None:
            progress(checked, head.seq)
        if head.seq != checked or head.hash != prev:
            return replace(
                done,
                ok=False,
                checked=checked,
                bad_seq=checked + 1,
                reason=f"the record ends at entry {checked} but {head.seq} were written: "
                f"entries {checked + 1}..{head.seq} were deleted",
            )
    return replace(done, checked=checked)


def _check_rows(
    rows: list[Any], head: Head, prev: str, expected: int
) -> tuple[int, int, str] | None:
    """The first broken entry of one batch as (entries good before it, seq, reason)."""
    keyed_from, key = head.keyed_from, head.key
    for n, row in enumerate(rows):
        seq, at, operator, terminal, action, case_id, detail, prev_hash, hash_ = row
        if seq != expected:
            return n, expected, f"entry {expected} is missing (next present is {seq})"
        if prev_hash != prev:
            return n, seq, f"entry {seq} does not link to entry {seq - 1}"
        k = key if keyed_from is not None and seq >= keyed_from else None
        if digest(seq, prev_hash, at, operator, terminal, action, case_id, detail, k) != hash_:
            how = "MAC (keyed with the record key)" if k else "hash"
            return (
                n,
                seq,
                (
                    f"entry {seq} ({action}, operator {operator}) was altered: its content "
                    f"does not match its {how}"
                ),
            )
        prev, expected = hash_, seq + 1
    return None


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
