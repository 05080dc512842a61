"""The case lifecycle: the only code that changes a case.

Every move is checked against the state machine, guarded by an optimistic version check,
applied together with its officer-status effect and appended to the record, in one
transaction. A refused move raises `Refused` with a reason a dispatcher can read.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text, update
from tafang.store.clocks import ClockRules
from tafang.store.config import LEVELS, Deployment
from tafang.store.db import insert_new, reader
from tafang.store.models import END_STATUSES, OPEN_STATUSES, Case, Officer
from tafang.store.outbox import enqueue
from tafang.store.record import Entry, Head, append, entries_for_case, lock_head, save_head
from tafang.store.views import CASE_FIELDS, CaseView, OfficerView, TimelineEntry

CASES = Case.__table__
OFFICERS = Officer.__table__
OPEN_SQL = text("status NOT IN ('closed', 'void', 'merged')")

ACTIVE = ("new", "acknowledged", "dispatched", "on_scene")

# action -> (states it may start from, state it leads to; None = stays, "" = computed)
MOVES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "ack": (("new",), "acknowledged"),
    "dispatch": (("new", "acknowledged"), "dispatched"),
    "reassign": (("dispatched", "on_scene"), "dispatched"),
    "arrive": (("dispatched",), "on_scene"),
    "handle": (("on_scene",), "handled"),
    "close": (("handled",), "closed"),
    "hold": (ACTIVE, "held"),
    "resume": (("held",), ""),
    "return": (("dispatched", "on_scene"), "acknowledged"),
    "rework": (("handled",), "dispatched"),
    "reopen": (("closed", "void"), "acknowledged"),
    "void": ((*ACTIVE, "held"), "void"),
    "merge": (OPEN_STATUSES, "merged"),
    "supervise": (OPEN_STATUSES, None),
    "escalate": (OPEN_STATUSES, None),
    "note": (OPEN_STATUSES + END_STATUSES, None),
}
NEEDS_REASON = {"hold", "return", "rework", "reopen", "void", "merge", "supervise", "escalate"}
NEEDS_SUPERVISOR = {"hold"}
STATUS_WORDS = {
    "new": "new (待受理)",
    "acknowledged": "acknowledged (已受理)",
    "dispatched": "dispatched (已派遣)",
    "on_scene": "on scene (处置中)",
    "handled": "handled (已处置)",
    "held": "on hold (挂账)",
    "closed": "closed (已结案)",
    "void": "void (已作废)",
    "merged": "merged (已合并)",
}


class Refused(Exception):
    """A move that may not happen (illegal state, unknown officer, missing reason …).

    `code` and `params` let a UI say the same in its own language; str(e) is English.
    """

    def __init__(self, message: str, code: str = "", **params: Any) -> None:
        super().__init__(message)
        self.code = code
        self.params = params


class NotFound(Refused):
    pass


class Conflict(Refused):
    """Another terminal changed the case first; says who and when."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Actor:
    operator: str = "system"
    terminal: str = socket.gethostname()


