"""Partner teams (政企共管): items handled per case, and the time and cost they saved.

A shared-bike operator's own team takes the cases of its categories (dispatch to the partner
code). When it has dealt with one, the count of items (bikes moved) is given with the
handling; a later count replaces the earlier (a rework is counted once). The savings use
each partner's rates from config (`minutes_per_item`, `yuan_per_item`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from tafang.store.cases import Actor, NotFound, Refused, Store, utcnow
from tafang.store.db import upsert
from tafang.store.models import Case, PartnerItems
from tafang.store.moves import ANY_WORKER
from tafang.store.record import Entry, append

ITEMS = PartnerItems.__table__
CASES = Case.__table__
MAX_ITEMS = 100_000
COUNTABLE = ("on_scene", "handled", "closed")  # a count goes with the handling or after it


@dataclass(frozen=True, slots=True)
class PartnerFigures:
    """One partner over a period: cases handled, items, and what they saved."""

    code: str
    cases: int
    items: int
    hours_saved: float
    yuan_saved: float


def record_items(
    store: Store, case_id: int, items: int, actor: Actor, now: datetime | None = None
) -> None:
    """The items a partner handled on its case; on the case's record."""
    store.may(ANY_WORKER, "partner items", actor)
    if not 0 <= items <= MAX_ITEMS:
        raise Refused(f"items must be 0–{MAX_ITEMS}, not {items}", "items")
    now = now or utcnow()
    with store.write() as (conn, head):
        c = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
        if c is None:
            raise NotFound(f"case {case_id} does not exist", "not_found", id=case_id)
        if c.assignee_kind != "partner":
            raise Refused(
                f"case {case_id} is not with a partner team (it is with {c.assignee or 'nobody'})",
                "not_partner",
            )
        if c.status not in COUNTABLE:
            raise Refused(
                f"case {case_id} is {c.status}: items are counted when it is handled",
                "not_handled",
            )
        row = {"case_id": case_id, "partner": c.assignee, "items": items, "at": now}
        conn.execute(upsert(conn, ITEMS, {**row, "by": actor.operator}, "case_id"))
        detail = {"partner": c.assignee, "items": items}
        append(
            conn,
            head,
            [Entry(now, actor.operator, actor.terminal, "partner.items", case_id, detail)],
        )


def check_items(store: Store, case_id: int, items: int) -> None:
    """Refuse a count before the handling it goes with (so a bad one stops both)."""
    if not 0 <= items <= MAX_ITEMS:
        raise Refused(f"items must be 0–{MAX_ITEMS}, not {items}", "items")
    c = store.get(case_id)
    if c.assignee_kind != "partner":
        raise Refused(
            f"case {case_id} is not with a partner team (it is with {c.assignee or 'nobody'})",
            "not_partner",
        )


def items_of(store: Store, case_id: int) -> int | None:
    with store.read_engine.connect() as conn:
        return conn.execute(select(ITEMS.c["items"]).where(ITEMS.c.case_id == case_id)).scalar()


def figures(store: Store, since: datetime, until: datetime) -> list[PartnerFigures]:
    """Per partner of the config: its cases handled in [since, until) and their items."""
    q = (
        select(CASES.c.assignee, func.count(), func.coalesce(func.sum(ITEMS.c["items"]), 0))
        .select_from(CASES.outerjoin(ITEMS, ITEMS.c.case_id == CASES.c.id))
        .where(CASES.c.assignee_kind == "partner")
        .where(and_(CASES.c.handled_at >= since, CASES.c.handled_at < until))
        .group_by(CASES.c.assignee)
    )
    with store.read_engine.connect() as conn:
        got = {a: (n, int(i)) for a, n, i in conn.execute(q).all()}
    out = []
    for p in store.d.partners:
        n, i = got.get(p.code, (0, 0))
        out.append(
            PartnerFigures(p.code, n, i, round(i * p.minutes_per_item / 60, 1), i * p.yuan_per_item)
        )
    return out
