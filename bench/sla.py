"""Escalation benchmark: the real daemon loop on a big SQLite store.

Fills a SQLite file with open and closed cases (raw executemany, not the lifecycle), starts
`run_daemon` (real APScheduler timers, real clock) in a thread, then measures

1. lateness (escalation committed − deadline) for cases whose deadlines are spread over ~30 s,
2. a storm of cases breaching within the same second (deadline → last one escalated),
3. the cost of a sweep when nothing is due (median of many).

Usage: .venv/bin/python bench/sla.py [--open 100000 --closed 1000000] [--db PATH]
"""

from __future__ import annotations

import argparse
import io
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tafang.sla.daemon import run_daemon  # noqa: E402
from tafang.sla.escalate import sweep  # noqa: E402
from tafang.sla.policy import Policy  # noqa: E402
from tafang.store.cases import Store  # noqa: E402
from tafang.store.config import load_config  # noqa: E402
from tafang.store.db import make_engine  # noqa: E402
from tafang.store.escalation import EscalationResult  # noqa: E402
from tafang.store.models import Case  # noqa: E402

GRIDS: list[str] = []


def ts(d: datetime) -> str:
    """How the store keeps an aware datetime in SQLite: UTC text with microseconds."""
    return d.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def fill(db: Path, n_open: int, n_closed: int, now: datetime) -> float:
    """Bulk-insert cases with raw executemany; returns seconds taken."""
    t0 = time.perf_counter()
    cols = [c.name for c in Case.__table__.columns if c.name != "id"]
    sql = f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    con = sqlite3.connect(db)
    con.execute("PRAGMA synchronous=OFF")
    rnd = random.Random(7)
    base = {c: None for c in cols}
    base.update(
        source="ping_an",
        title="共享单车乱停放",
        description="",
        category="0590",
        location="",
        priority="normal",
        reporter="",
        raw="{}",
        triage=0,
        triage_reason="",
        escalation_level=0,
        supervised=0,
        version=1,
        updated_by="bench",
        updated_terminal="bench",
        updated_seq=0,
    )

    def rows(kind: str, n: int, start: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            r = dict(base)
            r["external_id"] = f"{kind}-{start + i}"
            r["grid"] = GRIDS[i % len(GRIDS)]
            if kind == "closed":
                rec = now - timedelta(days=1 + (i % 700))
                r.update(status="closed", received_at=ts(rec), updated_at=ts(rec))
                r["closed_at"] = r["received_at"]
            else:
                # Open and well inside their clocks: next checks hours ahead, never in the run.
                rec = now - timedelta(seconds=rnd.randint(0, 3600))
                nxt = now + timedelta(seconds=rnd.randint(3600, 48 * 3600))
                r.update(
                    status="on_scene",
                    received_at=ts(rec),
                    updated_at=ts(rec),
                    resolve_due=ts(nxt),
                    next_check_at=ts(nxt),
                )
            yield tuple(r[c] for c in cols)

    chunk = 100_000
    for kind, total in (("closed", n_closed), ("open", n_open)):
        for start in range(0, total, chunk):
            con.executemany(sql, rows(kind, min(chunk, total - start), start))
            con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()
    return time.perf_counter() - t0


def add_breaching(store: Store, dues: list[datetime], prefix: str) -> None:
    """New cases whose respond deadline is at each of `dues` (inserted in one transaction)."""
    table = Case.__table__
    budget = timedelta(seconds=store.clocks.budgets(None, "normal")["respond"])
    rows = []
    for i, due in enumerate(dues):
        v = {
            "source": "smart_alarm",
            "external_id": f"{prefix}-{i}",
            "title": "烟感告警",
            "grid": GRIDS[i % len(GRIDS)],
            "received_at": due - budget,
            "status": "new",
            "version": 1,
            "updated_at": due - budget,
            "updated_by": "bench",
            "updated_terminal": "bench",
        }
        v.update(store.clocks.start(v))
        rows.append(v)
    with store.write() as (conn, head):
        for v in rows:
            head.change_seq += 1
            v["updated_seq"] = head.change_seq
        conn.execute(table.insert(), rows)


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(p / 100 * len(xs)) - 1))]


