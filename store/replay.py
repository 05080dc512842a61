"""The record replayed against the cases table: a case changed behind the record's back shows.

The chain proves the record was not rewritten; it says nothing of `UPDATE cases SET
status='closed'`. Replaying the record gives every case's state as the record says it is:
its status (each move's `to`), its assignee, its stage times (the entry's time), its
escalation level, 督办 and merge target. `check_cases` compares that with the cases table and
names the first case and field that differ, and cases on one side only.

Streamed in windows of case ids (entries by (case_id, seq), cases by id), so memory holds one
window whatever the store's size. A field the record does not determine is not compared:
imported history (one `import` entry names a range of case ids; the state came from the
history file) until a later move sets it, and after an entry kind this code does not know
(only `to`, the status, is taken from it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, Engine, func, select
from tafang.store.models import AuditEntry, Case

AUDIT = AuditEntry.__table__
CASES = Case.__table__

FIELDS = (
    "status",
    "assignee",
    "acknowledged_at",
    "dispatched_at",
    "arrived_at",
    "handled_at",
    "closed_at",
    "held_at",
    "escalation_level",
    "supervised",
    "merged_into",
)
UNKNOWN: Any = object()  # a field the record does not determine (not compared)
CREATED = ("create", "ingest", "self_found")
NO_CHANGE = frozenset({"note", "void", "merged_in", "confirm", "support", "partner.items"})
_SIMPLE = frozenset({"ack", "arrive", "handle", "close", "hold", "resume", "supervise"})
_STAMP = {"ack": "acknowledged_at", "arrive": "arrived_at", "handle": "handled_at"}
_STAMP |= {"close": "closed_at", "hold": "held_at"}


@dataclass(frozen=True)
class CaseCheck:
    """What `check_cases` found: cases compared, the first difference (None: none)."""

    cases: int
    case_id: int | None = None
    field: str = ""
    reason: str = ""
    imported: int = 0  # cases whose first state is history (not on the record)

    @property
    def ok(self) -> bool:
        return self.case_id is None


def _fresh() -> dict[str, Any]:
    return {
        "status": "new",
        "assignee": None,
        "acknowledged_at": None,
        "dispatched_at": None,
        "arrived_at": None,
        "handled_at": None,
        "closed_at": None,
        "held_at": None,
        "escalation_level": 0,
        "supervised": False,
        "merged_into": None,
    }


def apply(state: dict[str, Any], action: str, at: datetime, detail: dict[str, Any]) -> None:
    """One entry's effect on a case's state, as `store.cases.PLANNERS` makes it."""
    if "to" in detail and action not in ("merged_in",):
        state["status"] = detail["to"]
    if action in NO_CHANGE or action.startswith("field_"):  # field_*: what the field sent
        return
    if action in _SIMPLE:
        if action in _STAMP:  # a time reported from the field is what the case keeps
            state[_STAMP[action]] = _time(detail.get("reported_at"), at)
        elif action == "resume":
            state["held_at"] = None
        else:  # supervise
            state["supervised"] = True
    elif action in ("dispatch", "reassign", "rework"):
        _dispatch(state, action, at, detail)
    elif action in ("return", "reopen"):
        state.update(assignee=None, dispatched_at=None, arrived_at=None)
        if action == "reopen":
            state.update(closed_at=None, handled_at=None, acknowledged_at=at, escalation_level=0)
    elif action == "escalate":
        state["escalation_level"] = detail.get("level", UNKNOWN)
    elif action == "merge":
        state["merged_into"] = detail.get("into", UNKNOWN)
    else:  # an entry kind this code does not know: it may have changed anything
        state.update({f: UNKNOWN for f in FIELDS if f != "status"})


def _time(value: Any, default: datetime) -> Any:
    """An ISO time from an entry's detail; UNKNOWN when it cannot be read."""
    if value is None:
        return default
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return UNKNOWN


def _self_found(at: datetime, detail: dict[str, Any]) -> dict[str, Any]:
    """A case an officer found and handled (store/field.py `self_found`): created handled."""
    found = _time(detail.get("found_at"), at)
    return {
        **_fresh(),
        "status": detail.get("to", "handled"),
        "assignee": detail.get("officer", UNKNOWN),
        "acknowledged_at": found,
        "dispatched_at": found,
        "arrived_at": found,
        "handled_at": _time(detail.get("handled_at"), at),
    }


def _dispatch(state: dict[str, Any], action: str, at: datetime, detail: dict[str, Any]) -> None:
    if action == "rework":
        state.update(handled_at=None, arrived_at=None, dispatched_at=at)
        return
    if state["acknowledged_at"] is None:
        state["acknowledged_at"] = at
    state.update(assignee=detail.get("assignee", UNKNOWN), dispatched_at=at, arrived_at=None)


def _case_of(r: Any) -> int:
    return r.case_id


