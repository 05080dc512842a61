"""Reading a register from CSV: header checked, rows numbered by their line, bad rows kept.

Registers (enterprises, risk points) come from spreadsheets: UTF-8 with or without a BOM,
a header row naming the columns. A row that cannot be used is reported with its line number
and reason and stored as a dead letter with its raw text, so nothing of the file is lost.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import Connection, Table, insert, select, update
from tafang.store.models import DeadLetter

DEAD = DeadLetter.__table__


class RowError(ValueError):
    """Why one row cannot be used (English, names the column)."""


@dataclass
class ImportResult:
    """What an import did: rows added, updated, and the rejected ones by line."""

    origin: str
    added: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.errors)

    @property
    def summary(self) -> str:
        return (
            f"{self.origin}: {self.added} added, {self.updated} updated, {self.rejected} rejected"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "added": self.added,
            "updated": self.updated,
            "rejected": self.rejected,
            "errors": [{"line": n, "reason": r} for n, r in self.errors],
        }


def open_text(data: bytes | str | TextIO) -> TextIO:
    """A text stream over `data`; bytes are UTF-8 (with or without a BOM) or, failing
    that, GB 18030 (what a spreadsheet saves as CSV on a Chinese Windows)."""
    if isinstance(data, bytes):
        try:
            return io.StringIO(data.decode("utf-8-sig"))
        except UnicodeDecodeError as e:
            try:
                return io.StringIO(data.decode("gb18030"))
            except UnicodeDecodeError:
                line = data[: e.start].count(b"\n") + 1
                raise RowError(f"line {line}: neither UTF-8 nor GB 18030 text") from None
    if isinstance(data, str):
        return io.StringIO(data.removeprefix("\ufeff"))
    return data


def rows(
    stream: TextIO, required: Sequence[str], known: Sequence[str]
) -> Iterator[tuple[int, dict[str, str] | None, str]]:
    """(line number, row or None, raw text) for each data row; None when it is malformed.

    Raises RowError (line 1) when the header lacks a required column."""
    reader = csv.reader(stream)
    try:
        header = [h.strip().lstrip("\ufeff").lower() for h in next(reader)]
    except StopIteration:
        raise RowError("line 1: the file is empty (a header row is needed)") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise RowError(
            f"line 1: header lacks {', '.join(missing)} (has {', '.join(header) or 'nothing'};"
            f" known columns: {', '.join(known)})"
        )
    start = reader.line_num + 1
    for values in reader:
        raw = ",".join(values)
        line, start = start, reader.line_num + 1
        if not any(v.strip() for v in values):
            continue
        if len(values) > len(header):
            yield line, None, raw
            continue
        yield line, {h: v.strip() for h, v in zip(header, values, strict=False)}, raw


def run(
    conn: Connection,
    stream: TextIO,
    result: ImportResult,
    columns: tuple[Sequence[str], Sequence[str]],
    save: Callable[[Connection, dict[str, str]], bool],
    now: datetime,
) -> None:
    """Feed each good row to `save` (True = added, False = updated); keep the bad ones."""
    required, known = columns
    for line, row, raw in rows(stream, required, known):
        try:
            if row is None:
                raise RowError("more values than header columns")
            added = save(conn, row)
        except RowError as e:
            result.errors.append((line, str(e)))
            dead = {"line": line, "csv": raw}
            conn.execute(
                insert(DEAD).values(
                    at=now,
                    origin=result.origin,
                    line_no=line,
                    reason=str(e),
                    raw=json.dumps(dead, ensure_ascii=False),
                )
            )
            continue
        if added:
            result.added += 1
        else:
            result.updated += 1


class Upserts:
    """Rows of `table` keyed by its unique column `key`: the known keys are read once and
    updated row by row; new rows are inserted together by `flush` (a register of 10,000
    enterprises is one INSERT, not 10,000 look-ups). A key seen twice in one file: the
    later row wins and counts as an update."""

    def __init__(self, conn: Connection, table: Table, key: str) -> None:
        self.table, self.key = table, key
        self.have = {k: i for k, i in conn.execute(select(table.c[key], table.c.id))}
        self.new: dict[str, dict[str, object]] = {}

    def save(self, conn: Connection, values: dict[str, object]) -> bool:
        k = str(values[self.key])
        if k in self.have:
            t = self.table
            conn.execute(update(t).where(t.c.id == self.have[k]).values(**values))
            return False
        added = k not in self.new
        self.new[k] = values
        return added

    def flush(self, conn: Connection) -> None:
        if self.new:
            conn.execute(insert(self.table), list(self.new.values()))
