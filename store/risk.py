"""Risk points (风险化解前置): the register by grid and class, and their planned checks.

Six classes (the seed counts 260 points in 6 classes and names 安全生产, 渣土运输 and 噪声扰民;
the other three are assumed): each has the case category its check is filed under and a
default interval. A point's check falls due at `next_check_at`; the daemon's sweep
(`file_due_checks`) files it as a case through intake (source `patrol`, external id
`risk:CODE:DATE`, so a second sweep or a second daemon files it once) and moves the point's
next check on by its interval. A case in a grid that has risk points is marked as such
(`in_grid`, `counts_by_grid`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from tafang.store.cases import Actor, Store, utcnow
from tafang.store.csv_import import ImportResult, RowError, Upserts, open_text, run
from tafang.store.enterprises import ENTERPRISES, grid_code
from tafang.store.models import Case, RiskPoint
from tafang.store.moves import CREATE_ROLES
from tafang.store.record import Entry, append

POINTS = RiskPoint.__table__
CASES = Case.__table__
SOURCE = "patrol"  # the channel a planned check is filed under (巡查发现)


@dataclass(frozen=True, slots=True)
class RiskClass:
    category: str  # the case category a check is filed under
    every_days: int  # default interval between checks


CLASSES: dict[str, RiskClass] = {
    "safety": RiskClass("0607", 30),  # 安全生产
    "muck": RiskClass("0303", 14),  # 渣土运输
    "noise": RiskClass("0301", 30),  # 噪声扰民 (施工)
    "fire": RiskClass("0602", 30),  # 消防安全 (assumed)
    "building": RiskClass("0601", 60),  # 违法建设 (assumed)
    "environment": RiskClass("0606", 30),  # 生态环境: 油烟, 污水 (assumed)
}
REQUIRED = ("code", "name", "grid", "class")
KNOWN = (*REQUIRED, "address", "credit_code", "every_days", "next_check")


@dataclass(frozen=True, slots=True)
class PointView:
    id: int
    code: str
    name: str
    grid: str
    risk_class: str
    address: str
    every_days: int
    next_check_at: datetime | None
    last_case_id: int | None


def _view(r: Any) -> PointView:
    return PointView(
        r.id,
        r.code,
        r.name,
        r.grid,
        r.risk_class,
        r.address,
        r.every_days,
        r.next_check_at,
        r.last_case_id,
    )


def _local_day(tz: str, day: date) -> datetime:
    """The start of a local day, in UTC: checks fall due at local midnight."""
    return datetime.combine(day, time(), ZoneInfo(tz)).astimezone(ZoneInfo("UTC"))


def _values(
    store: Store, ents: dict[str, int], row: dict[str, str], now: datetime
) -> dict[str, Any]:
    code, name, cls = row.get("code", ""), row.get("name", ""), row.get("class", "").lower()
    if not code or len(code) > 32:
        raise RowError("code must be 1–32 characters")
    if not name:
        raise RowError("name is blank")
    if cls not in CLASSES:
        raise RowError(f"class {cls!r} must be one of {', '.join(CLASSES)}")
    grid = grid_code(store.d, row.get("grid", ""))
    if grid is None:
        raise RowError("grid is blank")
    every = row.get("every_days") or str(CLASSES[cls].every_days)
    if not every.isdigit() or not 1 <= int(every) <= 366:
        raise RowError(f"every_days {every!r} must be a whole number of days, 1–366")
    ent = None
    if cc := row.get("credit_code", "").upper():
        ent = ents.get(cc)
        if ent is None:
            raise RowError(f"credit_code {cc!r} is not in the enterprise register")
    first = now + timedelta(days=int(every))
    if nxt := row.get("next_check", ""):
        try:
            first = _local_day(store.d.timezone, date.fromisoformat(nxt))
        except ValueError:
            raise RowError(f"next_check {nxt!r} is not a date (YYYY-MM-DD)") from None
    return {
        "code": code,
        "name": name,
        "grid": grid,
        "risk_class": cls,
        "enterprise_id": ent,
        "address": row.get("address", ""),
        "every_days": int(every),
        "next_check_at": first,
        "active": True,
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
    """Import (or update, by code) risk points from CSV; bad rows reported and kept."""
    store.may(CREATE_ROLES, "risk import", actor)
    now = now or utcnow()
    result = ImportResult(origin)

    with store.write() as (conn, head):
        q = select(ENTERPRISES.c.credit_code, ENTERPRISES.c.id)
        ents: dict[str, int] = {c: i for c, i in conn.execute(q)}
        rows = Upserts(conn, POINTS, "code")
        save = lambda c, row: rows.save(c, _values(store, ents, row, now))  # noqa: E731
        run(conn, open_text(data), result, (REQUIRED, KNOWN), save, now)
        rows.flush(conn)
        detail = {k: v for k, v in result.as_json().items() if k != "errors"}
        append(
            conn, head, [Entry(now, actor.operator, actor.terminal, "risk.import", None, detail)]
        )
    return result


def points(store: Store, grid: str | None = None) -> list[PointView]:
    q = select(POINTS).where(POINTS.c.active).order_by(POINTS.c.grid, POINTS.c.code)
    if grid:
        q = q.where(POINTS.c.grid == grid)
    with store.read_engine.connect() as conn:
        return [_view(r) for r in conn.execute(q)]


def in_grid(store: Store, grid: str | None) -> list[PointView]:
    """The risk points of a case's grid (empty when it has none): marks the case."""
    return points(store, grid) if grid else []


