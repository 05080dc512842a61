"""History import (`tafang ingest --history`): cases as they were, not as they arrive.

A history record is an intake record (DESIGN §4) that may also carry its status, its stage
times (acknowledged_at … closed_at), who did each stage (acknowledged_by … closed_by), the
assignee, escalation level and its counts of 回退 / 返工 / 延期 / 督办 (`limits.HISTORY_FIELDS`).
The clocks are laid over its receipt time as for a live case, so its 1-3-5 figures count, but
`next_check_at` stays empty: the sweep never looks at an imported case (no escalation, no
notification, closed or open). Each imported case gets a `case_history` row (which marks it
as imported); the record gets one `import` entry per batch naming the cases it brought in,
not one per case (see `insert`).

A stage time that cannot be read, or stage times out of order, reject the line: a history
is imported to be counted, and a guessed time would count wrong.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

from tafang.store.config import Deployment
from tafang.store.intake.limits import (
    HISTORY_BY,
    HISTORY_COUNTS,
    HISTORY_FIELDS,
    HISTORY_TIMES,
    KNOWN_FIELDS,
)
from tafang.store.intake.lines import Item, raw_text
from tafang.store.intake.lookups import lookups
from tafang.store.intake.outcome import Normalised, Rejected
from tafang.store.intake.prepare import Context, Prepared
from tafang.store.intake.prepare import _flag as flag
from tafang.store.intake.readers import read_time
from tafang.store.intake.reasons import show
from tafang.store.intake.rows import ROW_COLUMNS, row_of, sqlite_row, sqlite_time
from tafang.store.intake.validate import normalise
from tafang.store.models import STATUSES

KNOWN = KNOWN_FIELDS | HISTORY_FIELDS
CASE_EXTRA = (*HISTORY_TIMES, "assignee", "assignee_kind")
HISTORY_INSERT_COLUMNS = (*ROW_COLUMNS, *CASE_EXTRA, "id", "updated_seq")
times_of = operator.itemgetter(*HISTORY_TIMES)
HISTORY_ROW = ("origin", "imported_at", *HISTORY_BY, *HISTORY_COUNTS, "case_id")
IMPORTABLE = tuple(s for s in STATUSES if s not in ("held", "merged"))
"""A held case needs the state it resumes to, a merged one its target: not importable."""
_REACHED = dict(
    zip(HISTORY_TIMES, ("acknowledged", "dispatched", "on_scene", "handled", "closed"), strict=True)
)
_MAX_LEVEL = 4
_MAX_BY = 32


def prepare_history(ctx: Context, items: Iterable[Item]) -> list[Prepared]:
    """As `prepare.prepare`, for history: ("case", n, row, history row) or ("reject", …)."""
    out: list[Prepared] = []
    d, now, sqlite = ctx.d, ctx.now, ctx.sqlite
    fixed = {
        "version": 1,
        "updated_at": sqlite_time(now) if sqlite else now,
        "updated_by": ctx.actor.operator,
        "updated_terminal": ctx.actor.terminal,
    }
    stamp = sqlite_time(now) if sqlite else now
    origin = ctx.origin[:200]
    for n, raw, value, note, scan in items:
        if isinstance(value, Rejected):
            out.append(("reject", n, value.reason, raw_text(raw, None, ctx.nul_ok)))
            continue
        try:
            res = normalise(
                value, d, now=now, nul_ok=ctx.nul_ok, scan=scan, known=KNOWN, history=True
            )
            if isinstance(res, Normalised):
                if note is not None:  # bytes that were not UTF-8: keep the line as received
                    flag(res.values, note, line=raw)
                res = _as_history(res.values, value, d, ctx)
            if not isinstance(res, Rejected):
                v, hist = res
                v.update(fixed)
                row, times = row_of(v), times_of(v)
                if sqlite:
                    row = sqlite_row(row)
                    times = tuple(None if t is None else sqlite_time(t) for t in times)
                row += (*times, v["assignee"], v["assignee_kind"])
                out.append(("case", n, row, (origin, stamp, *hist), None))
                continue
        except Exception as e:  # never crash on input; name it instead
            res = Rejected(f"could not be read: {type(e).__name__}: {e}")
        out.append(("reject", n, res.reason, raw_text(raw, value, ctx.nul_ok)))
    return out


def _as_history(
    v: dict[str, Any], record: dict[str, Any], d: Deployment, ctx: Context
) -> tuple[dict[str, Any], tuple[Any, ...]] | Rejected:
    """Column values with the record's history laid on; the case_history values."""
    times = _times(record, v["received_at"], lookups(d).tz)
    if isinstance(times, Rejected):
        return times
    status = _status(record.get("status"), times)
    if isinstance(status, Rejected):
        return status
    assignee = _assignee(record.get("assignee"), d)
    if isinstance(assignee, Rejected):
        return assignee
    level = _count(record, "escalation_level", _MAX_LEVEL)
    counts = [_count(record, c, 1_000) for c in HISTORY_COUNTS]
    by = [_operator(record, c) for c in HISTORY_BY]
    for x in (level, *counts, *by):
        if isinstance(x, Rejected):
            return x
    v.update(ctx.clocks.start(v))
    v.update(times)
    v["status"] = status
    v["assignee"], v["assignee_kind"] = assignee
    v["escalation_level"] = level
    v["supervised"] = bool(counts[3])
    v["next_check_at"] = None  # the sweep leaves history alone
    return v, (*by, *counts)


