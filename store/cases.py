"""The case lifecycle: the only code that changes a case.

Every move is checked against the registry (store/moves.py: where it may start, what it needs,
who may make it), planned by its own planner (PLANNERS), guarded by an optimistic version check,
applied together with its officer-status effect and appended to the record, in one
transaction. A refused move raises `Refused` with a reason a dispatcher can read.
"""

from __future__ import annotations

import copy
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, func, insert, select, text, update
from tafang.store.clocks import ClockRules
from tafang.store.config import LEVELS, Deployment
from tafang.store.db import insert_new, pipelined, reader
from tafang.store.duty import DUTIES, ON_DUTY, shown_status, takes_cases
from tafang.store.models import END_STATUSES, Case, Officer
from tafang.store.moves import (
    BEFORE_HOLD,
    CREATE_ROLES,
    FIELD,
    MOVES,
    SEPARATED,
    STATUS_WORDS,
    Move,
    Refusal,
    duty_refusal,
    refusal_for,
)
from tafang.store.outbox import enqueue
from tafang.store.record import (
    AUDIT,
    Entry,
    Head,
    append,
    entries_for_case,
    lock_head,
    save_head,
)
from tafang.store.record_key import RecordKey, RecordKeyError, load_record_key
from tafang.store.tell import TOLD, tell_officer
from tafang.store.views import CASE_FIELDS, CaseView, OfficerView, TimelineEntry

CASES = Case.__table__
OFFICERS = Officer.__table__
OPEN_SQL = text("status NOT IN ('closed', 'void', 'merged')")

# The statements of a move, built once: a statement object reused keeps its cache key, so
# SQLAlchemy finds the compiled form without rebuilding and re-hashing the expression (most
# of a move's CPU otherwise). Values go in as execute parameters.
_CASE_BY_ID = select(CASES).where(CASES.c.id == bindparam("case_id"))
_SAVE_CASE = (
    update(CASES)
    .where(CASES.c.id == bindparam("b_id"))
    .where(CASES.c.version == bindparam("b_version"))
)
"""`_save`'s update; the columns set are the parameters' other keys."""
_CASE_COLUMNS = frozenset(CASES.c.keys())
_OFFICER_BY_CODE = select(OFFICERS).where(OFFICERS.c.code == bindparam("code"))
_SET_OFFICER = update(OFFICERS).where(OFFICERS.c.code == bindparam("b_code"))
_IN_HAND = (
    select(CASES.c.id, CASES.c.status, CASES.c.grid)
    .where(OPEN_SQL)
    .where(CASES.c.assignee == bindparam("code"))
    .where(CASES.c.assignee_kind == "officer")
    .where(CASES.c.status.in_(("dispatched", "on_scene")))
    .order_by(CASES.c.status.desc(), CASES.c.dispatched_at.desc())
)


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
    """Who acts, from where. `field`: an officer authenticated by their key through
    `tafang serve`; their role is the officer's (moves.FIELD), not the roster's."""

    operator: str = "system"
    terminal: str = socket.gethostname()
    field: bool = False