def counts_by_grid(store: Store) -> dict[str, int]:
    """Active risk points per grid code: the map layer's plain data."""
    q = select(POINTS.c.grid, func.count()).where(POINTS.c.active).group_by(POINTS.c.grid)
    with store.read_engine.connect() as conn:
        return {g: n for g, n in conn.execute(q).all()}


def counts_by_class(store: Store) -> dict[str, int]:
    q = select(POINTS.c.risk_class, func.count()).where(POINTS.c.active)
    with store.read_engine.connect() as conn:
        return {c: n for c, n in conn.execute(q.group_by(POINTS.c.risk_class)).all()}


def _record(p: Any, due: datetime) -> dict[str, Any]:
    """The intake record of one planned check (an unknown field keeps the point's code)."""
    return {
        "source": SOURCE,
        "external_id": f"risk:{p.code}:{due.date().isoformat()}",
        "title": f"风险点巡查 {p.name}",
        "description": f"计划检查 · {p.code} · {p.address}".strip(" ·"),
        "category": CLASSES[p.risk_class].category,
        "grid": p.grid,
        "location": p.address,
        "received_at": due.isoformat(),
        "risk_point": p.code,
    }


def file_due_checks(store: Store, now: datetime | None = None, actor: Actor | None = None) -> int:
    """File every check due by `now` as a case; move each point's next check on. Returns
    the cases filed (a check filed before, by a crash or a second daemon, is not refiled)."""
    from tafang.store.intake import ingest_records

    now = now or utcnow()
    actor = actor or Actor("daemon")
    q = select(POINTS).where(POINTS.c.active, POINTS.c.next_check_at <= now).order_by(POINTS.c.id)
    with store.read_engine.connect() as conn:
        due = conn.execute(q).all()
    if not due:
        return 0
    records = [(i, _record(p, p.next_check_at)) for i, p in enumerate(due, 1)]
    res = ingest_records(store, records, origin="risk-checks", actor=actor, now=now)
    with store.engine.begin() as conn:
        for p, (_, rec) in zip(due, records, strict=True):
            case_id = conn.execute(
                select(CASES.c.id).where(
                    CASES.c.source == SOURCE, CASES.c.external_id == rec["external_id"]
                )
            ).scalar()
            nxt = p.next_check_at
            while nxt <= now:  # after a long outage: one check now, the next one ahead
                nxt += timedelta(days=p.every_days)
            conn.execute(
                update(POINTS)
                .where(POINTS.c.id == p.id, POINTS.c.next_check_at == p.next_check_at)
                .values(next_check_at=nxt, last_case_id=case_id, updated_at=now)
            )
    return res.accepted


def checks_filed(store: Store, since: datetime, until: datetime) -> int:
    """Planned checks filed as cases with a receipt time in [since, until)."""
    q = select(func.count()).where(
        CASES.c.source == SOURCE,
        CASES.c.external_id.like("risk:%"),
        CASES.c.received_at >= since,
        CASES.c.received_at < until,
    )
    with store.read_engine.connect() as conn:
        return conn.execute(q).scalar_one()