def _times(record: dict[str, Any], received: Any, tz: Any) -> dict[str, Any] | Rejected:
    out: dict[str, Any] = {}
    last, last_name = received, "received_at"
    for name in HISTORY_TIMES:
        x = record.get(name)
        if x is None or x == "":
            out[name] = None
            continue
        t = read_time(x, tz)
        if t is None:
            return Rejected(f"history: unreadable {name} {show(x)}")
        if t < last:
            return Rejected(f"history: {name} {show(x)} is before {last_name}")
        out[name] = t
        last, last_name = t, name
    return out


def _status(s: Any, times: dict[str, Any]) -> str | Rejected:
    """The status given, else the last stage reached; it must agree with the stage times."""
    reached = [st for col, st in _REACHED.items() if times[col] is not None]
    if s is None or s == "":
        return reached[-1] if reached else "new"
    if s not in IMPORTABLE:
        return Rejected(f"history: status {show(s)} is not one of {', '.join(IMPORTABLE)}")
    if s == "closed" and times["closed_at"] is None:
        return Rejected("history: status closed needs closed_at")
    if s in _REACHED.values() and s not in reached:
        col = next(c for c, st in _REACHED.items() if st == s)
        return Rejected(f"history: status {s} needs {col}")
    return str(s)


def _assignee(a: Any, d: Deployment) -> tuple[str | None, str | None] | Rejected:
    if a is None or a == "":
        return None, None
    if a in d.officers_by_code:
        return a, "officer"
    if a in d.squads_by_code:
        return a, "squad"
    if any(p.code == a for p in d.partners):
        return a, "partner"
    return Rejected(f"history: unknown assignee {show(a)} (an officer, squad or partner code)")


def _count(record: dict[str, Any], name: str, top: int) -> int | Rejected:
    x = record.get(name)
    if x is None or x == "" or x is False:
        return 0
    if x is True:
        return 1
    if type(x) is int and 0 <= x <= top:
        return x
    return Rejected(f"history: {name} must be a whole number 0–{top}, not {show(x)}")


def _operator(record: dict[str, Any], name: str) -> str | Rejected:
    x = record.get(name)
    if x is None:
        return ""
    if type(x) is not str or len(x) > _MAX_BY:
        return Rejected(f"history: {name} must be an operator code of ≤ {_MAX_BY} characters")
    return x
