"""Joint inspections (跨部门联合检查 · 进一次门、查多项事): plans, merges, results, the rate.

A plan is one visit to one enterprise within a window of days, by one or more departments,
with a checklist. A second plan for the same enterprise whose window overlaps an open plan's
gets a merge proposal; accepting it folds the newer plan into the older (departments,
officers and items joined, the window narrowed to the overlap), declining keeps two visits.
Both decisions go on the record with who made them.

综合查一次 rate (joint-inspection rate) = joint visits ÷ all visits, over visits made
(status done) in the period by the day of the visit; a joint visit is one made by two or more
departments together, whether planned jointly or merged from separate plans. Merged plans
are the visits saved. Xihu reached 61 % in 2024; the province's target is 80 % (TARGET).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from tafang.store.cases import Actor, NotFound, Refused, Store, utcnow
from tafang.store.models import InspectionItem, InspectionMerge, InspectionPlan
from tafang.store.moves import ANY_WORKER, DISPATCH
from tafang.store.record import Entry, append

PLANS = InspectionPlan.__table__
ITEMS = InspectionItem.__table__
MERGES = InspectionMerge.__table__
DEPARTMENTS = (
    "enforcement",
    "market",
    "hr",
    "emergency",
    "fire",
    "environment",
    "police",
    "traffic",
)
RESULTS = ("pass", "fail", "na")
TARGET = 0.80  # the province's target for the joint-inspection rate (by 2027)
XIHU_2024 = 0.61  # Xihu district's rate in 2024, for comparison


@dataclass(frozen=True, slots=True)
class PlanView:
    id: int
    enterprise_id: int
    title: str
    departments: tuple[str, ...]
    officers: tuple[str, ...]
    window_from: datetime  # start of the first day (UTC)
    window_to: datetime  # start of the day after the last (UTC)
    status: str
    merged_into: int | None
    visited_at: datetime | None

    @property
    def joint(self) -> bool:
        return len(self.departments) > 1


@dataclass(frozen=True, slots=True)
class ItemView:
    id: int
    plan_id: int
    department: str
    text: str
    result: str
    note: str


@dataclass(frozen=True, slots=True)
class MergeView:
    id: int
    plan_id: int
    other_id: int
    status: str
    decided_by: str
    reason: str


@dataclass(frozen=True, slots=True)
class JointRate:
    """综合查一次 over a period: joint visits, all visits, plans merged away (visits saved)."""

    joint: int
    visits: int
    merged: int

    @property
    def rate(self) -> float | None:
        return self.joint / self.visits if self.visits else None


def window(tz: str, first: date, last: date) -> tuple[datetime, datetime]:
    """A window of local days as [start of `first`, start of the day after `last`) in UTC."""
    if last < first:
        raise Refused(f"window ends ({last}) before it starts ({first})", "window")
    z = ZoneInfo(tz)
    start = datetime.combine(first, time(), z)
    end = datetime.combine(last + timedelta(days=1), time(), z)
    return start.astimezone(ZoneInfo("UTC")), end.astimezone(ZoneInfo("UTC"))


def _plan_view(r: Any) -> PlanView:
    m = r._mapping
    return PlanView(
        m["id"],
        m["enterprise_id"],
        m["title"],
        tuple(json.loads(m["departments"])),
        tuple(json.loads(m["officers"])),
        m["window_from"],
        m["window_to"],
        m["status"],
        m["merged_into"],
        m["visited_at"],
    )


def _check_departments(departments: list[str]) -> None:
    bad = [d for d in departments if d not in DEPARTMENTS]
    if bad or not departments:
        raise Refused(
            f"department(s) {', '.join(bad) or '(none)'} unknown; known: {', '.join(DEPARTMENTS)}",
            "department",
        )


def create_plan(
    store: Store,
    enterprise_id: int,
    *,
    departments: list[str],
    items: list[tuple[str, str]],
    first: date,
    last: date,
    actor: Actor,
    officers: list[str] | None = None,
    title: str = "",
    now: datetime | None = None,
) -> tuple[PlanView, list[MergeView]]:
    """A new plan with its checklist; returns it and the merge proposals it raised."""
    store.may(DISPATCH, "inspection plan", actor)
    depts = sorted(set(departments) | {d for d, _ in items})
    _check_departments(depts)
    unknown = [o for o in officers or [] if o not in store.d.officers_by_code]
    if unknown:
        raise Refused(f"officer(s) {', '.join(unknown)} not on the roster", "officer")
    start, end = window(store.d.timezone, first, last)
    now = now or utcnow()
    with store.write() as (conn, head):
        plan_id = _insert_plan(
            conn, enterprise_id, title, depts, officers or [], start, end, actor, now
        )
        if items:
            rows = [{"plan_id": plan_id, "department": d, "text": t} for d, t in items]
            conn.execute(
                insert(ITEMS), [{**r, "result": "", "note": "", "checked_by": ""} for r in rows]
            )
        overlapping = _propose_merges(conn, plan_id, enterprise_id, start, end, now)
        detail = {
            "plan": plan_id,
            "enterprise": enterprise_id,
            "departments": depts,
            "items": len(items),
            "merge_proposed_with": list(overlapping),
        }
        append(
            conn,
            head,
            [Entry(now, actor.operator, actor.terminal, "inspection.plan", None, detail)],
        )
    return plan(store, plan_id), [m for m in proposals(store) if m.plan_id == plan_id]


def _propose_merges(
    conn: Connection,
    plan_id: int,
    enterprise_id: int,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[int]:
    """A proposal for each open plan of the enterprise whose window overlaps [start, end)."""
    q = (
        select(PLANS.c.id)
        .where(PLANS.c.enterprise_id == enterprise_id, PLANS.c.status == "planned")
        .where(PLANS.c.id != plan_id, PLANS.c.window_from < end, PLANS.c.window_to > start)
        .order_by(PLANS.c.id)
    )
    others = list(conn.execute(q).scalars())
    for other in others:
        values = {"plan_id": plan_id, "other_id": other, "status": "proposed"}
        conn.execute(insert(MERGES).values(**values, proposed_at=now, decided_by="", reason=""))
    return others


def _insert_plan(
    conn: Connection,
    enterprise_id: int,
    title: str,
    depts: list[str],
    officers: list[str],
    start: datetime,
    end: datetime,
    actor: Actor,
    now: datetime,
) -> int:
    from tafang.store.models import Enterprise

    ent = Enterprise.__table__
    if conn.execute(select(ent.c.id).where(ent.c.id == enterprise_id)).first() is None:
        raise NotFound(
            f"enterprise {enterprise_id} is not in the register", "not_found", id=enterprise_id
        )
    values = {
        "enterprise_id": enterprise_id,
        "title": title,
        "departments": json.dumps(depts),
        "officers": json.dumps(sorted(set(officers))),
        "window_from": start,
        "window_to": end,
        "status": "planned",
        "created_at": now,
        "created_by": actor.operator,
        "version": 1,
    }
    return conn.execute(insert(PLANS).values(**values)).inserted_primary_key[0]


def decide(
    store: Store,
    merge_id: int,
    accept: bool,
    actor: Actor,
    reason: str = "",
    now: datetime | None = None,
) -> MergeView:
    """Accept (merge the newer plan into the older) or decline a proposal; on the record."""
    store.may(DISPATCH, "inspection merge", actor)
    now = now or utcnow()
    with store.write() as (conn, head):
        m = conn.execute(select(MERGES).where(MERGES.c.id == merge_id)).first()
        if m is None:
            raise NotFound(f"merge proposal {merge_id} does not exist", "not_found", id=merge_id)
        if m.status != "proposed":
            raise Refused(
                f"merge proposal {merge_id} was already {m.status}", "decided", id=merge_id
            )
        if accept:
            _merge(conn, m.plan_id, m.other_id)
        status = "accepted" if accept else "declined"
        conn.execute(
            update(MERGES)
            .where(MERGES.c.id == merge_id)
            .values(status=status, decided_at=now, decided_by=actor.operator, reason=reason)
        )
        if accept:  # other proposals about the folded plan no longer apply
            conn.execute(
                update(MERGES)
                .where(MERGES.c.status == "proposed")
                .where(or_(MERGES.c.plan_id == m.plan_id, MERGES.c.other_id == m.plan_id))
                .values(status="superseded", decided_at=now, decided_by=actor.operator)
            )
        detail = {"proposal": merge_id, "plan": m.plan_id, "into": m.other_id}
        if reason:
            detail["reason"] = reason
        append(
            conn,
            head,
            [
                Entry(
                    now, actor.operator, actor.terminal, f"inspection.merge.{status}", None, detail
                )
            ],
        )
    return next(p for p in proposals(store, status=None) if p.id == merge_id)


def _merge(conn: Connection, plan_id: int, other_id: int) -> None:
    """Fold plan `plan_id` into `other_id`: departments, officers, items; the overlap."""
    a = conn.execute(select(PLANS).where(PLANS.c.id == plan_id)).first()
    b = conn.execute(select(PLANS).where(PLANS.c.id == other_id)).first()
    if a is None or b is None or a.status != "planned" or b.status != "planned":
        raise Refused(
            f"plans {plan_id} and {other_id} must both still be planned to merge", "merge"
        )
    depts = sorted(set(json.loads(a.departments)) | set(json.loads(b.departments)))
    officers = sorted(set(json.loads(a.officers)) | set(json.loads(b.officers)))
    conn.execute(
        update(PLANS)
        .where(PLANS.c.id == other_id)
        .values(
            departments=json.dumps(depts),
            officers=json.dumps(officers),
            window_from=max(a.window_from, b.window_from),
            window_to=min(a.window_to, b.window_to),
            version=b.version + 1,
        )
    )
    conn.execute(
        update(PLANS)
        .where(PLANS.c.id == plan_id)
        .values(status="merged", merged_into=other_id, version=a.version + 1)
    )
    conn.execute(update(ITEMS).where(ITEMS.c.plan_id == plan_id).values(plan_id=other_id))


def record_result(
    store: Store,
    item_id: int,
    result: str,
    actor: Actor,
    note: str = "",
    now: datetime | None = None,
) -> ItemView:
    """The result of one checklist item (pass / fail / na), on the record."""
    store.may(ANY_WORKER, "inspection result", actor)
    if result not in RESULTS:
        raise Refused(f"result must be one of {', '.join(RESULTS)}, not {result!r}", "result")
    now = now or utcnow()
    with store.write() as (conn, head):
        it = conn.execute(select(ITEMS).where(ITEMS.c.id == item_id)).first()
        if it is None:
            raise NotFound(f"checklist item {item_id} does not exist", "not_found", id=item_id)
        conn.execute(
            update(ITEMS)
            .where(ITEMS.c.id == item_id)
            .values(result=result, note=note, checked_by=actor.operator, checked_at=now)
        )
        detail = {"item": item_id, "plan": it.plan_id, "result": result}
        append(
            conn,
            head,
            [Entry(now, actor.operator, actor.terminal, "inspection.result", None, detail)],
        )
    return next(i for i in items(store, it.plan_id) if i.id == item_id)


def complete(store: Store, plan_id: int, actor: Actor, at: datetime | None = None) -> PlanView:
    """The visit was made (`at`, default now; the record entry is written now): every item
    needs a result first."""
    store.may(ANY_WORKER, "inspection done", actor)
    now = utcnow()
    at = at or now
    with store.write() as (conn, head):
        p = conn.execute(select(PLANS).where(PLANS.c.id == plan_id)).first()
        if p is None:
            raise NotFound(f"inspection plan {plan_id} does not exist", "not_found", id=plan_id)
        if p.status != "planned":
            raise Refused(f"plan {plan_id} is {p.status}, not planned", "status", id=plan_id)
        open_items = conn.execute(
            select(func.count()).where(ITEMS.c.plan_id == plan_id, ITEMS.c.result == "")
        ).scalar_one()
        if open_items:
            raise Refused(f"plan {plan_id} has {open_items} item(s) without a result", "open_items")
        conn.execute(
            update(PLANS)
            .where(PLANS.c.id == plan_id)
            .values(status="done", visited_at=at, version=p.version + 1)
        )
        detail = {"plan": plan_id, "departments": json.loads(p.departments)}
        append(
            conn,
            head,
            [Entry(now, actor.operator, actor.terminal, "inspection.done", None, detail)],
        )
    return plan(store, plan_id)


# ---- reads ------------------------------------------------------------------------------------
def plan(store: Store, plan_id: int) -> PlanView:
    with store.read_engine.connect() as conn:
        r = conn.execute(select(PLANS).where(PLANS.c.id == plan_id)).first()
    if r is None:
        raise NotFound(f"inspection plan {plan_id} does not exist", "not_found", id=plan_id)
    return _plan_view(r)


def plans(store: Store, status: str | None = None) -> list[PlanView]:
    q = select(PLANS).order_by(PLANS.c.window_from, PLANS.c.id)
    if status:
        q = q.where(PLANS.c.status == status)
    with store.read_engine.connect() as conn:
        return [_plan_view(r) for r in conn.execute(q)]


def items(store: Store, plan_id: int) -> list[ItemView]:
    q = select(ITEMS).where(ITEMS.c.plan_id == plan_id).order_by(ITEMS.c.department, ITEMS.c.id)
    with store.read_engine.connect() as conn:
        return [
            ItemView(r.id, r.plan_id, r.department, r.text, r.result, r.note)
            for r in conn.execute(q)
        ]


def proposals(store: Store, status: str | None = "proposed") -> list[MergeView]:
    q = select(MERGES).order_by(MERGES.c.id)
    if status:
        q = q.where(MERGES.c.status == status)
    with store.read_engine.connect() as conn:
        return [
            MergeView(r.id, r.plan_id, r.other_id, r.status, r.decided_by, r.reason)
            for r in conn.execute(q)
        ]


def joint_rate(store: Store, since: datetime, until: datetime) -> JointRate:
    """综合查一次 over visits made in [since, until); see the module's docstring."""
    done = and_(PLANS.c.status == "done", PLANS.c.visited_at >= since, PLANS.c.visited_at < until)
    with store.read_engine.connect() as conn:
        visits = conn.execute(select(PLANS.c.id, PLANS.c.departments).where(done)).all()
        ids = [v.id for v in visits]
        merged = (
            conn.execute(
                select(func.count()).where(PLANS.c.status == "merged", PLANS.c.merged_into.in_(ids))
            ).scalar_one()
            if ids
            else 0
        )
    joint = sum(1 for v in visits if len(json.loads(v.departments)) > 1)
    return JointRate(joint, len(visits), merged)
