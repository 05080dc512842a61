"""The handover (交接班): what one shift leaves the next, and its acknowledgement.

A handover is named by the shift instance it hands over to (store/roster.py). What it lists
is read live: the open cases, those held (挂账), breached (a clock past its deadline) and
under supervision (督办), plus the notes the outgoing shift wrote for it. The incoming
带班领导 acknowledges it once; notes and the acknowledgement are on the record. Who may write
a note or acknowledge is in store/moves.py (HANDOVER_NOTE_ROLES, HANDOVER_ACK_ROLES).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from tafang.store.cases import Actor, Refused, Store, utcnow
from tafang.store.models import HandoverAck, HandoverNote
from tafang.store.moves import HANDOVER_ACK_ROLES, HANDOVER_NOTE_ROLES
from tafang.store.record import Entry, append
from tafang.store.roster import Handover, handover_at
from tafang.store.views import CaseView

NOTES = HandoverNote.__table__
ACKS = HandoverAck.__table__
NOTE_MAX = 2000
"""Characters of one note (a note is a few lines for the next shift, not a report)."""


@dataclass(frozen=True, slots=True)
class Note:
    at: datetime
    by: str
    text: str


@dataclass(frozen=True, slots=True)
class Ack:
    at: datetime
    by: str
    leader: str


@dataclass(frozen=True, slots=True)
class HandoverView:
    """A handover as read at `at`: the cases by kind, the notes, the acknowledgement."""

    handover: Handover
    at: datetime
    open: tuple[CaseView, ...]
    held: tuple[CaseView, ...]
    breached: tuple[CaseView, ...]
    supervised: tuple[CaseView, ...]
    notes: tuple[Note, ...]
    ack: Ack | None

    @property
    def key(self) -> str:
        return self.handover.key


def read(store: Store, now: datetime | None = None) -> HandoverView:
    """The handover nearest `now`, with the cases as they are now."""
    now = now or utcnow()
    h = handover_at(store.d, now)
    cases = store.cases("open")
    held = tuple(c for c in cases if c.status == "held")
    breached = tuple(c for c in cases if store.clocks.clock_state(c, now).state == "breached")
    supervised = tuple(c for c in cases if c.supervised)
    with store.read_engine.connect() as conn:
        notes = conn.execute(
            select(NOTES.c.at, NOTES.c.by, NOTES.c.text)
            .where(NOTES.c.handover == h.key)
            .order_by(NOTES.c.id)
        ).all()
        ack = conn.execute(
            select(ACKS.c.at, ACKS.c.by, ACKS.c.leader).where(ACKS.c.handover == h.key)
        ).first()
    return HandoverView(
        h,
        now,
        tuple(cases),
        held,
        breached,
        supervised,
        tuple(Note(n.at, n.by, n.text) for n in notes),
        Ack(ack.at, ack.by, ack.leader) if ack else None,
    )


def add_note(store: Store, text: str, actor: Actor, now: datetime | None = None) -> str:
    """A note for the next shift, kept under the handover nearest `now`; on the record.
    Returns the handover's key."""
    store.may(HANDOVER_NOTE_ROLES, "handover_note", actor)
    text = text.strip()
    if not text:
        raise Refused("a handover note needs some text", "note_empty")
    if len(text) > NOTE_MAX:
        raise Refused(f"a handover note is at most {NOTE_MAX} characters", "note_long")
    now = now or utcnow()
    key = handover_at(store.d, now).key
    with store.write() as (conn, head):
        conn.execute(insert(NOTES).values(handover=key, at=now, by=actor.operator, text=text))
        detail = {"handover": key, "text": text}
        append(
            conn, head, [Entry(now, actor.operator, actor.terminal, "handover_note", None, detail)]
        )
    return key


def acknowledge(store: Store, actor: Actor, now: datetime | None = None) -> HandoverView:
    """The incoming 带班领导 takes the handover over, once; on the record with what was
    handed over (counts and the note count). A supervisor other than the rostered leader may
    stand in: the record says so."""
    store.may(HANDOVER_ACK_ROLES, "handover_ack", actor)
    now = now or utcnow()
    view = read(store, now)
    with store.write() as (conn, head):
        done = conn.execute(select(ACKS.c.at, ACKS.c.by).where(ACKS.c.handover == view.key)).first()
        if done is not None:
            raise Refused(
                f"handover {view.key} was already acknowledged by {done.by} at "
                f"{done.at.isoformat(timespec='seconds')}",
                "handover_acked",
                handover=view.key,
                by=done.by,
            )
        leader = view.handover.leader
        conn.execute(
            insert(ACKS).values(handover=view.key, at=now, by=actor.operator, leader=leader)
        )
        detail = {
            "handover": view.key,
            "leader": leader,
            "stand_in": bool(leader) and actor.operator != leader,
            "open": len(view.open),
            "held": len(view.held),
            "breached": len(view.breached),
            "supervised": len(view.supervised),
            "notes": len(view.notes),
        }
        append(
            conn, head, [Entry(now, actor.operator, actor.terminal, "handover_ack", None, detail)]
        )
    return read(store, now)