def line(name: str, value: float, unit: str, target: str, ok: bool) -> None:
    print(f"  {name:<44} {value:>10.1f} {unit:<3} target {target:<10} {'OK' if ok else 'MISSED'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--open", type=int, default=100_000)
    ap.add_argument("--closed", type=int, default=1_000_000)
    ap.add_argument("--spread", type=int, default=300, help="cases due over the next ~30 s")
    ap.add_argument("--storm", type=int, default=1000, help="cases breaching in one second")
    ap.add_argument("--idle-runs", type=int, default=300)
    ap.add_argument("--db", type=Path, default=None, help="SQLite file (default: a temp dir)")
    a = ap.parse_args()

    d = load_config(ROOT / "config.toml")
    GRIDS.extend(g.code for g in d.tower.grids)
    db = a.db or Path(tempfile.mkdtemp(prefix="tafang-bench-")) / "bench.db"
    if db.exists():
        sys.exit(f"{db} exists; give a new path")
    engine = make_engine(f"sqlite:///{db}")
    now = datetime.now(UTC)
    print(f"store {db}: filling {a.open:,} open + {a.closed:,} closed cases …", flush=True)
    secs = fill(db, a.open, a.closed, now)
    print(f"  filled in {secs:.1f} s", flush=True)
    store = Store(engine, d, clocks=Policy(d))
    policy = store.clocks
    assert isinstance(policy, Policy)

    done: dict[int, float] = {}  # case id -> lateness (s): committed − due
    lock = threading.Lock()

    def on_sweep(results: list[EscalationResult], at: datetime) -> None:
        with lock:
            for r in results:
                done[r.case_id] = (at - r.due_at).total_seconds()

    stop = threading.Event()
    log = io.StringIO()
    th = threading.Thread(
        target=run_daemon,
        args=(store, d),
        kwargs=dict(stop_event=stop, on_sweep=on_sweep, log_stream=log),
        daemon=True,
    )
    th.start()
    time.sleep(1.0)

    # 1. Deadlines spread over the next ~30 s.
    t = datetime.now(UTC)
    dues = sorted(t + timedelta(seconds=random.uniform(2, 32)) for _ in range(a.spread))
    add_breaching(store, dues, "spread")
    print(f"spread: {a.spread} cases due over the next 30 s …", flush=True)
    end = time.monotonic() + 45
    while len(done) < a.spread and time.monotonic() < end:
        time.sleep(0.2)
    with lock:
        spread = list(done.values())
        done.clear()
    ms = [x * 1000 for x in spread]

    # 2. A storm: many cases breaching within the same second.
    storm_at = datetime.now(UTC) + timedelta(seconds=3)
    dues = [storm_at + timedelta(microseconds=random.randrange(1_000_000)) for _ in range(a.storm)]
    add_breaching(store, dues, "storm")
    print(f"storm: {a.storm} cases breaching within one second …", flush=True)
    end = time.monotonic() + 30
    while len(done) < a.storm and time.monotonic() < end:
        time.sleep(0.1)
    with lock:
        storm = list(done.values())
    last_due = max(dues)
    storm_span = max(storm) if storm else float("nan")  # worst case: deadline → escalated
    stop.set()
    th.join(30)

    # 3. A sweep when nothing is due.
    idle = []
    for _ in range(a.idle_runs):
        t0 = time.perf_counter()
        res = sweep(store, policy, datetime.now(UTC))
        idle.append((time.perf_counter() - t0) * 1000)
        assert not res
    errors = [x for x in log.getvalue().splitlines() if '"level": "error"' in x]

    print(f"\nresults ({a.open:,} open, {a.closed:,} closed cases; SQLite):")
    if ms:
        line(f"spread lateness p50 ({len(ms)} cases)", pct(ms, 50), "ms", "-", True)
        line("spread lateness p99", pct(ms, 99), "ms", "<= 100 ms", pct(ms, 99) <= 100)
        line("spread lateness max", max(ms), "ms", "-", True)
    if len(ms) < a.spread:
        print(f"  spread: only {len(ms)} of {a.spread} escalated")
    if storm:
        sms = [x * 1000 for x in storm]
        line(f"storm lateness p50 ({len(storm)} cases)", pct(sms, 50), "ms", "-", True)
        line("storm lateness p99", pct(sms, 99), "ms", "-", True)
        line(
            "storm: deadline → last one escalated (max)",
            storm_span * 1000,
            "ms",
            "<= 1000 ms",
            storm_span <= 1 and len(storm) == a.storm,
        )
        print(f"  storm: last deadline {last_due.time()} UTC, {len(storm)}/{a.storm} escalated")
    line(
        f"idle sweep median ({a.idle_runs} runs)",
        statistics.median(idle),
        "ms",
        "<= 5 ms",
        statistics.median(idle) <= 5,
    )
    line("idle sweep p99", pct(idle, 99), "ms", "-", True)
    if errors:
        print(f"  daemon logged {len(errors)} errors, first: {errors[0][:300]}")
    engine.dispose()
    if a.db is None:
        import shutil

        shutil.rmtree(db.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