def _same(recorded: Any, stored: Any) -> bool:
    if recorded is UNKNOWN or recorded == stored:
        return True
    if isinstance(recorded, datetime) and isinstance(stored, datetime):
        return recorded == stored
    if isinstance(recorded, bool) or isinstance(stored, bool):
        return bool(recorded) == bool(stored)
    return recorded == stored


def _shown(v: Any) -> str:
    if isinstance(v, datetime):
        return v.isoformat()
    return "null" if v is None else str(v)


def _imports(conn: Connection) -> list[tuple[int, int]]:
    """The case-id ranges `import` entries brought in (history import: one entry a batch)."""
    out = []
    for detail in conn.execute(select(AUDIT.c.detail).where(AUDIT.c.action == "import")).scalars():
        try:
            d = json.loads(detail)
            out.append((int(d["first_id"]), int(d["last_id"])))
        except (ValueError, TypeError, KeyError):
            continue
    return out


def check_cases(
    engine: Engine, window: int = 5000, progress: Callable[[int, int], None] | None = None
) -> CaseCheck:
    """Replay the record case by case and compare with the cases table (module doc)."""
    checked = imported = 0
    with engine.connect() as conn:
        ranges = _imports(conn)
        total = conn.execute(select(func.count()).select_from(CASES)).scalar_one()
        for lo, hi in _windows(conn, window):
            found, n, imp = _check_window(conn, lo, hi, ranges)
            checked, imported = checked + n, imported + imp
            if found is not None:
                return CaseCheck(checked, *found, imported=imported)
            if progress is not None:
                progress(checked, total)
    return CaseCheck(checked, imported=imported)


def _windows(conn: Connection, window: int) -> Iterator[tuple[int, int]]:
    """[lo, hi) ranges of case ids holding a case or an entry, skipping empty stretches."""
    lo: int | None = 0
    while lo is not None:
        hi = lo + window
        yield lo, hi
        nxt = [
            conn.execute(select(func.min(CASES.c.id)).where(CASES.c.id >= hi)).scalar(),
            conn.execute(select(func.min(AUDIT.c.case_id)).where(AUDIT.c.case_id >= hi)).scalar(),
        ]
        lo = min((x for x in nxt if x is not None), default=None)


def _check_window(
    conn: Connection, lo: int, hi: int, ranges: list[tuple[int, int]]
) -> tuple[tuple[int, str, str] | None, int, int]:
    """(first difference or None, cases compared, imported cases) for case ids [lo, hi)."""
    e = AUDIT.c
    entries = conn.execute(
        select(e.case_id, e.seq, e.at, e.action, e.detail)
        .where(e.case_id >= lo, e.case_id < hi)
        .order_by(e.case_id, e.seq)
    )
    cols = [CASES.c.id, *(CASES.c[f] for f in FIELDS)]
    rows = conn.execute(
        select(*cols).where(CASES.c.id >= lo, CASES.c.id < hi).order_by(CASES.c.id)
    ).all()
    recorded = {cid: list(group) for cid, group in groupby(entries.all(), key=_case_of)}
    n = imp = 0
    for row in rows:
        n += 1
        cid, stored = row[0], row[1:]
        mine = recorded.pop(cid, ())
        if len(mine) == 1 and mine[0].action in CREATED and tuple(stored) == FRESH:
            continue  # the bulk of a store: ingested and never moved (as `_fresh` says)
        state, why = _replay(cid, mine, ranges)
        if state is None:
            return (cid, "", why), n, imp
        imp += why == "imported"
        for f, value in zip(FIELDS, stored, strict=True):
            if not _same(state[f], value):
                return (cid, f, _differs(cid, f, state[f], value)), n, imp
    for cid in sorted(recorded):
        if any(r.action in CREATED for r in recorded[cid]):
            return (
                (cid, "", f"case {cid} is on the record but missing from the cases table"),
                n,
                imp,
            )
    return None, n, imp


def _differs(cid: int, f: str, recorded: Any, stored: Any) -> str:
    return (
        f"case {cid}: {f} is {_shown(stored)} in the cases table but "
        f"{_shown(recorded)} on the record"
    )


FRESH = tuple(_fresh()[f] for f in FIELDS)


def _replay(
    cid: int, entries: Iterable[Any], ranges: list[tuple[int, int]]
) -> tuple[dict[str, Any] | None, str]:
    """The case's state as the record says, or (None, why) when the record never made it."""
    entries = list(entries)
    if entries and entries[0].action in CREATED:
        state, why = _fresh(), ""
        if entries[0].action == "self_found":
            state = _self_found(entries[0].at, _detail(entries[0]))
    elif any(a <= cid <= b for a, b in ranges):
        state, why = {f: UNKNOWN for f in FIELDS}, "imported"
    else:
        return None, f"case {cid} is in the cases table but no record entry created it"
    for r in entries:
        if r.action in CREATED:
            continue
        apply(state, r.action, r.at, _detail(r))
    return state, why


def _detail(r: Any) -> dict[str, Any]:
    try:
        detail = json.loads(r.detail) if r.detail else {}
    except ValueError:
        return {}
    return detail if isinstance(detail, dict) else {}
