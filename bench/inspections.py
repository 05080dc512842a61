"""Registers and joint inspections at a district's scale, on a SQLite file.

Measures, each beside its target (assumed targets: the issue names none for these parts):
  - enterprise register import, 10,000 rows with 1 % bad ones: ≤ 2 s;
  - risk-point import, 2,600 points (ten Gudangs): ≤ 1 s;
  - the daemon's risk job filing 260 due checks as cases: ≤ 1 s;
  - the inspections screen's board read (plans, names, proposals, the year's rate) over
    2,000 plans: ≤ 0.3 s (it runs in a worker, but the screen waits for it);
  - the 综合查一次 rate over a year of 2,000 visits: ≤ 0.1 s.

Usage: .venv/bin/python bench/inspections.py
"""

from __future__ import annotations

import random
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from tafang.console.screens.inspections import read_board
from tafang.store import inspections as ins
from tafang.store import risk
from tafang.store.cases import Actor, Store
from tafang.store.config import load_config
from tafang.store.credit_code import ALPHABET, check_char
from tafang.store.db import make_engine
from tafang.store.enterprises import import_csv

ROOT = Path(__file__).resolve().parent.parent
ME = Actor("d01")


def _register(n: int, rng: random.Random) -> str:
    rows = ["credit_code,name,grid,risk_grade"]
    for i in range(n):
        body = "91330106MA" + "".join(rng.choice(ALPHABET) for _ in range(7))
        code = body + check_char(body)
        if i % 100 == 99:
            code = code[:-1] + ("0" if code[-1] != "0" else "1")  # a typo: the check fails
        rows.append(f"{code},企业{i},N{1 + i % 4}-{1 + i % 15:02d},{'ABCD'[i % 4]}")
    return "\n".join(rows) + "\n"


def _points(n: int) -> str:
    rows = ["code,name,grid,class,next_check"]
    classes = list(risk.CLASSES)
    for i in range(n):
        rows.append(f"P{i},点{i},S{1 + i % 3}-{1 + i % 15:02d},{classes[i % 6]},2026-03-01")
    return "\n".join(rows) + "\n"


def timed(label: str, target: float, fn) -> object:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    took = time.perf_counter() - t0
    verdict = "ok" if took <= target else "OVER"
    print(f"{label:<48} {took:7.3f} s   target ≤ {target} s   {verdict}")
    return out


def main() -> None:
    d = load_config(ROOT / "config.toml")
    rng = random.Random(12)
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(f"sqlite:///{tmp}/bench.db")
        store = Store(engine, d)
        reg = _register(10_000, rng)
        res = timed(
            "enterprise import, 10,000 rows",
            2.0,
            lambda: import_csv(store, reg, origin="r", actor=ME),
        )
        print(f"  {res.summary}")  # type: ignore[attr-defined]
        pts = _points(2_600)
        timed(
            "risk-point import, 2,600 points",
            1.0,
            lambda: risk.import_csv(store, pts, origin="p", actor=ME),
        )
        # Only 260 due: the rest later.
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "UPDATE risk_points SET next_check_at = '2027-01-01 00:00:00.000000' WHERE id > 260"
            )
        now = datetime(2026, 3, 2, 1, tzinfo=UTC)
        filed = timed(
            "risk job: 260 due checks filed as cases", 1.0, lambda: risk.file_due_checks(store, now)
        )
        print(f"  filed {filed}")
        t0 = date(2025, 3, 1)
        for n in range(2_000):
            day = t0 + timedelta(days=n % 360)
            depts = ["market", "hr"] if n % 5 < 3 else ["fire"]
            p, _ = ins.create_plan(
                store, 1 + n, departments=depts, items=[], first=day, last=day, actor=ME
            )
            if n % 10:
                ins.complete(store, p.id, ME, at=datetime.combine(day, datetime.min.time(), UTC))
        timed("board read, 2,000 plans", 0.3, lambda: read_board(store, None, now))
        year = datetime(2025, 3, 1, tzinfo=UTC)
        r = timed(
            "综合查一次 over 2,000 plans",
            0.1,
            lambda: ins.joint_rate(store, year, year + timedelta(days=365)),
        )
        print(f"  {r}")
        engine.dispose()
    print("load average:", Path("/proc/loadavg").read_text().split()[:3])


if __name__ == "__main__":
    main()
