"""The layout of a prepared case row: columns in the order the driver receives them.

`id` and `updated_seq` follow, both handed out under the write lock (see `insert`). On
SQLite the times are bound as ready text, as SQLAlchemy's DATETIME stores a UTCDateTime.
"""

from __future__ import annotations

import operator
from datetime import UTC, datetime
from typing import Any

from sqlmodel.sql.sqltypes import UTCDateTime
from tafang.store.clocks import DUE_COLUMNS
from tafang.store.intake.limits import TEXT_LIMITS
from tafang.store.models import Case

ROW_COLUMNS = (
    *TEXT_LIMITS,
    "source",
    "external_id",
    "grid",
    "category",
    "priority",
    "reported_at",
    "received_at",
    "lat",
    "lon",
    "raw",
    "triage",
    "triage_reason",
    "respond_due",
    "dispatch_due",
    "arrive_due",
    "resolve_due",
    "next_check_at",
    "status",
    "escalation_level",
    "supervised",
    "version",
    "updated_at",
    "updated_by",
    "updated_terminal",
)
INSERT_COLUMNS = (*ROW_COLUMNS, "id", "updated_seq")
_TIME_POSITIONS = tuple(  # `updated_at` is written ready (see prepare)
    i
    for i, c in enumerate(ROW_COLUMNS)
    if isinstance(Case.__table__.c[c].type, UTCDateTime)
    and c not in ("updated_at", "next_check_at")
)
_NEXT_CHECK_AT = ROW_COLUMNS.index("next_check_at")
_DUE_POSITIONS = tuple(ROW_COLUMNS.index(c) for c in DUE_COLUMNS)
SOURCE_AT = ROW_COLUMNS.index("source")
EXTERNAL_AT = ROW_COLUMNS.index("external_id")

# Values every new case starts with.
FIXED = {
    "status": "new",
    "escalation_level": 0,
    "supervised": False,
    "version": 1,
}
row_of = operator.itemgetter(*ROW_COLUMNS)

_SQLITE_TIME = "%04d-%02d-%02d %02d:%02d:%02d.%06d"  # the fastest spelling (measured)


def sqlite_time(t: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DATETIME stores a UTCDateTime (UTC, no offset)."""
    if t.tzinfo is not UTC:
        t = t.astimezone(UTC)
    return _SQLITE_TIME % (
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        t.microsecond,
    )


def sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Times as SQLAlchemy's SQLite DATETIME stores a UTCDateTime: UTC text, no offset.

    The hottest loop of the worker, so `sqlite_time` is written out here; `next_check_at`
    is usually the very object of one deadline and takes its text."""
    vals = list(row)
    fmt = _SQLITE_TIME
    for i in _TIME_POSITIONS:
        t = vals[i]
        if t is not None:
            if t.tzinfo is not UTC:
                t = t.astimezone(UTC)
            vals[i] = fmt % (t.year, t.month, t.day, t.hour, t.minute, t.second, t.microsecond)
    t = row[_NEXT_CHECK_AT]
    if t is not None:
        for i in _DUE_POSITIONS:
            if row[i] is t:
                vals[_NEXT_CHECK_AT] = vals[i]
                break
        else:
            vals[_NEXT_CHECK_AT] = sqlite_time(t)
    return tuple(vals)