class Store:
    """The store of one deployment: reads return plain views, moves go through `act`."""

    def __init__(
        self, engine: Engine, deployment: Deployment, clocks: ClockRules | None = None
    ) -> None:
        self.engine = engine
        self.read_engine = reader(engine)
        self.d = deployment
        self.clocks = clocks or ClockRules(deployment)
        self.opened_at = utcnow()  # the "since" of officers the roster has no row for yet

    def on_engine(self, engine: Engine) -> Store:
        """This store writing through `engine` (the sweep's own, store/db.py `sweep_engine`:
        its sessions decide how its commits wait for the WAL flush)."""
        s = copy.copy(self)
        s.engine = engine
        return s

    # ---- transactions ----------------------------------------------------------------
    @contextmanager
    def write(
        self,
        *,
        pipeline: bool = False,
        then: Callable[[Connection], None] | None = None,
    ) -> Iterator[tuple[Connection, Head]]:
        """One write transaction with the record's head locked (serialises writers).

        On PostgreSQL a move of change_seq is announced on `tafang_changes` (see
        store/changes.py); NOTIFY is transactional, so listeners hear it at commit.
        `pipeline`: the
        statements run `store.db.pipelined` (the sweep's: fewer round trips). `then`: a last
        step after the head's save, before the commit (pipelined, a read there takes the
        writes and the save along in its round trip).
        """
        with self.engine.begin() as conn, pipelined(conn) if pipeline else nullcontext():
            try:
                head = lock_head(conn, self.record_key, self._head_ask(conn))
            except RecordKeyError as e:  # keyed record, no key or another one: no plain hole
                raise Refused(str(e), "record_key") from e
            before = head.change_seq
            yield conn, head
            moved = head.change_seq != before and conn.dialect.name == "postgresql"
            save_head(conn, head, notify="tafang_changes" if moved else None)  # changes.CHANNEL
            if then is not None:
                then(conn)

    def _head_ask(self, conn: Connection) -> Any:
        """A column asked with the head's lock (None: nothing); the sweep's fence."""
        return None

    @cached_property
    def record_key(self) -> RecordKey | None:
        """The record key (store/record_key.py), read once; None: a plain chain."""
        try:
            return load_record_key(self.d.record.key_file)
        except RecordKeyError as e:
            raise Refused(str(e), "record_key") from e

    # ---- roster --------------------------------------------------------------------------
    def sync_roster(self) -> int:
        """Give every officer of the config a live-state row (new officers start available).

        An explicit step (`db upgrade`, daemon start, console, demo): opening a store never
        writes. A move that needs a missing row creates it itself (`_officer_row`).
        Returns how many rows were added.
        """
        with self.read_engine.connect() as conn:
            have = set(conn.execute(select(OFFICERS.c.code)).scalars())
        now = utcnow()
        missing = [
            _roster_row(s.code, o.code, now)
            for s in self.d.squads
            for o in s.officers
            if o.code not in have
        ]
        if missing:
            with self.engine.begin() as conn:  # another process may be doing the same
                conn.execute(insert_new(conn, OFFICERS), missing)
        return len(missing)

    def _officer_row(self, conn: Connection, code: str, now: datetime) -> Any:
        """The officer's live row, created (available) if the roster was never synced."""
        r = conn.execute(_OFFICER_BY_CODE, {"code": code}).first()
        if r is None and code in self.d.officers_by_code:
            squad = self.d.officers_by_code[code][0].code
            conn.execute(insert_new(conn, OFFICERS, _roster_row(squad, code, now)))
            r = conn.execute(_OFFICER_BY_CODE, {"code": code}).first()
        return r

    # ---- reads -------------------------------------------------------------------------
    def get(self, case_id: int) -> CaseView:
        with self.read_engine.connect() as conn:
            row = conn.execute(_CASE_BY_ID, {"case_id": case_id}).first()
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
                        status=shown_status(r.status, r.duty) if r else "available",
                        case_id=r.case_id if r else None,
                        grid=r.grid if r else None,
                        status_since=r.status_since if r else self.opened_at,
                        load=loads.get(o.code, 0),
                        duty=r.duty if r else ON_DUTY,
                        duty_since=r.duty_since if r else None,
                    )
                )
        return out

    # ---- creating a case (phone form; intake has its own bulk path) ---------------------
    def create(
        self, fields: Mapping[str, Any], actor: Actor, now: datetime | None = None
    ) -> CaseView:
        """A case typed in by a dispatcher. Fields are already validated by the form."""
        self.may(CREATE_ROLES, "create", actor)
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
        at: datetime | None = None,
        also: Callable[[Connection, Head], None] | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> CaseView:
        """Apply one move (`apply`: the arguments are its) and return the case as it now
        is; raise Refused (or Conflict / NotFound) with the reason."""
        self.apply(
            case_id,
            action,
            actor,
            to=to,
            reason=reason,
            into=into,
            expected_version=expected_version,
            now=now,
            at=at,
            also=also,
            detail=detail,
        )
        return self.get(case_id)

    def apply(
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
        at: datetime | None = None,
        also: Callable[[Connection, Head], None] | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Apply one move, not reading the case back (the field API answers from the row
        its `also` reads in the transaction); raise Refused (or Conflict / NotFound).

        `at`: when it happened, as reported from the field (arrive / handle stamp it, within
        the case's own times and not in the future); the record is written at `now`.
        `also`: more writes in the move's transaction (the field API's request id), after
        the case's own. `detail`: more for the record entry (position, photo URLs)."""
        reason = (reason or "").strip()
        move = self._allowed(action, actor)
        now = now or utcnow()
        with self.write() as (conn, head):
            case = _load(conn, case_id, expected_version)
            self._check(conn, move, action, actor, case, reason)
            plan = _plan(move, Ask(conn, self.d, case, to, reason, into, now, at))
            changes = plan.changes
            # The clocks need to know how long the hold lasted.
            after = {**case, **changes, "held_at": case["held_at"]}
            changes.update(self.clocks.after(action, after, now))
            self._save(conn, head, case, changes, actor, now)
            if also is not None:
                also(conn, head)
            self._notices(conn, head, action, {**case, **changes}, plan.detail, actor, reason, now)
            for code in plan.officers:
                self._refresh_officer(conn, code, now)
            entries = [Entry(now, actor.operator, actor.terminal, e, c, d) for e, c, d in plan.also]
            detail = {**(detail or {}), **plan.detail}
            if reason:
                detail.setdefault("reason", reason)
            detail["from"] = case["status"]
            detail["to"] = changes.get("status", case["status"])
            entries.append(Entry(now, actor.operator, actor.terminal, action, case_id, detail))
            append(conn, head, entries)

    def _notices(
        self,
        conn: Connection,
        head: Head,
        action: str,
        after: dict[str, Any],
        detail: Mapping[str, Any],
        actor: Actor,
        reason: str,
        now: datetime,
    ) -> None:
        """Who hears of the move, queued in its transaction: the escalation's contact, the
        officer told of a dispatch, reassignment, rework or escalation."""
        if action == "escalate":
            _enqueue_escalation(conn, self.d, head, after, detail, actor, reason, now)
        if action in TOLD:
            tell_officer(
                conn,
                self.d,
                action,
                after,
                key=f"tell-{after['id']}-{action}-{head.seq + 1}",
                by=actor.operator,
                now=now,
                reason=reason,
                level=detail.get("level"),
            )

    def _check(
        self,
        conn: Connection,
        move: Move,
        action: str,
        actor: Actor,
        case: dict[str, Any],
        reason: str,
    ) -> None:
        """Refused unless the case's state starts the move, the actor may make it on this
        case, and a move that needs a reason has one."""
        if case["status"] not in move.starts:
            raise Refused(
                _illegal(case, action, move.starts),
                "illegal",
                action=action,
                id=case["id"],
                status=case["status"],
                allowed=list(move.starts),
            )
        self._permitted(conn, move, actor, case)
        if move.reason and not reason:
            msg = f"{action} needs a reason (it goes on the record)"
            raise Refused(msg, "needs_reason", action=action)

    def role(self, actor: Actor) -> str | None:
        """The actor's role from the roster; None = not on the roster (reads only). An
        officer in the field (`actor.field`) is an officer of the deployment's squads."""
        if actor.field:
            return "officer" if actor.operator in self.d.officers_by_code else None
        return self.d.role_of(actor.operator)

    def _allowed(self, action: str, actor: Actor) -> Move:
        """The move, if this operator's role may make it at all (case and reason aside)."""
        move = MOVES.get(action)
        if move is None:
            raise Refused(
                f"unknown action {action!r}; known: {', '.join(MOVES)}",
                "unknown_action",
                action=action,
            )
        _refuse(refusal_for(move, self.role(actor), actor.operator))
        return move

    def _permitted(
        self, conn: Connection, move: Move, actor: Actor, case: Mapping[str, Any]
    ) -> None:
        """The rules that need the case: escalation height by role, and 监管分离 for close
        (the operators who dispatched or handled it, from the record, may not close it)."""
        hands = _hands(conn, case["id"]) if move.name in SEPARATED else frozenset()
        level = case["escalation_level"] + 1 if move.name == "escalate" else None
        role = self.role(actor)
        mine = role not in FIELD or _in_hands_of(self.d, case, actor.operator)
        r = refusal_for(move, role, actor.operator, to_level=level, hands=hands, mine=mine)
        if r is not None:
            raise Refused(r.message, r.code, id=case["id"], **r.params)

    def may(self, roles: frozenset[str], what: str, actor: Actor) -> None:
        """A write that is not a move (create, officer status): the same role rule."""
        rule = Move(what, (), None, what, roles=roles)
        _refuse(refusal_for(rule, self.role(actor), actor.operator))

    def _save(
        self,
        conn: Connection,
        head: Head,
        case: dict[str, Any],
        changes: dict[str, Any],
        actor: Actor,
        now: datetime,
    ) -> None:
        """Write the changes if the case is still at the version read; else Conflict."""
        head.change_seq += 1
        changes.update(
            version=case["version"] + 1,
            updated_at=now,
            updated_by=actor.operator,
            updated_terminal=actor.terminal,
            updated_seq=head.change_seq,
        )
        unknown = changes.keys() - _CASE_COLUMNS  # parameters would ignore them silently
        if unknown:
            raise ValueError(f"no such case column: {', '.join(sorted(unknown))}")
        params = {**changes, "b_id": case["id"], "b_version": case["version"]}
        res = conn.execute(_SAVE_CASE, params)
        if res.rowcount != 1:
            fresh = conn.execute(_CASE_BY_ID, {"case_id": case["id"]}).one()
            raise _conflict(dict(fresh._mapping))

    def _refresh_officer(self, conn: Connection, code: str, now: datetime) -> None:
        """Derive an officer's status from the cases in their hands (on scene > en route >
        available), so a second case or a hold never leaves a stale status behind."""
        r = self._officer_row(conn, code, now)
        if r is None:
            return
        mine = conn.execute(_IN_HAND, {"code": code}).all()
        on_scene = [c for c in mine if c.status == "on_scene"]
        top = (on_scene or mine or [None])[0]
        status = "available" if top is None else top.status.replace("dispatched", "en_route")
        values: dict[str, Any] = {"status": status, "case_id": top.id if top else None}
        if top is not None and top.grid:
            values["grid"] = top.grid
        if (status, values["case_id"]) != (r.status, r.case_id):
            values.update(status_since=now, version=r.version + 1, b_code=code)
            conn.execute(_SET_OFFICER, values)

    def set_officer_status(
        self, code: str, duty: str, actor: Actor, now: datetime | None = None
    ) -> str:
        """Set an officer on duty, off duty or on a break (store/duty.py), on the record.

        `duty` is a state of DUTIES (`available` is read as on duty). Going off duty or on a
        break is refused while cases are in the officer's hands (reassign them first).
        Returns the duty state before the change."""
        if code not in self.d.officers_by_code:
            raise Refused(
                f"no officer {code!r} in this deployment", "unknown_officer", officer=code
            )
        _refuse(duty_refusal(self.role(actor), actor.operator, code))
        duty = ON_DUTY if duty == "available" else duty
        if duty not in DUTIES:
            raise Refused(f"an officer's duty is one of {', '.join(DUTIES)}, not {duty!r}")
        now = now or utcnow()
        with self.write() as (conn, head):
            r = self._officer_row(conn, code, now)
            if duty != ON_DUTY:
                _idle_or_refuse(conn, code, duty)
            if r.duty == duty:
                return duty
            head.change_seq += 1
            conn.execute(
                update(OFFICERS)
                .where(OFFICERS.c.code == code)
                .values(duty=duty, duty_since=now, version=r.version + 1)
            )
            detail = {"officer": code, "duty": duty, "was": r.duty}
            entry = Entry(now, actor.operator, actor.terminal, "officer_status", None, detail)
            append(conn, head, [entry])
        return r.duty


def _idle_or_refuse(conn: Connection, code: str, duty: str) -> None:
    """An officer with cases in hand may not go off duty or on a break: hand them over."""
    q = select(CASES.c.id).where(OPEN_SQL).where(CASES.c.assignee == code)
    q = q.where(CASES.c.assignee_kind == "officer")
    q = q.where(CASES.c.status.in_(("dispatched", "on_scene"))).order_by(CASES.c.id)
    held = list(conn.execute(q).scalars())
    if held:
        ids = ", ".join(str(i) for i in held)
        raise Refused(
            f"officer {code} still has case {ids} in hand: reassign or finish it before "
            f"setting {duty.replace('_', ' ')}",
            "duty_busy",
            officer=code,
            ids=ids,
        )


def _refuse(r: Refusal | None) -> None:
    if r is not None:
        raise Refused(r.message, r.code, **r.params)


def _hands(conn: Connection, case_id: int) -> frozenset[str]:
    """Who dispatched, reassigned or recorded the handling of a case (from the record)."""
    q = select(AUDIT.c.operator).where(AUDIT.c.case_id == case_id)
    q = q.where(AUDIT.c.action.in_(("dispatch", "reassign", "handle"))).distinct()
    return frozenset(conn.execute(q).scalars())


def _in_hands_of(d: Deployment, case: Mapping[str, Any], officer: str) -> bool:
    """Is the case with this officer, or with their squad?"""
    kind, who = case["assignee_kind"], case["assignee"]
    found = d.officers_by_code.get(officer)
    return (kind == "officer" and who == officer) or (
        kind == "squad" and found is not None and found[0].code == who
    )


def handler_of(conn: Connection, case_id: int) -> str | None:
    """The operator who last recorded `handle` on a case (where a rework goes back to)."""
    q = select(AUDIT.c.operator).where(AUDIT.c.case_id == case_id)
    q = q.where(AUDIT.c.action == "handle").order_by(AUDIT.c.seq.desc()).limit(1)
    return conn.execute(q).scalar_one_or_none()


def _roster_row(squad: str, code: str, now: datetime) -> dict[str, Any]:
    return dict(code=code, squad=squad, status="available", status_since=now, version=1)


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


# ---- planners: one per move that changes more than its status ------------------------------
@dataclass(frozen=True, slots=True)
class Ask:
    """What a planner sees: the case as read in the move's transaction and the arguments."""

    conn: Connection
    d: Deployment
    case: dict[str, Any]
    to: str | None
    reason: str
    into: int | None
    now: datetime
    at: datetime | None = None  # when it happened, as reported from the field


@dataclass(slots=True)
class Plan:
    """What a planner decides: column changes, the record's detail, officers whose status
    to refresh, and further record entries (action, case id, detail)."""

    changes: dict[str, Any] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)
    officers: set[str] = field(default_factory=set)
    also: list[tuple[str, int | None, dict[str, Any]]] = field(default_factory=list)


