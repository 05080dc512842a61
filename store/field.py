"""The store side of the field API (`tafang serve`): request ids, field reports, self-found.

Idempotency: a request that changes something writes its `field_requests` row, answer
included, inside the transaction of the change (`Claim`, passed to `Store.act(also=…)`), so
a retried request id finds the row and is answered from it, and a crash can never leave the
change without its row or the row without its change. A refused request keeps its answer
too (`keep_refusal`), so the same id gets the same refusal.

Self-found (自查自处): a case an officer found and dealt with on patrol, written in one
transaction already handled (times as reported), flagged `self_found`, waiting for a
checker's close like any handled case (监管分离: the officer who handled it may not close it).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.exc import IntegrityError
from tafang.store.cases import Actor, Refused, Store, utcnow
from tafang.store.db import insert_new
from tafang.store.models import Case, FieldRequest
from tafang.store.moves import CREATE_ROLES, FIELD
from tafang.store.record import Entry, Head, append
from tafang.store.views import CaseView

REQUESTS = FieldRequest.__table__
CASES = Case.__table__
SKEW_SECONDS = 60  # a phone's clock may run this far ahead of ours

# Built once: a reused statement keeps its SQLAlchemy cache key (no rebuilding per request).
_ANSWERED = select(REQUESTS.c.status, REQUESTS.c.answer, REQUESTS.c.method, REQUESTS.c.path).where(
    REQUESTS.c.caller == bindparam("caller"), REQUESTS.c.request_id == bindparam("request_id")
)
_CASE_BY_ID = select(CASES).where(CASES.c.id == bindparam("case_id"))
_KEEP = insert(REQUESTS)


@dataclass(frozen=True, slots=True)
class Answered:
    """A request id seen before: its status and JSON answer (None: done, answer not kept)."""

    status: int
    answer: str | None


def answered(store: Store, caller: str, request_id: str) -> tuple[Answered, str, str] | None:
    """The stored answer of (caller, request id) with its method and path, or None."""
    with store.read_engine.connect() as conn:
        row = conn.execute(_ANSWERED, {"caller": caller, "request_id": request_id}).first()
    return None if row is None else (Answered(row.status, row.answer), row.method, row.path)


class Claim:
    """The write that marks a request id done, with its answer, in the transaction that does
    it: call it with the case's id once the case is written; `answer` then holds the JSON
    text kept (made by `answer_of` from the case's row as this transaction sees it)."""

    def __init__(
        self,
        caller: str,
        request_id: str,
        method: str,
        path: str,
        status: int,
        answer_of: Callable[[Mapping[str, Any]], str],
    ) -> None:
        self.key = dict(caller=caller, request_id=request_id, method=method, path=path)
        self.status = status
        self.answer_of = answer_of
        self.answer: str | None = None

    def __call__(self, conn: Connection, head: Head, case_id: int) -> None:
        row = conn.execute(_CASE_BY_ID, {"case_id": case_id}).one()
        self.answer = self.answer_of(row._mapping)
        values = dict(self.key, status=self.status, answer=self.answer, at=utcnow())
        conn.execute(_KEEP, values)


class DuplicateRequest(Exception):
    """The request id was written by a concurrent retry first: answer from its row."""


@contextmanager
def duplicate_guard() -> Iterator[None]:
    """Turn the unique-key failure of a request id's row into DuplicateRequest."""
    try:
        yield
    except IntegrityError as e:
        text = str(e.orig).lower()
        if "field_requests" in text or "unique" in text or "duplicate" in text:
            raise DuplicateRequest(str(e.orig)) from e
        raise


def keep_refusal(
    store: Store,
    caller: str,
    request_id: str,
    method: str,
    path: str,
    status: int,
    answer: str,
) -> None:
    """Keep a refused request's answer (nothing else was written), unless the id is taken."""
    values = dict(
        caller=caller,
        request_id=request_id,
        method=method,
        path=path,
        status=status,
        answer=answer,
        at=utcnow(),
    )
    with store.engine.begin() as conn:
        conn.execute(insert_new(conn, REQUESTS, values))


# ---- self-found, self-handled (自查自处) -------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SelfFound:
    """What the officer reports: the case as found, when found and when handled."""

    officer: str
    title: str
    found_at: datetime
    handled_at: datetime
    category: str | None = None
    grid: str | None = None
    location: str = ""
    description: str = ""
    lat: float | None = None
    lon: float | None = None
    note: str = ""
    photos: tuple[str, ...] = ()


def self_found(
    store: Store,
    report_: SelfFound,
    actor: Actor,
    *,
    now: datetime | None = None,
    also: Callable[[Connection, Head, int], None] | None = None,
) -> CaseView:
    """Write a self-found case, already handled, in one transaction (`also`: more writes in
    it, given the new case's id); refuse (Refused) an
    officer reporting for someone else, an unknown officer, grid or category, or times out
    of order or in the future."""
    now = now or utcnow()
    _may_report(store, report_, actor)
    found, handled = _times(report_, now)
    values = _case_values(store, report_, actor, found, handled, now)
    with store.write() as (conn, head):
        head.change_seq += 1
        values["updated_seq"] = head.change_seq
        case_id = conn.execute(insert(CASES).values(**values)).inserted_primary_key[0]
        if also is not None:
            also(conn, head, case_id)
        detail = {
            "officer": report_.officer,
            "found_at": found.isoformat(),
            "handled_at": handled.isoformat(),
            "source": values["source"],
            "title": report_.title,
            "note": report_.note,
            "photos": list(report_.photos),
            "from": None,
            "to": "handled",
        }
        if report_.lat is not None and report_.lon is not None:
            detail.update(lat=report_.lat, lon=report_.lon)
        by, term = actor.operator, actor.terminal
        append(
            conn,
            head,
            [
                Entry(now, by, term, "self_found", case_id, detail),
                Entry(now, by, term, "handle", case_id, {"reported_at": handled.isoformat()}),
            ],
        )
    return store.get(case_id)


def _may_report(store: Store, r: SelfFound, actor: Actor) -> None:
    """An officer reports their own finds; a dispatcher may type one in for an officer."""
    store.may(CREATE_ROLES | FIELD, "self_found", actor)
    if r.officer not in store.d.officers_by_code:
        raise Refused(
            f"no officer {r.officer!r} in this deployment", "unknown_assignee", assignee=r.officer
        )
    if actor.field and r.officer != actor.operator:
        raise Refused(
            f"officer {actor.operator} may report only their own finds, not {r.officer}'s",
            "not_yours",
            action="self_found",
            operator=actor.operator,
        )
    if not r.title.strip():
        raise Refused("a self-found case needs a title", "needs_title")
    if r.grid is not None and r.grid not in store.d.grids_by_code:
        raise Refused(f"unknown grid {r.grid!r}", "unknown_grid", grid=r.grid)
    if r.category is not None and r.category not in store.d.categories_by_code:
        raise Refused(f"unknown category {r.category!r}", "unknown_category", category=r.category)


def _times(r: SelfFound, now: datetime) -> tuple[datetime, datetime]:
    if (r.handled_at - now).total_seconds() > SKEW_SECONDS:
        raise Refused(
            f"handled_at {r.handled_at.isoformat()} is in the future",
            "reported_future",
            at=r.handled_at,
        )
    if r.found_at > r.handled_at:
        raise Refused(
            f"found_at {r.found_at.isoformat()} is after handled_at {r.handled_at.isoformat()}",
            "reported_early",
            at=r.handled_at,
            since=r.found_at,
        )
    return min(r.found_at, now), min(r.handled_at, now)


def _case_values(
    store: Store, r: SelfFound, actor: Actor, found: datetime, handled: datetime, now: datetime
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "source": "self_found",
        "external_id": f"{r.officer}-{uuid.uuid4().hex[:16]}",
        "title": r.title,
        "description": r.description,
        "category": r.category,
        "grid": r.grid,
        "location": r.location,
        "priority": "normal",
        "reporter": r.officer,
        "lat": r.lat,
        "lon": r.lon,
        "reported_at": found,
        "received_at": found,
        "raw": json.dumps({"photos": list(r.photos), "note": r.note}, ensure_ascii=False),
        "status": "new",
    }
    values.update(store.clocks.start(values))
    values.update(
        status="handled",
        assignee=r.officer,
        assignee_kind="officer",
        acknowledged_at=found,
        dispatched_at=found,
        arrived_at=found,
        handled_at=handled,
        next_check_at=None,
        self_found=True,
        version=1,
        updated_at=now,
        updated_by=actor.operator,
        updated_terminal=actor.terminal,
    )
    return values
