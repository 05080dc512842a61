"""The cases received in a period, as plain rows: what the what-if replay (sla/whatif.py)
re-runs and compares against. One SELECT over the cases table; void and merged cases are
not cases (as in store/assessment.py) and are left out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from tafang.store.cases import CASES, Store

COLUMNS = (
    "id",
    "received_at",
    "category",
    "priority",
    "grid",
    "status",
    "assignee",
    "assignee_kind",
    "escalation_level",
    "acknowledged_at",
    "dispatched_at",
    "arrived_at",
    "handled_at",
)
NOT_CASES = ("void", "merged")


def arrivals(store: Store, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Rows (column → value) of the cases received in [start, end), in receipt order."""
    c = CASES.c
    q = (
        select(*(c[n] for n in COLUMNS))
        .where(c.received_at >= start, c.received_at < end, c.status.not_in(NOT_CASES))
        .order_by(c.received_at, c.id)
    )
    with store.read_engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]


REPORT_COLUMNS = (
    "source",
    "external_id",
    "title",
    "description",
    "category",
    "grid",
    "location",
    "priority",
    "reporter",
    "lat",
    "lon",
)


def arrival_reports(
    store: Store, start: datetime, end: datetime
) -> list[tuple[datetime, dict[str, Any]]]:
    """(received_at, intake record) of each case received in [start, end), in receipt order:
    the reports as they came, for a trainer's replay on a scratch store (console/replay_feed.py).
    Empty values are left out, as a feed would leave them out."""
    c = CASES.c
    q = (
        select(c.received_at, *(c[n] for n in REPORT_COLUMNS))
        .where(c.received_at >= start, c.received_at < end, c.status.not_in(NOT_CASES))
        .order_by(c.received_at, c.id)
    )
    with store.read_engine.connect() as conn:
        return [
            (
                r[0],
                {k: v for k, v in zip(REPORT_COLUMNS, r[1:], strict=True) if v not in (None, "")},
            )
            for r in conn.execute(q)
        ]
