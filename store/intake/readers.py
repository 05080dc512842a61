"""Per-field readers of an intake record, composed by `validate.normalise`.

Each takes a field's value as received (or the record, for a family of fields) and returns
the column value. An odd value is not an error: the reader appends its triage flag to
`triage` and keeps the value in `raw` under the field's name (DESIGN §4). Only the readers
of the key and of the texts may reject the record. Each tries the common case first: they
run once per record on the hot path.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from tafang.store.config import PRIORITIES
from tafang.store.intake.limits import (
    MAX_AHEAD,
    MAX_BEHIND,
    MAX_BELIEVED,
    MAX_EXTERNAL_ID,
    MAX_SOURCE,
    TEXT_ITEMS,
    TEXT_LIMITS,
)
from tafang.store.intake.outcome import Rejected
from tafang.store.intake.reasons import json_type, show, unstorable_key
from tafang.store.intake.unstorable import SURROGATES, UNSTORABLE_PG, escape_unstorable

PRIORITY_OBJS = {p: p for p in PRIORITIES}  # one object each, as Lookups.channel_objs

Raw = dict[str, Any]
Triage = list[str]


# ---- ids: the dedupe key (`source`, `external_id`), kept exactly or rejected --------------
# The key is normalised before it is compared or stored: Unicode NFKC, then surrounding white
# space stripped. So an id typed in NFC, NFD or NFKC, with full-width digits or letters
# (ＡＢ１２ → AB12) or a full-width space, is one case, not several; a number is its decimal
# text (123 → "123"). The value as received is kept in `raw` when normalising changed it.
# Case is kept (ab ≠ AB: feeds' ids are case-sensitive). Keys stored by an earlier version
# (before NFKC) are compared as stored.
def read_key(record: dict[str, Any]) -> tuple[str, str] | Rejected:
    """`source` and `external_id` as stored; plain ASCII strings take the short way."""
    source = record.get("source")
    if (
        type(source) is not str
        or not 0 < len(source) <= MAX_SOURCE
        or not source.isascii()
        or source != source.strip()
    ):
        source = _identifier(record, "source", MAX_SOURCE)
        if isinstance(source, Rejected):
            return source
    external_id = record.get("external_id")
    if (
        type(external_id) is not str
        or not 0 < len(external_id) <= MAX_EXTERNAL_ID
        or not external_id.isascii()
        or external_id != external_id.strip()
    ):
        external_id = _identifier(record, "external_id", MAX_EXTERNAL_ID)
        if isinstance(external_id, Rejected):
            return external_id
    return source, external_id


def _identifier(record: dict[str, Any], name: str, limit: int) -> str | Rejected:
    v = record.get(name)
    if isinstance(v, str):
        s = unicodedata.normalize("NFKC", v).strip()
    elif isinstance(v, int | float) and not isinstance(v, bool):
        if isinstance(v, float) and not math.isfinite(v):
            return Rejected(f"field {name!r} is not a usable identifier: {v}")
        s = str(v)
    elif v is None:
        return Rejected(f"missing required field {name!r}")
    else:
        return Rejected(f"field {name!r} must be a string or number, not {json_type(v)}")
    if not s:
        return Rejected(f"required field {name!r} is empty")
    if len(s) > limit:
        return Rejected(f"field {name!r} is {len(s)} characters long; the limit is {limit}")
    return s


def keep_raw_key(record: dict[str, Any], key: tuple[str, str], raw: Raw) -> None:
    """The key's parts as received, in `raw`, where normalising changed a string."""
    for name, k in zip(("source", "external_id"), key, strict=True):
        v = record.get(name)
        if isinstance(v, str) and v != k:
            raw[name] = v


def read_source(source: str, channels: dict[str, str], triage: Triage) -> str:
    """The known channel's own string object (see `Lookups.channel_objs`), else flagged."""
    known = channels.get(source)
    if known is not None:
        return known
    triage.append(f"unknown source channel {show(source)}")
    return source


