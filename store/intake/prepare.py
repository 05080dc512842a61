"""Parsed items → rows ready for the driver: validated, clocks started, laid out.

Pure CPU work with no database, so a forked worker can do it while the writer commits.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from tafang.store.cases import Actor, Store, utcnow
from tafang.store.config import Deployment
from tafang.store.intake.lines import BLANK, Item, raw_text
from tafang.store.intake.outcome import Normalised, Rejected
from tafang.store.intake.rows import FIXED, row_of, sqlite_row, sqlite_time
from tafang.store.intake.unstorable import dump_raw
from tafang.store.intake.validate import normalise

_json_str = json.encoder.encode_basestring  # a str as json.dumps(ensure_ascii=False) writes it


@dataclass(frozen=True)
class Context:
    """What preparing and committing a batch need; forked workers inherit it (nothing is
    pickled)."""

    d: Deployment
    clocks: Any
    now: datetime
    nul_ok: bool
    sqlite: bool
    fixed: bool  # `now` was injected by the caller: every batch uses it
    origin: str
    actor: Actor
    history: bool = False  # `ingest --history`: cases as they were (see `history`)

    @classmethod
    def of(
        cls, store: Store, now: datetime | None, origin: str, actor: Actor, history: bool = False
    ) -> Context:
        sqlite = store.engine.dialect.name == "sqlite"
        return cls(
            store.d,
            store.clocks,
            now or utcnow(),
            sqlite,
            sqlite,
            now is not None,
            origin,
            actor,
            history,
        )

    def fresh(self, at: datetime | None = None) -> Context:
        """This context for a batch read at `at` (default: now), unless `now` was injected."""
        return self if self.fixed else replace(self, now=at or utcnow())


# A prepared line: ("case", line_no, row, detail, encoded detail), ("reject", line_no,
# reason, raw text) or ("blank", line_no). The detail is the case's "ingest" entry as
# stored in the record, and its encoding as hashed (see store.record.chain_rows): both made
# here, in the worker.
Prepared = tuple[Any, ...]


def prepare(ctx: Context, items: Iterable[Item]) -> list[Prepared]:
    """Validate, start the clocks and lay out rows ready for the driver."""
    blank: list[Prepared] = []  # ("blank", line_no): counted, so the counts add up
    items = _sift_blank(items, blank)
    if ctx.history:
        from tafang.store.intake.history import prepare_history

        return prepare_history(ctx, items) + blank
    out: list[Prepared] = []
    d, now, nul_ok, sqlite = ctx.d, ctx.now, ctx.nul_ok, ctx.sqlite
    start = ctx.clocks.start
    fixed = {
        **FIXED,
        "updated_at": sqlite_time(now) if sqlite else now,
        "updated_by": ctx.actor.operator,
        "updated_terminal": ctx.actor.terminal,
    }
    # The ingest entry's detail, as dump_detail writes {external_id, origin, source, triage}.
    mid = f',"origin":{_json_str(ctx.origin)},"source":'
    for n, raw, value, note, scan in items:
        if isinstance(value, Rejected):
            out.append(("reject", n, value.reason, raw_text(raw, None, nul_ok)))
            continue
        try:
            res = normalise(value, d, now=now, nul_ok=nul_ok, scan=scan)
            if isinstance(res, Normalised):
                v = res.values
                if note is not None:  # bytes that were not UTF-8: keep the line as received
                    _flag(v, note, line=raw)
                try:
                    v.update(start(v))
                except (OverflowError, ValueError):  # e.g. received_at in year 9999
                    _out_of_range(v, now)
                    v.update(start(v))
                v.update(fixed)
                row = row_of(v)
                if sqlite:
                    row = sqlite_row(row)
                detail = (
                    f'{{"external_id":{_json_str(v["external_id"])}{mid}'
                    f'{_json_str(v["source"])},"triage":{"true" if v["triage"] else "false"}}}'
                )
                out.append(("case", n, row, detail, _json_str(detail)))
                continue
        except Exception as e:  # never crash on input; name it instead
            res = Rejected(f"could not be read: {type(e).__name__}: {str(e)[:200]}")
        out.append(("reject", n, res.reason, raw_text(raw, value, nul_ok)))
    return out + blank


def _sift_blank(items: Iterable[Item], blank: list[Prepared]) -> Iterator[Item]:
    """The items, but a blank line (`lines.BLANK`) goes to `blank` as ("blank", line_no)."""
    for item in items:
        if item[2] is BLANK:
            blank.append(("blank", item[0]))
        else:
            yield item


def _flag(v: dict[str, Any], reason: str, **kept: Any) -> None:
    """Add a triage flag to prepared values, and raw values not already kept."""
    raw_fields = json.loads(v["raw"])
    for name, x in kept.items():
        raw_fields.setdefault(name, x)
    v["raw"] = dump_raw(raw_fields)
    v["triage_reason"] = "; ".join(x for x in (v["triage_reason"], reason) if x)
    v["triage"] = True


def _out_of_range(v: dict[str, Any], now: datetime) -> None:
    reason = "received_at out of range for the clocks (taken as the time of intake)"
    _flag(v, reason, received_at=v["received_at"].isoformat())
    v["received_at"] = now