def _nothing(a: Ask, p: Plan) -> None:
    """void and note: the status (if any) is all that changes."""


def _stamp(column: str) -> Callable[[Ask, Plan], None]:
    def plan(a: Ask, p: Plan) -> None:
        p.changes[column] = a.now if a.at is None else _reported(a)
        if a.at is not None:
            p.detail["reported_at"] = p.changes[column].isoformat()

    return plan


FIELD_SKEW_SECONDS = 60
"""A time reported from the field may run this far ahead of ours (phone clocks); it is then
taken as now. Further ahead it is refused."""


def _reported(a: Ask) -> datetime:
    """The reported time, bounded: not in the future, not before the stage began (dispatch
    for arrival, arrival for handling)."""
    at = a.at
    assert at is not None
    since_col = "arrived_at" if a.case["status"] == "on_scene" else "dispatched_at"
    since = a.case[since_col] or a.case["received_at"]
    if (at - a.now).total_seconds() > FIELD_SKEW_SECONDS:
        raise Refused(f"reported time {at.isoformat()} is in the future", "reported_future", at=at)
    if at < since:
        word = since_col.removesuffix("_at")
        raise Refused(
            f"reported time {at.isoformat()} is before the case was {word} ({since.isoformat()})",
            "reported_early",
            at=at,
            since=since,
        )
    return min(at, a.now)