# ---- title, description, location, reporter ------------------------------------------------
def read_texts(record: dict[str, Any], raw: Raw, triage: Triage) -> dict[str, Any] | Rejected:
    """The four text columns (a new `values` dict); rejected when over a limit or when
    neither title nor description has any text."""
    get = record.get
    values: dict[str, Any] = {}
    for name, limit in TEXT_ITEMS:
        v = get(name)
        if type(v) is str:
            s = v
        elif v is None:
            s = ""
        elif isinstance(v, int | float) and not isinstance(v, bool):
            s = str(v)
        else:
            s = ""
            raw[name] = v
            triage.append(f"{name} is not text ({json_type(v)})")
        if len(s) > limit:
            return Rejected(f"field {name!r} is {len(s)} characters long; the limit is {limit}")
        values[name] = s
    if not values["title"].strip() and not values["description"].strip():
        return Rejected("neither 'title' nor 'description' has any text")
    return values


def check_unstorable(
    key: tuple[str, str], values: dict[str, Any], nul_ok: bool, raw: Raw, triage: Triage
) -> Rejected | None:
    """Reject a key holding NUL or a lone surrogate (an escaped key could equal another's
    literal text); escape such characters in the texts visibly, keeping the exact value."""
    for name, k in zip(("source", "external_id"), key, strict=True):
        m = UNSTORABLE_PG.search(k)
        if m is not None:
            return Rejected(unstorable_key(name, m.group()))
    pat = SURROGATES if nul_ok else UNSTORABLE_PG
    for name in TEXT_LIMITS:
        t = values[name]
        if pat.search(t):
            values[name] = escape_unstorable(t, nul_ok)
            raw[name] = t  # the exact text: JSON escapes keep it
            triage.append(f"{name} held characters the store cannot keep (written as \\uXXXX)")
    return None


# ---- category, grid, priority: codes of the deployment -----------------------------------
def read_grid(grid: Any, grids: dict[str, str], raw: Raw, triage: Triage) -> str | None:
    """A grid by its 14-digit code or its map label (any case, spaces around it: " n3-07 "
    is N3-07); missing is not flagged, unknown is."""
    if grid is None or grid == "":
        return None
    g = grids.get(grid) if type(grid) is str else None
    if g is None:
        g = grids.get(grid.strip().upper() if isinstance(grid, str) else str(grid))
        if g is None:
            triage.append(f"unknown grid {show(grid)}")
            raw["grid"] = grid
    return g


def read_category(cat: Any, categories: dict[str, str], raw: Raw, triage: Triage) -> str | None:
    """A category by code (an integer is zero-padded: 590 → "0590") or Chinese name."""
    if cat is None or cat == "":
        return None
    c = categories.get(cat) if type(cat) is str else None
    if c is None:
        if isinstance(cat, int) and not isinstance(cat, bool) and 0 <= cat < 10_000:
            key = f"{cat:04d}"
        else:
            key = cat.strip() if isinstance(cat, str) else str(cat)
        c = categories.get(key)
        if c is None:
            triage.append(f"unknown category {show(cat)}")
            raw["category"] = cat
    return c


def read_priority(pri: Any, raw: Raw, triage: Triage) -> str:
    """One of PRIORITIES; missing is normal, anything else unknown is normal and flagged."""
    if pri is None or pri == "":
        return "normal"
    if isinstance(pri, str):  # an array or object would be unhashable: flagged below
        p = PRIORITY_OBJS.get(pri) or PRIORITY_OBJS.get(pri.strip().lower())
        if p is not None:
            return p
    triage.append(f"unknown priority {show(pri)} (taken as normal)")
    raw["priority"] = pri
    return "normal"


# ---- times ---------------------------------------------------------------------------------
def _iso(v: str, tz: tzinfo) -> tuple[datetime | None, bool]:
    """ISO 8601 text as an aware UTC datetime (None if unreadable), and whether it had no
    offset (then it is read in `tz`)."""
    s = v.strip()
    try:
        t = datetime.fromisoformat(s) if s else None
        if t is None:
            return None, False
        if t.tzinfo is None:
            return t.replace(tzinfo=tz).astimezone(UTC), True
        return t.astimezone(UTC), False
    except (ValueError, OverflowError):
        return None, False


def read_time(v: Any, tz: tzinfo) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text (`tz` when it has no offset) or Unix
    seconds (milliseconds above 10^11); None if unreadable. History's reading (its stage
    times are as they were kept); a live record's times go through `read_stated_time`."""
    if isinstance(v, str):
        return _iso(v, tz)[0]
    if isinstance(v, int | float) and not isinstance(v, bool):
        x = float(v)
        if not math.isfinite(x):
            return None
        if abs(x) > 1e11:
            x /= 1000.0
        try:
            return datetime.fromtimestamp(x, UTC)
        except (ValueError, OverflowError, OSError):
            return None
    return None


