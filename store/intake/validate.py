"""One parsed record → column values (`Normalised`) or the reason it cannot be a case."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tafang.store.cases import utcnow
from tafang.store.config import Deployment
from tafang.store.intake.limits import KNOWN_FIELDS
from tafang.store.intake.lookups import lookups
from tafang.store.intake.outcome import Normalised, Rejected
from tafang.store.intake.readers import (
    PRIORITY_OBJS,
    check_unstorable,
    keep_raw_key,
    read_category,
    read_coord,
    read_grid,
    read_key,
    read_priority,
    read_received_at,
    read_reported_at,
    read_source,
    read_texts,
    read_unknown,
)
from tafang.store.intake.reasons import json_type
from tafang.store.intake.unstorable import dump_raw


def normalise(
    record: Any,
    deployment: Deployment,
    *,
    now: datetime | None = None,
    nul_ok: bool = True,
    scan: bool = True,
    known: frozenset[str] = KNOWN_FIELDS,
    history: bool = False,
) -> Normalised | Rejected:
    """Validate one parsed record by hand (no pydantic per record: intake must be fast).

    `nul_ok=False` for PostgreSQL, whose text cannot hold NUL. `now` is the receipt time
    when the record has no readable `received_at`. `scan=False` skips the search for NUL and
    lone surrogates when the caller knows there are none (a JSON line without `\\u`).
    The readers run in the order of the triage flags they add. `known`: the fields not
    kept as unknown (a history import adds HISTORY_FIELDS). `history`: its times are read as
    given, any past and numbers too (see `readers.read_received_at`).
    """
    if type(record) is not dict and not isinstance(record, dict):
        return Rejected(f"not a JSON object (got {json_type(record)})")
    key = read_key(record)
    if isinstance(key, Rejected):
        return key
    triage: list[str] = []
    raw: dict[str, Any] = {}
    if key[0] is not record.get("source") or key[1] is not record.get("external_id"):
        keep_raw_key(record, key, raw)  # normalised (see readers.read_key): kept as received
    values = read_texts(record, raw, triage)
    if isinstance(values, Rejected):
        return values
    if scan and (bad := check_unstorable(key, values, nul_ok, raw, triage)) is not None:
        return bad
    lk = lookups(deployment)
    get = record.get
    # A known code is looked up here, the reader called only for the rest (measured: a call
    # per field costs the worker a few per cent).
    source, grid, cat, pri = key[0], get("grid"), get("category"), get("priority")
    values["source"] = lk.channel_objs.get(source) or read_source(source, lk.channel_objs, triage)
    values["external_id"] = key[1]
    values["grid"] = (type(grid) is str and lk.grids.get(grid)) or read_grid(
        grid, lk.grids, raw, triage
    )
    values["category"] = (type(cat) is str and lk.categories.get(cat)) or read_category(
        cat, lk.categories, raw, triage
    )
    values["priority"] = (type(pri) is str and PRIORITY_OBJS.get(pri)) or read_priority(
        pri, raw, triage
    )
    at = now or utcnow()
    values["reported_at"] = read_reported_at(get("reported_at"), lk.tz, at, raw, triage, history)
    values["received_at"] = read_received_at(get("received_at"), lk.tz, at, raw, triage, history)
    values["lat"] = read_coord("lat", get("lat"), 90.0, raw, triage)
    values["lon"] = read_coord("lon", get("lon"), 180.0, raw, triage)
    if len(record) > len(known) or not known.issuperset(record):
        read_unknown(record, known, raw)
    values["raw"] = dump_raw(raw) if raw else "{}"
    values["triage"] = bool(triage)
    values["triage_reason"] = "; ".join(triage)
    return Normalised(values, tuple(triage))
