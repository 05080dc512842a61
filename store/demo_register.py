"""Gudang demo registers: 40 enterprises, 260 risk points in 6 classes, a year of inspections.

`tafang demo` (and anyone trying the product) gets the packaged CSVs under store/demo/ and a
plausible inspection history: visits made this year at about Xihu's 2024 rate (61 % joint),
plans for the coming days, and one pending merge proposal for the `j` screen to decide.
The data is invented (names and codes are made up; the codes pass the check).
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from importlib.resources import files

from tafang.store import inspections as ins
from tafang.store.cases import Actor, Store, utcnow
from tafang.store.enterprises import count, enterprises, import_csv
from tafang.store.risk import import_csv as import_risk

CHECKS = {
    "market": ("营业执照公示", "价格公示", "食品经营许可证有效期"),
    "hr": ("劳动合同签订", "工资支付台账", "社会保险缴纳"),
    "fire": ("灭火器有效期", "疏散通道畅通", "消防设施检测报告"),
    "emergency": ("安全生产责任制", "隐患排查记录"),
    "environment": ("油烟净化设施运行", "污水排放许可"),
    "enforcement": ("门前三包落实", "户外广告设置审批"),
}


def _csv(name: str) -> bytes:
    return files("tafang.store").joinpath("demo", name).read_bytes()


def _items(depts: list[str]) -> list[tuple[str, str]]:
    return [(d, text) for d in depts for text in CHECKS[d]]


def seed_register(store: Store, actor: Actor, now: datetime | None = None) -> None:
    """Registers and inspections for an empty store (a store with enterprises is left)."""
    if count(store):
        return
    now = now or utcnow()
    import_csv(store, _csv("enterprises.csv"), origin="demo/enterprises.csv", actor=actor, now=now)
    import_risk(store, _csv("risk_points.csv"), origin="demo/risk_points.csv", actor=actor, now=now)
    rng = random.Random(61)
    ents = [e.id for e in enterprises(store)]
    today = now.date()
    _history(store, actor, ents, today, rng, now)
    _upcoming(store, actor, ents, today)


def _history(
    store: Store, actor: Actor, ents: list[int], today: date, rng: random.Random, now: datetime
) -> None:
    """18 visits made earlier this year, 11 of them joint (61 %)."""
    depts = list(CHECKS)
    for n in range(18):
        day = today - timedelta(days=10 + 9 * n)
        team = rng.sample(depts, 2 if n % 18 < 11 else 1)
        p, _ = ins.create_plan(
            store,
            ents[n % len(ents)],
            departments=team,
            items=_items(team),
            first=day,
            last=day + timedelta(days=2),
            actor=actor,
            now=now,
        )
        for it in ins.items(store, p.id):
            result = "fail" if rng.random() < 0.1 else "pass"
            ins.record_result(store, it.id, result, actor, now=now)
        at = datetime.combine(day, datetime.min.time(), now.tzinfo) + timedelta(hours=2)
        ins.complete(store, p.id, actor, at=min(at, now))


def _upcoming(store: Store, actor: Actor, ents: list[int], today: date) -> None:
    """Plans for the coming days; the second one for the first enterprise proposes a merge."""
    first = today + timedelta(days=3)
    ins.create_plan(
        store,
        ents[0],
        departments=["market"],
        items=_items(["market"]),
        first=first,
        last=first + timedelta(days=4),
        actor=actor,
    )
    ins.create_plan(
        store,
        ents[0],
        departments=["hr"],
        items=_items(["hr"]),
        first=first + timedelta(days=2),
        last=first + timedelta(days=9),
        actor=actor,
    )
    ins.create_plan(
        store,
        ents[1],
        departments=["fire", "emergency"],
        items=_items(["fire", "emergency"]),
        first=first,
        last=first + timedelta(days=6),
        actor=actor,
    )
