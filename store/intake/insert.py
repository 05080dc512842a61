"""One batch of prepared lines into the store: one transaction under the record's head lock.

The lock serialises concurrent ingests, so the key check inside it cannot race; the unique
(source, external_id) constraint is the last guard: on a clash the batch is tried again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from tafang.store.cases import Store
from tafang.store.intake.outcome import IngestResult
from tafang.store.intake.prepare import Context, Prepared
from tafang.store.intake.rows import (
    EXTERNAL_AT,
    INSERT_COLUMNS,
    ROW_COLUMNS,
    SOURCE_AT,
    sqlite_time,
)
from tafang.store.intake.sql import Sql
from tafang.store.models import DeadLetter
from tafang.store.record import AUDIT_ROW, chain_rows, dump_detail, encode_detail

Key = tuple[str, str]
Entry = tuple[str, int | None, str, str]  # (action, case id, detail, encoded detail)
_STATUS_AT = ROW_COLUMNS.index("status")


class Tally:
    """Counts across batches, and the keys this run already took (in-input duplicates)."""

    def __init__(self) -> None:
        self.accepted = self.duplicate = self.rejected = self.blank = 0
        self.errors: list[tuple[int | None, str]] = []
        self.seen: set[Key] = set()

    def result(self) -> IngestResult:
        return IngestResult(
            self.accepted, self.duplicate, self.rejected, self.errors, blank=self.blank
        )


def commit(store: Store, ctx: Context, prepared: list[Prepared], tally: Tally) -> None:
    """Insert new cases, dead letters and their record entries; count them in `tally`.

    If the store fails (a full disk, a lost connection), the batch is rolled back and the
    error raised with `ingest_result` (what earlier batches committed) and `ingest_line`
    (the first line not committed) set on it, so that the caller can say what was done."""
    for attempt in range(3):
        try:
            added, dup, keys = _insert(store, ctx, prepared, tally.seen)
            break
        except IntegrityError:
            if attempt == 2:
                raise
        except SQLAlchemyError as e:
            e.ingest_result = tally.result()  # type: ignore[attr-defined]
            e.ingest_line = prepared[0][1] if prepared else None  # type: ignore[attr-defined]
            raise
    tally.seen.update(keys)
    tally.accepted += added
    tally.duplicate += dup
    for p in prepared:
        if p[0] == "reject":
            tally.rejected += 1
            tally.errors.append((p[1], p[2]))
        elif p[0] == "blank":
            tally.blank += 1


def _insert(
    store: Store, ctx: Context, prepared: list[Prepared], seen: set[Key]
) -> tuple[int, int, set[Key]]:
    """One transaction; returns (accepted, duplicate, keys added)."""
    now = ctx.now
    cases = [p for p in prepared if p[0] == "case"]
    bad = [p for p in prepared if p[0] == "reject"]
    with store.write() as (conn, head):
        sql = Sql(conn)
        existing = sql.existing({(p[2][SOURCE_AT], p[2][EXTERNAL_AT]) for p in cases})
        fresh, batch_keys = _fresh(cases, existing, seen)
        entries: list[Entry] = []
        if fresh:
            head.change_seq += 1
            seq = head.change_seq
            ids = sql.new_ids(len(fresh))
            rows = [p[2] + (case_id, seq) for p, case_id in zip(fresh, ids, strict=True)]
            if ctx.history:
                entries = _history(sql, ctx, fresh, ids, rows)
            else:
                sql.insert_tuples("cases", INSERT_COLUMNS, rows)
                entries = [("ingest", i, p[3], p[4]) for p, i in zip(fresh, ids, strict=True)]
        if bad:
            entries += _dead_letters(conn, ctx, bad)
        if entries:
            stored_at = sqlite_time(now) if ctx.sqlite else None
            actor = ctx.actor
            audit = chain_rows(
                head, now, actor.operator, actor.terminal, entries, stored_at=stored_at
            )
            sql.insert_tuples("audit", AUDIT_ROW, audit)
    return len(fresh), len(cases) - len(fresh), batch_keys


def _history(
    sql: Sql, ctx: Context, fresh: list[Prepared], ids: list[int], rows: list[tuple[Any, ...]]
) -> list[Entry]:
    """Past cases and their `case_history` rows; one `import` entry on the record for the
    batch (a year of history is not 60,000 entries; the cases' own rows say who did what)."""
    from tafang.store.intake.history import HISTORY_INSERT_COLUMNS, HISTORY_ROW

    sql.insert_tuples("cases", HISTORY_INSERT_COLUMNS, rows)
    hist = [p[3] + (i,) for p, i in zip(fresh, ids, strict=True)]
    sql.insert_tuples("case_history", HISTORY_ROW, hist)
    closed = sum(1 for r in rows if r[_STATUS_AT] == "closed")
    detail = dump_detail(
        {
            "origin": ctx.origin,
            "history": True,
            "cases": len(ids),
            "closed": closed,
            "first_id": min(ids),
            "last_id": max(ids),
        }
    )
    return [("import", None, detail, encode_detail(detail))]


def _fresh(
    cases: list[Prepared], existing: set[Key], seen: set[Key]
) -> tuple[list[Prepared], set[Key]]:
    """The cases whose key neither the store, this run nor this batch already holds."""
    fresh: list[Prepared] = []
    batch_keys: set[Key] = set()
    for p in cases:
        r = p[2]
        k = (r[SOURCE_AT], r[EXTERNAL_AT])
        if k in existing or k in seen or k in batch_keys:
            continue
        batch_keys.add(k)
        fresh.append(p)
    return fresh, batch_keys


def _dead_letters(conn: Connection, ctx: Context, bad: list[Prepared]) -> list[Entry]:
    """Keep rejected lines with their reasons; their record entries."""
    origin = ctx.origin
    conn.execute(
        insert(DeadLetter.__table__),
        [dict(at=ctx.now, origin=origin, line_no=n, reason=why, raw=raw) for _, n, why, raw in bad],
    )
    out: list[Entry] = []
    for _, n, why, _ in bad:
        detail = dump_detail({"origin": origin, "line": n, "reason": why})
        out.append(("reject", None, detail, encode_detail(detail)))
    return out