class Store:
    """The store of one deployment: reads return plain views, moves go through `act`."""

    def __init__(
        self, engine: Engine, deployment: Deployment, clocks: ClockRules | None = None
    ) -> None:
        self.engine = engine
        self.read_engine = reader(engine)
        self.d = deployment
        self.clocks = clocks or ClockRules(deployment)
        self.sync_roster()

    # ---- transactions ----------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[tuple[Connection, Head]]:
        """One write transaction with the record's head locked (serialises writers).

        On PostgreSQL a move of change_seq is announced on `tafang_changes` (see
        store/changes.py); NOTIFY is transactional, so listeners hear it at commit.
        """
        with self.engine.begin() as conn:
            head = lock_head(conn)
            before = head.change_seq
            yield conn, head
            save_head(conn, head)
            if head.change_seq != before and conn.dialect.name == "postgresql":
                notify = text("SELECT pg_notify('tafang_changes', :seq)")  # changes.CHANNEL
                conn.execute(notify, {"seq": str(head.change_seq)})

    # ---- roster --------------------------------------------------------------------------
    def sync_roster(self) -> None:
        """Give every officer of the config a live-state row (new officers start available)."""
        with self.read_engine.connect() as conn:
            have = set(conn.execute(select(OFFICERS.c.code)).scalars())
        now = utcnow()
        missing = [
            dict(code=o.code, squad=s.code, status="available", status_since=now, version=1)
            for s in self.d.squads
            for o in s.officers
            if o.code not in have
        ]
        if not missing:
            return
        with self.engine.begin() as conn:  # another process may be doing the same
            conn.execute(insert_new(conn, OFFICERS), missing)

    # ---- reads -------------------------------------------------------------------------
    def get(self, case_id: int) -> CaseView:
        with self.read_engine.connect() as conn:
            row = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
        if row is None:
            raise NotFound(f"case {case_id} does not exist", "not_found", id=case_id)
        return _view(row._mapping)

    def cases(self, status: str = "open", limit: int | None = None) -> list[CaseView]:
        q = select(CASES)
        if status == "open":
            q = q.where(OPEN_SQL).order_by(CASES.c.received_at, CASES.c.id)
        else:
            if status != "all":
                q = q.where(CASES.c.status == status)
            q = q.order_by(CASES.c.id)
        if limit:
            q = q.limit(limit)
        with self.read_engine.connect() as conn:
            return [_view(r._mapping) for r in conn.execute(q)]

    def change_seq(self) -> int:
        """Cheap poll: grows whenever any case or officer changes."""
        with self.read_engine.connect() as conn:
            return conn.execute(text("SELECT change_seq FROM audit_head WHERE id = 1")).scalar_one()

    def changed_since(self, seq: int) -> list[CaseView]:
        with self.read_engine.connect() as conn:
            rows = conn.execute(
                select(CASES).where(CASES.c.updated_seq > seq).order_by(CASES.c.updated_seq)
            )
            return [_view(r._mapping) for r in rows]

    def timeline(self, case_id: int) -> list[TimelineEntry]:
        import json

        with self.read_engine.connect() as conn:
            rows = entries_for_case(conn, case_id)
        return [
            TimelineEntry(r.seq, r.at, r.action, r.operator, r.terminal, json.loads(r.detail))
            for r in rows
        ]

    def officers(self) -> list[OfficerView]:
        with self.read_engine.connect() as conn:
            live = {r.code: r for r in conn.execute(select(OFFICERS))}
            loads = dict(
                conn.execute(
                    select(CASES.c.assignee, func.count())
                    .where(OPEN_SQL)
                    .where(CASES.c.status.in_(("dispatched", "on_scene")))
                    .where(CASES.c.assignee_kind == "officer")
                    .group_by(CASES.c.assignee)
                ).all()
            )
        out = []
        for squad in self.d.squads:
            for o in squad.officers:
                r = live.get(o.code)
                out.append(
                    OfficerView(
                        code=o.code,
                        name=o.name,
                        squad=squad.code,
                        agency=o.agency,
                        group=o.group,
                        circle=o.circle,
                        role=o.role,
                        status=r.status if r else "available",
                        case_id=r.case_id if r else None,
                        grid=r.grid if r else None,
                        status_since=r.status_since if r else utcnow(),
                        load=loads.get(o.code, 0),
                    )
                )
        return out

    # ---- creating a case (phone form; intake has its own bulk path) ---------------------
    def create(
        self, fields: Mapping[str, Any], actor: Actor, now: datetime | None = None
    ) -> CaseView:
        """A case typed in by a dispatcher. Fields are already validated by the form."""
        now = now or utcnow()
        values: dict[str, Any] = {
            "source": "hotline",
            "title": "",
            "description": "",
            "location": "",
            "priority": "normal",
            "reporter": "",
            "raw": "{}",
            "received_at": now,
            "status": "new",
            **fields,
        }
        values.setdefault("external_id", f"{actor.terminal}-{uuid.uuid4().hex[:16]}")
        values.update(self.clocks.start(values))
        with self.write() as (conn, head):
            head.change_seq += 1
            values.update(
                version=1,
                updated_at=now,
                updated_by=actor.operator,
                updated_terminal=actor.terminal,
                updated_seq=head.change_seq,
            )
            case_id = conn.execute(insert(CASES).values(**values)).inserted_primary_key[0]
            append(
                conn,
                head,
                [
                    Entry(
                        now,
                        actor.operator,
                        actor.terminal,
                        "create",
                        case_id,
                        {"source": values["source"], "title": values["title"]},
                    )
                ],
            )
        return self.get(case_id)

    # ---- moves ---------------------------------------------------------------------------
    def act(
        self,
        case_id: int,
        action: str,
        actor: Actor,
        *,
        to: str | None = None,
        reason: str = "",
        into: int | None = None,
        expected_version: int | None = None,
        now: datetime | None = None,
    ) -> CaseView:
        """Apply one move; raise Refused (or Conflict / NotFound) with the reason."""
        if action not in MOVES:
            raise Refused(
                f"unknown action {action!r}; known: {', '.join(MOVES)}",
                "unknown_action",
                action=action,
            )
        reason = (reason or "").strip()
        if action in NEEDS_REASON and not reason and action != "merge":
            raise Refused(
                f"{action} needs a reason (it goes on the record)", "needs_reason", action=action
            )
        if action in NEEDS_SUPERVISOR and self.d.role_of(actor.operator) != "supervisor":
            raise Refused(
                f"{action} needs a supervisor; operator {actor.operator!r} is not one",
                "needs_supervisor",
                action=action,
                operator=actor.operator,
            )
        now = now or utcnow()
        with self.write() as (conn, head):
            row = conn.execute(select(CASES).where(CASES.c.id == case_id)).first()
            if row is None:
                raise NotFound(f"case {case_id} does not exist", "not_found", id=case_id)
            case = dict(row._mapping)
            if expected_version is not None and case["version"] != expected_version:
                raise _conflict(case)
            starts, leads_to = MOVES[action]
            if case["status"] not in starts:
                raise Refused(
                    _illegal(case, action, starts),
                    "illegal",
                    action=action,
                    id=case["id"],
                    status=case["status"],
                    allowed=list(starts),
                )
            changes, detail, officer_moves = self._plan(conn, case, action, to, reason, into, now)
            if leads_to:
                changes["status"] = leads_to
            elif leads_to == "":
                changes["status"] = case["hold_from"] or "acknowledged"
            new_case = {**case, **changes}
            # The clocks need to know how long the hold lasted.
            changes.update(self.clocks.after(action, {**new_case, "held_at": case["held_at"]}, now))
            head.change_seq += 1
            changes.update(
                version=case["version"] + 1,
                updated_at=now,
                updated_by=actor.operator,
                updated_terminal=actor.terminal,
                updated_seq=head.change_seq,
            )
            res = conn.execute(
                update(CASES)
                .where(CASES.c.id == case_id)
                .where(CASES.c.version == case["version"])
                .values(**changes)
            )
            if res.rowcount != 1:
                fresh = conn.execute(select(CASES).where(CASES.c.id == case_id)).one()
                raise _conflict(dict(fresh._mapping))
            if action == "escalate":
                enqueue(
                    conn,
                    key=f"case-{case_id}-manual-{detail['level']}-{head.seq + 1}",
                    contact=LEVELS[detail["level"]],
                    case_id=case_id,
                    now=now,
                    event=_event(
                        new_case,
                        "escalation",
                        level=detail["level"],
                        by=actor.operator,
                        reason=reason,
                    ),
                )
            for code in officer_moves:
                self._refresh_officer(conn, code, now)
            if detail.pop("_merge_target", None) is not None:
                append(
                    conn,
                    head,
                    [
                        Entry(
                            now,
                            actor.operator,
                            actor.terminal,
                            "merged_in",
                            into,
                            {"from": case_id, "reason": reason},
                        )
                    ],
                )
            if reason:
                detail.setdefault("reason", reason)
            detail["from"] = case["status"]
            detail["to"] = changes.get("status", case["status"])
            append(
                conn, head, [Entry(now, actor.operator, actor.terminal, action, case_id, detail)]
            )
        return self.get(case_id)

    def _plan(
        self,
        conn: Connection,
        case: dict[str, Any],
        action: str,
        to: str | None,
        reason: str,
        into: int | None,
        now: datetime,
    ) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
        """Column changes, record detail and the officers whose status to refresh."""
        cid = case["id"]
        ch: dict[str, Any] = {}
        detail: dict[str, Any] = {}
        prev = case["assignee"] if case["assignee_kind"] == "officer" else None
        om: set[str] = {prev} if prev else set()

        if action == "ack":
            ch["acknowledged_at"] = now
        elif action in ("dispatch", "reassign"):
            kind, code = self._assignee(to)
            if action == "reassign" and code == case["assignee"]:
                raise Refused(
                    f"case {cid} is already with {code}", "already_with", id=cid, assignee=code
                )
            if case["acknowledged_at"] is None:
                ch["acknowledged_at"] = now
            ch.update(assignee=code, assignee_kind=kind, dispatched_at=now, arrived_at=None)
            if kind == "officer":
                live = conn.execute(
                    select(OFFICERS.c.status).where(OFFICERS.c.code == code)
                ).scalar_one_or_none()
                if live == "off_duty":
                    raise Refused(
                        f"officer {code} is off duty (休息): choose another",
                        "off_duty",
                        officer=code,
                    )
                om.add(code)
            detail.update(assignee=code, kind=kind)
        elif action == "arrive":
            ch["arrived_at"] = now
        elif action == "handle":
            ch["handled_at"] = now
        elif action == "close":
            ch["closed_at"] = now
        elif action == "hold":
            ch.update(hold_from=case["status"], held_at=now)
        elif action == "resume":
            ch.update(hold_from=None, held_at=None)
            detail["paused_seconds"] = (
                round((now - case["held_at"]).total_seconds(), 3) if case["held_at"] else 0
            )
        elif action == "return":
            detail["returned_by"] = case["assignee"]
            ch.update(assignee=None, assignee_kind=None, dispatched_at=None, arrived_at=None)
        elif action == "rework":
            ch.update(handled_at=None, arrived_at=None, dispatched_at=now)
        elif action == "reopen":
            ch.update(
                closed_at=None,
                handled_at=None,
                assignee=None,
                assignee_kind=None,
                dispatched_at=None,
                arrived_at=None,
                acknowledged_at=now,
                escalation_level=0,
                escalated_at=None,
            )
        elif action == "merge":
            if into is None:
                raise Refused(
                    "merge needs the case to merge into (--into ID)", "merge_needs_target"
                )
            if into == cid:
                raise Refused(f"case {cid} cannot be merged into itself", "merge_self", id=cid)
            target = conn.execute(select(CASES.c.status).where(CASES.c.id == into)).first()
            if target is None:
                raise NotFound(f"case {into} (merge target) does not exist", "not_found", id=into)
            if target.status in END_STATUSES:
                raise Refused(
                    f"case {into} is {STATUS_WORDS[target.status]}: merge into an open case",
                    "merge_closed",
                    id=into,
                    status=target.status,
                )
            ch["merged_into"] = into
            detail.update(into=into, _merge_target=into)
        elif action == "supervise":
            ch["supervised"] = True
        elif action == "escalate":
            if case["escalation_level"] >= len(LEVELS) - 1:
                raise Refused(
                    f"case {cid} is already at the command centre (top level)", "top_level", id=cid
                )
            lvl = case["escalation_level"] + 1
            ch.update(escalation_level=lvl, escalated_at=now)
            detail.update(level=lvl, level_name=LEVELS[lvl], by_hand=True)
        return ch, detail, om

    def _assignee(self, to: str | None) -> tuple[str, str]:
        if not to:
            raise Refused("dispatch needs an officer or squad (--to 2-03)", "needs_assignee")
        if to in self.d.officers_by_code:
            return "officer", to
        if to in self.d.squads_by_code:
            return "squad", to
        for p in self.d.partners:
            if to == p.code:
                return "partner", to
        raise Refused(
            f"no officer, squad or partner team {to!r} in this deployment",
            "unknown_assignee",
            assignee=to,
        )

    def _refresh_officer(self, conn: Connection, code: str, now: datetime) -> None:
        """Derive an officer's status from the cases in their hands (on scene > en route >
        available), so a second case or a hold never leaves a stale status behind."""
        r = conn.execute(select(OFFICERS).where(OFFICERS.c.code == code)).first()
        if r is None:
            return
        mine = conn.execute(
            select(CASES.c.id, CASES.c.status, CASES.c.grid)
            .where(OPEN_SQL)
            .where(CASES.c.assignee == code)
            .where(CASES.c.assignee_kind == "officer")
            .where(CASES.c.status.in_(("dispatched", "on_scene")))
            .order_by(CASES.c.status.desc(), CASES.c.dispatched_at.desc())
        ).all()
        on_scene = [c for c in mine if c.status == "on_scene"]
        top = (on_scene or mine or [None])[0]
        status = "available" if top is None else top.status.replace("dispatched", "en_route")
        if r.status == "off_duty" and top is None:
            status = "off_duty"
        values: dict[str, Any] = {"status": status, "case_id": top.id if top else None}
        if top is not None and top.grid:
            values["grid"] = top.grid
        if (status, values["case_id"]) != (r.status, r.case_id):
            values.update(status_since=now, version=r.version + 1)
            conn.execute(update(OFFICERS).where(OFFICERS.c.code == code).values(**values))

    def set_officer_status(
        self, code: str, status: str, actor: Actor, now: datetime | None = None
    ) -> None:
        """Off duty / back on duty, from the squad panel; goes on the record."""
        if code not in self.d.officers_by_code:
            raise Refused(f"no officer {code!r} in this deployment")
        if status not in ("available", "off_duty"):
            raise Refused(f"an officer can be set available or off_duty, not {status!r}")
        now = now or utcnow()
        with self.write() as (conn, head):
            head.change_seq += 1
            conn.execute(
                update(OFFICERS)
                .where(OFFICERS.c.code == code)
                .values(status=status, status_since=now, case_id=None)
            )
            append(
                conn,
                head,
                [
                    Entry(
                        now,
                        actor.operator,
                        actor.terminal,
                        "officer_status",
                        None,
                        {"officer": code, "status": status},
                    )
                ],
            )