def _dispatch(a: Ask, p: Plan) -> None:
    kind, code = _assignee(a.d, a.to)
    if a.case["acknowledged_at"] is None:
        p.changes["acknowledged_at"] = a.now
    p.changes.update(assignee=code, assignee_kind=kind, dispatched_at=a.now, arrived_at=None)
    if kind == "officer":
        duty = a.conn.execute(
            select(OFFICERS.c.duty).where(OFFICERS.c.code == code)
        ).scalar_one_or_none()
        if duty is not None and not takes_cases(duty):
            word = duty.replace("_", " ")
            raise Refused(f"officer {code} is {word}: choose another", duty, officer=code)
        p.officers.add(code)
    p.detail.update(assignee=code, kind=kind)


def _reassign(a: Ask, p: Plan) -> None:
    cid = a.case["id"]
    _, code = _assignee(a.d, a.to)
    if code == a.case["assignee"]:
        raise Refused(f"case {cid} is already with {code}", "already_with", id=cid, assignee=code)
    _dispatch(a, p)


def _hold(a: Ask, p: Plan) -> None:
    p.changes.update(hold_from=a.case["status"], held_at=a.now)


def _resume(a: Ask, p: Plan) -> None:
    held_at = a.case["held_at"]
    p.changes.update(hold_from=None, held_at=None)
    p.detail["paused_seconds"] = round((a.now - held_at).total_seconds(), 3) if held_at else 0


