"""The few statements bulk intake sends straight to the driver, per dialect.

Bypassing SQLAlchemy's per-value processing is what makes 20k records/s (DESIGN §5)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

_STEP = 500  # ids per IN query


class Sql:
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
        for src, exts in by_source.items():
            if self.sqlite:
                got = self._in_range(src, exts)
                if got is not None:
                    out.update((src, x) for x in got)
                    continue
            for i in range(0, len(exts), _STEP):
                part = exts[i : i + _STEP]
                q = (
                    f"SELECT external_id FROM cases WHERE source = {self.mark} "
                    f"AND external_id IN ({','.join([self.mark] * len(part))})"
                )
                out.update((src, r[0]) for r in self.conn.exec_driver_sql(q, (src, *part)))
        return out

    def _in_range(self, src: str, exts: list[str]) -> set[str] | None:
        """Which of `exts` the store holds, if their range holds few others; else None.
        BINARY collation compares UTF-8 bytes: the order of code points, as min/max."""
        limit = 2 * len(exts) + 8
        got = [
            r[0]
            for r in self.conn.exec_driver_sql(
                "SELECT external_id FROM cases WHERE source = ? "
                "AND external_id BETWEEN ? AND ? LIMIT ?",
                (src, min(exts), max(exts), limit),
            )
        ]
        if len(got) >= limit:  # not the whole range
            return None
        if not got:
            return set()
        wanted = set(exts)
        return {x for x in got if x in wanted}

    def new_ids(self, n: int) -> list[int]:
        """`n` case ids, handed out while we hold the write lock."""
        if self.sqlite:
            top = self.conn.exec_driver_sql("SELECT COALESCE(MAX(id), 0) FROM cases").scalar()
            return list(range(int(top or 0) + 1, int(top or 0) + 1 + n))
        q = "SELECT nextval(pg_get_serial_sequence('cases', 'id')) FROM generate_series(1, %s)"
        return [int(r[0]) for r in self.conn.exec_driver_sql(q, (n,))]

    def insert_tuples(self, table: str, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        q = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([self.mark] * len(cols))})"
        self.conn.exec_driver_sql(q, rows)