def _event(case: Mapping[str, Any], kind: str, **more: Any) -> dict[str, Any]:
    """A notification event as data; `sla.notify` renders it per contact format."""
    return {
        "kind": kind,
        "case_id": case["id"],
        "title": case["title"] or case["description"][:80],
        "category": case["category"],
        "grid": case["grid"],
        "status": case["status"],
        "priority": case["priority"],
        "received_at": case["received_at"],
        **more,
    }


def _view(m: Mapping[str, Any]) -> CaseView:
    return CaseView(**{k: m[k] for k in CASE_FIELDS})


def _conflict(case: Mapping[str, Any]) -> Conflict:
    at = case["updated_at"]
    when = at.strftime("%H:%M:%S") if at else "?"
    return Conflict(
        f"case {case['id']} was changed by {case['updated_by'] or '?'} "
        f"(terminal {case['updated_terminal'] or '?'}) at {when} UTC; it is now "
        f"{STATUS_WORDS.get(case['status'], case['status'])} — look again before acting",
        "conflict",
        id=case["id"],
        by=case["updated_by"] or "?",
        terminal=case["updated_terminal"] or "?",
        at=at,
        status=case["status"],
    )


def _illegal(case: Mapping[str, Any], action: str, starts: Sequence[str]) -> str:
    allowed = " or ".join(STATUS_WORDS[s].split(" (")[0] for s in starts)
    return (
        f"cannot {action} case {case['id']}: it is {STATUS_WORDS[case['status']]}; "
        f"{action} needs a case that is {allowed}"
    )