def _return(a: Ask, p: Plan) -> None:
    p.detail["returned_by"] = a.case["assignee"]
    p.changes.update(assignee=None, assignee_kind=None, dispatched_at=None, arrived_at=None)


def _rework(a: Ask, p: Plan) -> None:
    """Back to the same hands: the assignee keeps the case; the record names the operator
    who recorded the handling, whose work failed the check."""
    p.changes.update(handled_at=None, arrived_at=None, dispatched_at=a.now)
    p.detail.update(back_to=a.case["assignee"], handler=handler_of(a.conn, a.case["id"]))


def _reopen(a: Ask, p: Plan) -> None:
    p.changes.update(
        closed_at=None,
        handled_at=None,
        assignee=None,
        assignee_kind=None,
        dispatched_at=None,
        arrived_at=None,
        acknowledged_at=a.now,
        escalation_level=0,
        escalated_at=None,
    )


def _merge(a: Ask, p: Plan) -> None:
    cid, into = a.case["id"], a.into
    if into is None:
        raise Refused("merge needs the case to merge into (--into ID)", "merge_needs_target")
    if into == cid:
        raise Refused(f"case {cid} cannot be merged into itself", "merge_self", id=cid)
    target = a.conn.execute(select(CASES.c.status).where(CASES.c.id == into)).first()
    if target is None:
        raise NotFound(f"case {into} (merge target) does not exist", "not_found", id=into)
    if target.status in END_STATUSES:
        raise Refused(
            f"case {into} is {STATUS_WORDS[target.status]}: merge into an open case",
            "merge_closed",
            id=into,
            status=target.status,
        )
    p.changes["merged_into"] = into
    p.detail["into"] = into
    p.also.append(("merged_in", into, {"from": cid, "reason": a.reason}))


