"""The daemon's witness job: the record's anchor sent outside the database.

Every `[record] witness_interval` seconds the current anchor (the last entry's seq and MAC,
signed with the record key when there is one) is appended to `[record] witness_file`
(O_APPEND, fsync), when it moved since the last one written; and, at most every
`witness_robot_interval` seconds, sent to the centre's contact through the outbox, whose text
carries `SEQ:MAC` as `tafang audit verify --anchor` takes it. A database owner who rewrites or
cuts the record cannot reach either copy; `audit verify --witness FILE` (or --anchor) checks
them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tafang.store.cases import Store
from tafang.store.config import LEVELS
from tafang.store.db import wait_flushed
from tafang.store.outbox import enqueue
from tafang.store.witness import Anchor, append_anchor, current_anchor


@dataclass
class WitnessState:
    """What the job last sent, so an idle record adds no lines and no messages."""

    filed: int | None = None  # seq of the last anchor written to the file
    robot: int | None = None  # seq of the last anchor sent to the robot
    robot_at: datetime | None = None
    warned: bool = False  # the "record not keyed" warning was logged (once a run)


def send_anchor(store: Store, now: datetime, state: WitnessState) -> Anchor | None:
    """Write the current anchor to the witnesses that have not seen it; return it."""
    rec = store.d.record
    key = store.record_key
    with store.read_engine.connect() as conn:
        a = current_anchor(conn, key, now)
    if a is None:
        return None
    if not wait_flushed(store.engine):  # the sweep commits without waiting for the flush
        return None  # the next run sends it
    if rec.witness_file and a.seq != state.filed:
        append_anchor(rec.witness_file, a)
        state.filed = a.seq
    if _robot_due(store, a, now, state):
        event = {
            "kind": "record_anchor",
            "title": f"记录锚点 {a.seq}:{a.mac}",
            "seq": a.seq,
            "mac": a.mac,
            "key_id": a.key_id,
            "sig": a.sig,
            "at": a.at,
            "level_name": LEVELS[-1],
        }
        with store.engine.begin() as conn:
            key_ = f"record-anchor-{a.seq}-{a.mac[:16]}"
            enqueue(conn, key=key_, contact=LEVELS[-1], case_id=None, event=event, now=now)
        state.robot, state.robot_at = a.seq, now
    return a


def _robot_due(store: Store, a: Anchor, now: datetime, state: WitnessState) -> bool:
    every = store.d.record.witness_robot_interval
    if not every or a.seq == state.robot or store.d.contact_for(len(LEVELS) - 1) is None:
        return False
    return state.robot_at is None or (now - state.robot_at).total_seconds() >= every
