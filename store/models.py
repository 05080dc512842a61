"""Tables of the store (SQLModel). Times are aware datetimes stored as UTC; shown local.

Changing a table means a new Alembic revision in `store/migrations/versions/`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

OPEN_STATUSES = ("new", "acknowledged", "dispatched", "on_scene", "handled", "held")
END_STATUSES = ("closed", "void", "merged")
STATUSES = OPEN_STATUSES + END_STATUSES
CLOCKS = ("respond", "dispatch", "arrive", "resolve")

_OPEN_SQL = "status NOT IN ('closed', 'void', 'merged')"


class Case(SQLModel, table=True):
    """One case (案卷). `version` guards concurrent changes (optimistic check)."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("source", "external_id", name="uq_case_source_external"),
        # Open cases are few beside millions of closed ones: partial indexes keep them cheap.
        Index(
            "ix_cases_open_received",
            "received_at",
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
        Index(
            "ix_cases_next_check",
            "next_check_at",
            sqlite_where=text("next_check_at IS NOT NULL"),
            postgresql_where=text("next_check_at IS NOT NULL"),
        ),
        Index("ix_cases_updated", "updated_seq"),
        Index("ix_cases_received", "received_at"),  # period reports (migration 0007)
        Index("ix_cases_closed", "closed_at"),  # the day's counts (migration 0011)
        Index("ix_cases_handled", "handled_at"),
        Index(
            "ix_cases_open_assignee",
            "assignee",
            sqlite_where=text(_OPEN_SQL),
            postgresql_where=text(_OPEN_SQL),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=64)
    external_id: str = Field(max_length=200)
    title: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    category: str | None = None  # known category code, or None (see category_raw)
    grid: str | None = None  # known grid code, or None (see grid_raw)
    location: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    priority: str = "normal"
    reporter: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    lat: float | None = None
    lon: float | None = None
    reported_at: datetime | None = None
    received_at: datetime
    # Raw values that could not be used, and the unknown fields of the record (JSON text).
    raw: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    triage: bool = False
    triage_reason: str = ""

    status: str = Field(default="new", max_length=16)
    hold_from: str | None = None  # status to resume to after hold
    assignee: str | None = None  # officer or squad code
    assignee_kind: str | None = None  # "officer" | "squad"
    escalation_level: int = 0  # 0 = grid … 4 = command centre
    supervised: bool = False  # 督办 flag
    merged_into: int | None = None

    acknowledged_at: datetime | None = None
    dispatched_at: datetime | None = None
    arrived_at: datetime | None = None
    handled_at: datetime | None = None
    closed_at: datetime | None = None
    held_at: datetime | None = None

    # SLA deadlines (UTC), set by the clock policy; None = clock not running / met.
    respond_due: datetime | None = None
    dispatch_due: datetime | None = None
    arrive_due: datetime | None = None
    resolve_due: datetime | None = None
    # When the escalation sweep must look at this case next (None = nothing pending).
    next_check_at: datetime | None = None
    escalated_at: datetime | None = None  # when the case last went up a level

    version: int = 1
    updated_at: datetime
    updated_by: str = ""
    updated_terminal: str = ""
    # Global change counter: terminals poll `max(updated_seq)` to see changes cheaply.
    updated_seq: int = 0
    # 自查自处: found and handled on the spot by an officer on patrol (migration 0006)
    self_found: bool = Field(default=False, sa_column_kwargs={"server_default": text("false")})


class Officer(SQLModel, table=True):
    """An officer's live state; the roster itself comes from config."""

    __tablename__ = "officers"

    code: str = Field(primary_key=True, max_length=32)
    squad: str = Field(max_length=32)
    status: str = Field(default="available", max_length=16)
    case_id: int | None = None
    grid: str | None = None  # where the officer is (last case's grid)
    status_since: datetime
    version: int = 1
    # On duty, off duty or on break (migration 0005; store/duty.py): whether the officer may
    # be sent at all. `status` above is what the cases in hand make of them.
    duty: str = Field(default="on_duty", max_length=16)
    duty_since: datetime | None = None


class AuditEntry(SQLModel, table=True):
    """The record (执法全过程记录): append-only, each row hashes the previous one."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_case", "case_id"),)

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(unique=True)  # 1, 2, 3 … without gaps
    at: datetime
    operator: str
    terminal: str
    action: str
    case_id: int | None = None
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False, default="{}"))
    prev_hash: str
    hash: str


class ChainHead(SQLModel, table=True):
    """One row: the last seq and hash of the record; locking it serialises appends."""

    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = ""
    change_seq: int = 0  # last `cases.updated_seq` handed out
    # The record key's binding (migration 0010, store/record.py): the first keyed entry, the
    # key's id and its MAC of that seq; NULL while the record is a plain chain.
    keyed_from: int | None = None
    key_id: str | None = Field(default=None, max_length=32)
    key_mark: str | None = Field(default=None, max_length=64)


class DeadLetter(SQLModel, table=True):
    """An intake line that could not be a case, kept with its reason."""

    __tablename__ = "dead_letters"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime
    origin: str  # file name or feed
    line_no: int | None = None
    reason: str
    raw: str = Field(sa_column=Column(Text, nullable=False))


class Escalation(SQLModel, table=True):
    """One (case, clock, level) escalation; the unique key makes it happen once."""

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("case_id", "clock", "level", name="uq_escalation"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(index=True)
    clock: str = Field(max_length=16)
    level: int
    due_at: datetime
    fired_at: datetime
    lateness_ms: float
    by: str = "daemon"


class Outbox(SQLModel, table=True):
    """A notification to deliver at least once; written in the escalation's transaction."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "next_attempt_at",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, max_length=128)  # Idempotency-Key
    contact: str = Field(max_length=32)  # contact level name
    case_id: int | None = None
    payload: str = Field(sa_column=Column(Text, nullable=False))  # JSON
    status: str = Field(default="pending", max_length=16)  # pending | sent | given_up
    attempts: int = 0
    next_attempt_at: datetime
    last_error: str = ""
    created_at: datetime
    sent_at: datetime | None = None
    # Retried until delivered or a person gives up on it (migration 0009; on the record)
    given_up_at: datetime | None = None
    given_up_by: str | None = Field(default=None, max_length=32)
    give_up_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class FeedCursor(SQLModel, table=True):
    __tablename__ = "feed_cursors"

    feed: str = Field(primary_key=True, max_length=64)
    cursor: str = ""
    updated_at: datetime
    failures: int = 0
    last_error: str = ""
    next_poll_at: datetime | None = None  # when the poller should fetch it next (backoff)


class NotifySend(SQLModel, table=True):
    """One message sent (or about to be) to a contact: the rate limit's rolling window.

    Kept in the store, not in memory, so that a restart or a second daemon sees the same
    window. Rows older than a few minutes are pruned by the delivery job.
    """

    __tablename__ = "notify_sends"
    __table_args__ = (Index("ix_notify_sends_contact_at", "contact", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    contact: str = Field(max_length=32)  # contact level name
    at: datetime
    key: str = Field(default="", max_length=128)  # Idempotency-Key of the message


class Heartbeat(SQLModel, table=True):
    """The daemon writes here; the console shows 'daemon down since …' from it."""

    __tablename__ = "heartbeats"

    name: str = Field(primary_key=True, max_length=64)
    at: datetime
    started_at: datetime
    pid: int = 0
    host: str = ""
    info: str = ""


# ---- issue 12: history import (0007) ----------------------------------------------------------
class CaseHistory(SQLModel, table=True):
    """A case brought in by `tafang ingest --history`: who did each stage before Tafang, and
    the counts the record cannot show (its moves happened elsewhere). Its row marks the case
    as imported; live moves made afterwards are on the record as usual."""

    __tablename__ = "case_history"

    case_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    origin: str = Field(default="", max_length=200)
    imported_at: datetime
    acknowledged_by: str = Field(default="", max_length=32)
    dispatched_by: str = Field(default="", max_length=32)
    arrived_by: str = Field(default="", max_length=32)
    handled_by: str = Field(default="", max_length=32)
    closed_by: str = Field(default="", max_length=32)
    returns: int = 0  # 回退
    reworks: int = 0  # 返工
    extensions: int = 0  # 延期 / 挂账
    supervisions: int = 0  # 督办


# ---- issue 12: enterprises, joint inspections, risk points, partner items (0008) -------------
class Enterprise(SQLModel, table=True):
    """An enterprise of the register (企业库), keyed by its unified social credit code."""

    __tablename__ = "enterprises"

    id: int | None = Field(default=None, primary_key=True)
    credit_code: str = Field(max_length=18, unique=True)
    name: str = Field(sa_column=Column(Text, nullable=False))
    grid: str | None = Field(default=None, max_length=32)
    address: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    risk_grade: str = Field(default="B", max_length=1)  # A (low risk) … D (high)
    contact: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    updated_at: datetime


class InspectionPlan(SQLModel, table=True):
    """One planned visit to an enterprise: departments, officers, a window; items apart.

    A plan merged into another (进一次门、查多项事) keeps its row with status `merged` and
    `merged_into`; a visit is a plan that was not merged away."""

    __tablename__ = "inspection_plans"
    __table_args__ = (Index("ix_inspection_plans_enterprise", "enterprise_id"),)

    id: int | None = Field(default=None, primary_key=True)
    enterprise_id: int
    title: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    departments: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    officers: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    window_from: datetime
    window_to: datetime
    status: str = Field(default="planned", max_length=16)  # planned | merged | done | cancelled
    merged_into: int | None = None
    visited_at: datetime | None = None
    created_at: datetime
    created_by: str = Field(default="", max_length=32)
    version: int = 1


class InspectionItem(SQLModel, table=True):
    """One checklist item of a plan, with its result once inspected."""

    __tablename__ = "inspection_items"
    __table_args__ = (Index("ix_inspection_items_plan", "plan_id"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int
    department: str = Field(max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))
    result: str = Field(default="", max_length=8)  # "" | pass | fail | na
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    checked_by: str = Field(default="", max_length=32)
    checked_at: datetime | None = None


class InspectionMerge(SQLModel, table=True):
    """A proposal to merge a new plan into an overlapping one, and its decision."""

    __tablename__ = "inspection_merges"
    __table_args__ = (UniqueConstraint("plan_id", "other_id", name="uq_inspection_merge"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int  # the newer plan
    other_id: int  # the plan it would join
    status: str = Field(default="proposed", max_length=16)  # proposed | accepted | declined
    proposed_at: datetime
    decided_at: datetime | None = None
    decided_by: str = Field(default="", max_length=32)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))


class RiskPoint(SQLModel, table=True):
    """A risk point (风险点) in a grid, of one class, checked every `every_days` days."""

    __tablename__ = "risk_points"
    __table_args__ = (Index("ix_risk_points_grid", "grid"),)

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True)
    name: str = Field(sa_column=Column(Text, nullable=False))
    grid: str = Field(max_length=32)
    risk_class: str = Field(max_length=16)
    enterprise_id: int | None = None
    address: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    every_days: int = 30
    next_check_at: datetime | None = None
    last_case_id: int | None = None
    active: bool = True
    updated_at: datetime


class PartnerItems(SQLModel, table=True):
    """Items a partner team handled on a case (bikes moved); the last count given wins."""

    __tablename__ = "partner_items"

    case_id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    partner: str = Field(max_length=32)
    items: int
    at: datetime
    by: str = Field(default="", max_length=32)


# ---- issue 11: the shift's handover (0005) ----------------------------------------------------
class HandoverNote(SQLModel, table=True):
    """A note for the next shift (交接班), kept under the handover it goes to."""

    __tablename__ = "handover_notes"
    __table_args__ = (Index("ix_handover_notes_handover", "handover"),)

    id: int | None = Field(default=None, primary_key=True)
    handover: str = Field(max_length=40)  # the incoming shift, e.g. "2026-12-03/night"
    at: datetime
    by: str = Field(max_length=32)
    text: str = Field(sa_column=Column(Text, nullable=False))


class HandoverAck(SQLModel, table=True):
    """The incoming 带班领导 took the handover over; once per handover."""

    __tablename__ = "handover_acks"

    handover: str = Field(primary_key=True, max_length=40)
    at: datetime
    by: str = Field(max_length=32)
    leader: str = Field(max_length=32)  # the rostered leader of the incoming shift


# ---- issue 11: the field API (0006) -------------------------------------------------------
class FieldRequest(SQLModel, table=True):
    """One request of the field API by its request id: the same id gets the same answer and
    is done once. The row is written in the transaction of what it did; `answer` (JSON) is
    filled in right after (a row without one was done, its answer not yet kept)."""

    __tablename__ = "field_requests"

    caller: str = Field(primary_key=True, max_length=64)  # officer code or feed:<channel>
    request_id: str = Field(primary_key=True, max_length=64)
    method: str = Field(max_length=8)
    path: str = Field(max_length=200)
    status: int = 0  # HTTP status of the answer
    answer: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    at: datetime