def read_stated_time(v: Any, tz: tzinfo) -> tuple[datetime | None, bool]:
    """A live record's time (None if unreadable) and whether it had no offset. ISO 8601
    text only: a number could be seconds or milliseconds, UTC or local, and a wrong guess
    starts the clocks at a wrong time."""
    return _iso(v, tz) if isinstance(v, str) else (None, False)


def _no_offset(name: str, v: Any, tz: tzinfo) -> str:
    return f"{name} {show(v)} has no UTC offset (read as {getattr(tz, 'key', tz)})"


def _too_old(name: str, v: Any, limit: timedelta) -> str:
    return f"{name} {show(v)} is more than {limit.days} days in the past"


def _stated(
    name: str, v: Any, tz: tzinfo, at: datetime, history: bool
) -> tuple[datetime | None, str]:
    """A record's time and what is odd about it: (the time, None when not believed; the
    triage reason, "" when nothing). Unreadable, more than `MAX_AHEAD` after the intake's
    time `at` or `MAX_BELIEVED` before it is a wrong clock at the sender: not believed.
    More than `MAX_BEHIND` before it, or without an offset (read in `tz`): kept, flagged.
    `history`: as given (`read_time`, any past): a past case's times are its own."""
    t, naive = (read_time(v, tz), False) if history else read_stated_time(v, tz)
    if t is None:
        return None, f"unreadable {name} {show(v)}"
    if t > at + MAX_AHEAD:
        return None, f"{name} {show(v)} is more than a day in the future"
    if not history and t < at - MAX_BELIEVED:
        return None, _too_old(name, v, MAX_BELIEVED)
    if naive:
        return t, _no_offset(name, v, tz)
    if not history and t < at - MAX_BEHIND:
        return t, _too_old(name, v, MAX_BEHIND)
    return t, ""


def read_reported_at(
    rep: Any, tz: tzinfo, at: datetime, raw: Raw, triage: Triage, history: bool = False
) -> datetime | None:
    """Not believed (`_stated`) is stored as NULL; anything odd is flagged, kept in raw."""
    if rep is None or rep == "":
        return None
    t, odd = _stated("reported_at", rep, tz, at, history)
    if odd:
        triage.append(odd)
        raw["reported_at"] = rep
    return t


def read_received_at(
    rec: Any, tz: tzinfo, at: datetime, raw: Raw, triage: Triage, history: bool = False
) -> datetime:
    """The clocks start here: missing is the intake's time `at`, and so is one not believed
    (`_stated`: the sweep would take a year-1800 case to the command centre at once). Within
    `MAX_BEHIND` it is a feed catching up: kept, so its cases escalate honestly; older, kept
    too (a backfill is reported on its days) but flagged. Anything odd is kept in raw."""
    if rec is None or rec == "":
        return at
    t, odd = _stated("received_at", rec, tz, at, history)
    if odd:
        triage.append(odd if t is not None else f"{odd} (taken as the time of intake)")
        raw["received_at"] = rec
    return at if t is None else t


# ---- lat / lon -----------------------------------------------------------------------------
def read_coord(name: str, v: Any, bound: float, raw: Raw, triage: Triage) -> float | None:
    """A finite number (or numeric text) within ±`bound`; anything else is None, flagged."""
    if type(v) is float and -bound <= v <= bound:
        return v
    if v is None or v == "":
        return None
    x = _coord(v, bound)
    if x is None:
        triage.append(f"{name} is not a usable number: {show(v)}")
        raw[name] = v
    return x


def _coord(v: Any, bound: float) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            return None
    if isinstance(v, int | float):
        try:
            x = float(v)
        except OverflowError:
            return None
        if math.isfinite(x) and -bound <= x <= bound:
            return x
    return None


# ---- unknown fields: kept, not dropped -----------------------------------------------------
def read_unknown(record: dict[str, Any], known: frozenset[str], raw: Raw) -> None:
    """Fields the contract does not name go to `raw["extra"]` as received (not flagged)."""
    extra = {k: v for k, v in record.items() if k not in known}
    if extra:
        raw["extra"] = extra