def _supervise(a: Ask, p: Plan) -> None:
    p.changes["supervised"] = True


def _escalate(a: Ask, p: Plan) -> None:
    cid, level = a.case["id"], a.case["escalation_level"]
    if level >= len(LEVELS) - 1:
        raise Refused(
            f"case {cid} is already at the command centre (top level)", "top_level", id=cid
        )
    p.changes.update(escalation_level=level + 1, escalated_at=a.now)
    p.detail.update(level=level + 1, level_name=LEVELS[level + 1], by_hand=True)


PLANNERS: dict[str, Callable[[Ask, Plan], None]] = {
    "ack": _stamp("acknowledged_at"),
    "dispatch": _dispatch,
    "reassign": _reassign,
    "arrive": _stamp("arrived_at"),
    "handle": _stamp("handled_at"),
    "close": _stamp("closed_at"),
    "hold": _hold,
    "resume": _resume,
    "return": _return,
    "rework": _rework,
    "reopen": _reopen,
    "void": _nothing,
    "merge": _merge,
    "supervise": _supervise,
    "escalate": _escalate,
    "note": _nothing,
    "confirm": _nothing,
    "support": _nothing,
}
"""Move name -> its planner: checks the arguments against the case and fills a Plan."""


def _plan(move: Move, a: Ask) -> Plan:
    """The move's own planner, then the state it leads to."""
    case = a.case
    plan = Plan(officers={case["assignee"]} if case["assignee_kind"] == "officer" else set())
    PLANNERS[move.name](a, plan)
    if move.leads_to == BEFORE_HOLD:
        plan.changes["status"] = case["hold_from"] or "acknowledged"
    elif move.leads_to:
        plan.changes["status"] = move.leads_to
    return plan


def _assignee(d: Deployment, to: str | None) -> tuple[str, str]:
    if not to:
        raise Refused("dispatch needs an officer or squad (--to 2-03)", "needs_assignee")
    if to in d.officers_by_code:
        return "officer", to
    if to in d.squads_by_code:
        return "squad", to
    if any(to == p.code for p in d.partners):
        return "partner", to
    raise Refused(
        f"no officer, squad or partner team {to!r} in this deployment",
        "unknown_assignee",
        assignee=to,
    )


def _load(conn: Connection, case_id: int, expected_version: int | None) -> dict[str, Any]:
    row = conn.execute(_CASE_BY_ID, {"case_id": case_id}).first()
    if row is None:
        raise NotFound(f"case {case_id} does not exist", "not_found", id=case_id)
    case = dict(row._mapping)
    if expected_version is not None and case["version"] != expected_version:
        raise _conflict(case)
    return case


def _enqueue_escalation(
    conn: Connection,
    d: Deployment,
    head: Head,
    case: Mapping[str, Any],
    detail: Mapping[str, Any],
    actor: Actor,
    reason: str,
    now: datetime,
) -> None:
    """A hand escalation notifies the new level's duty contact, once (idempotency key)."""
    enqueue(
        conn,
        key=f"case-{case['id']}-manual-{detail['level']}-{head.seq + 1}",
        contact=d.contact_name(detail["level"], case["grid"]),
        case_id=case["id"],
        now=now,
        event=_event(
            case,
            "escalation",
            level=detail["level"],
            circle=d.circle_at(detail["level"], case["grid"]),
            by=actor.operator,
            reason=reason,
        ),
    )
