"""The enterprise register (企业库): CSV import keyed by the unified social credit code.

A row is refused when its credit code fails the GB 32100-2015 check (store/credit_code.py),
its name is blank, its grid is unknown or its risk grade is not A–D; a known code updates its
row (a register is re-imported as it changes). The import is one transaction with one entry
on the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

from sqlalchemy import func, select
from tafang.store.cases import Actor, Store, utcnow
from tafang.store.config import Deployment
from tafang.store.credit_code import CreditCodeError, validate
from tafang.store.csv_import import ImportResult, RowError, Upserts, open_text, run
from tafang.store.models import Enterprise
from tafang.store.moves import CREATE_ROLES
from tafang.store.record import Entry, append

ENTERPRISES = Enterprise.__table__
RISK_GRADES = ("A", "B", "C", "D")  # 信用风险分类: A low risk … D high risk
REQUIRED = ("credit_code", "name")
KNOWN = ("credit_code", "name", "grid", "address", "risk_grade", "contact")


@dataclass(frozen=True, slots=True)
class EnterpriseView:
    id: int
    credit_code: str
    name: str
    grid: str | None
    address: str
    risk_grade: str
    contact: str


def grid_code(d: Deployment, value: str) -> str | None:
    """A grid given by code or label (N3-07); None when blank; RowError when unknown."""
    if not value:
        return None
    if value in d.grids_by_code:
        return value
    g = d.grids_by_label.get(value.upper())
    if g is None:
        raise RowError(f"grid {value!r} is neither a grid code nor a label of this deployment")
    return g.code


def _values(d: Deployment, row: dict[str, str], now: datetime) -> dict[str, Any]:
    try:
        code = validate(row.get("credit_code", ""))
    except CreditCodeError as e:
        raise RowError(f"credit_code {row.get('credit_code', '')!r}: {e}") from None
    name = row.get("name", "")
    if not name:
        raise RowError("name is blank")
    grade = (row.get("risk_grade") or "B").upper()
    if grade not in RISK_GRADES:
        raise RowError(f"risk_grade {grade!r} must be one of {', '.join(RISK_GRADES)}")
    return {
        "credit_code": code,
        "name": name,
        "grid": grid_code(d, row.get("grid", "")),
        "address": row.get("address", ""),
        "risk_grade": grade,
        "contact": row.get("contact", ""),
        "updated_at": now,
    }


def import_csv(
    store: Store,
    data: bytes | str | TextIO,
    *,
    origin: str,
    actor: Actor,
    now: datetime | None = None,
) -> ImportResult:
    """Import (or update) enterprises from CSV; bad rows are reported and kept."""
    store.may(CREATE_ROLES, "enterprise import", actor)
    now = now or utcnow()
    result = ImportResult(origin)
    stream = open_text(data)

    with store.write() as (conn, head):
        rows = Upserts(conn, ENTERPRISES, "credit_code")
        run(
            conn,
            stream,
            result,
            (REQUIRED, KNOWN),
            lambda c, row: rows.save(c, _values(store.d, row, now)),
            now,
        )
        rows.flush(conn)
        detail = {"origin": origin, **{k: v for k, v in result.as_json().items() if k != "errors"}}
        append(
            conn,
            head,
            [Entry(now, actor.operator, actor.terminal, "enterprise.import", None, detail)],
        )
    return result


def _view(r: Any) -> EnterpriseView:
    m = r._mapping
    return EnterpriseView(
        m["id"], m["credit_code"], m["name"], m["grid"], m["address"], m["risk_grade"], m["contact"]
    )


def enterprises(store: Store, limit: int | None = None) -> list[EnterpriseView]:
    q = select(ENTERPRISES).order_by(ENTERPRISES.c.name, ENTERPRISES.c.id)
    if limit:
        q = q.limit(limit)
    with store.read_engine.connect() as conn:
        return [_view(r) for r in conn.execute(q)]


def names_of(store: Store, ids: set[int]) -> dict[int, tuple[str, str]]:
    """Name and risk grade of these enterprises (the ones a screen shows plans of)."""
    t = ENTERPRISES.c
    out: dict[int, tuple[str, str]] = {}
    wanted = sorted(ids)
    with store.read_engine.connect() as conn:
        for i in range(0, len(wanted), 500):  # SQLite's bound-parameter limit, with room
            q = select(t.id, t.name, t.risk_grade).where(t.id.in_(wanted[i : i + 500]))
            out.update({r.id: (r.name, r.risk_grade) for r in conn.execute(q)})
    return out


def find(store: Store, key: str | int) -> EnterpriseView | None:
    """An enterprise by id, credit code or exact name."""
    t = ENTERPRISES.c
    if isinstance(key, int) or (str(key).isdigit() and len(str(key)) < 18):
        cond = t.id == int(key)
    else:
        k = str(key).strip()
        cond = (t.credit_code == k.upper()) | (t.name == k)
    with store.read_engine.connect() as conn:
        r = conn.execute(select(ENTERPRISES).where(cond).limit(1)).first()
    return _view(r) if r else None


def count(store: Store) -> int:
    with store.read_engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ENTERPRISES)).scalar_one()
