"""Baselines measured in the same run as a bench, so that its figures hold on any machine.

A bench prints each figure beside its ratio to a baseline taken moments before, on the same
machine and load: what the platform itself costs for the same kind of work.

- `scheduler_lateness`: an APScheduler date job's lateness (the floor under a timer-driven
  escalation);
- `sqlite_commit` / `pg_commit`: one-row raw commits (the floor under a transaction);
- `textual_bare` (in bench/console.py's process): a bare Textual app's first frame and
  key → repaint.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path


@dataclass(frozen=True)
class Spread:
    """p50 / p99 / max of one sample, in milliseconds."""

    p50: float
    p99: float
    max: float
    n: int

    @classmethod
    def of(cls, xs: list[float]) -> Spread:
        return cls(pct(xs, 50), pct(xs, 99), max(xs), len(xs))

    def __str__(self) -> str:
        return f"{self.p50:.2f} / {self.p99:.2f} / {self.max:.2f} ms"


def pct(xs: list[float], p: float) -> float:
    """The p-th percentile, nearest rank (never beyond the worst sample)."""
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(p / 100 * len(s)) - 1))]


def ratio(value: float, base: float) -> str:
    """`value` as a multiple of `base`, printed as `×N.N` (`×-` when base is ~0)."""
    return f"×{value / base:.1f}" if base > 1e-6 else "×-"


def load() -> str:
    """The load average, as the bench states it before a run."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def scheduler_lateness(n: int = 100, seconds: float = 3.0) -> Spread:
    """Lateness of `n` APScheduler date jobs spread over `seconds` (thread-pool executor, as
    the daemon): run start − run_date, in ms."""
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler

    sched = BackgroundScheduler(timezone=UTC, executors={"default": ThreadPoolExecutor(8)})
    sched.start()
    late: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def job(at: datetime) -> None:
        ms = (datetime.now(UTC) - at).total_seconds() * 1000
        with lock:
            late.append(ms)
            if len(late) == n:
                done.set()

    t0 = datetime.now(UTC) + timedelta(milliseconds=200)
    for i in range(n):
        at = t0 + timedelta(seconds=seconds * i / n + 0.0007 * (i % 7))
        sched.add_job(job, "date", run_date=at, args=(at,), misfire_grace_time=None)
    done.wait(seconds + 10)
    sched.shutdown(wait=True)
    return Spread.of(late)


def sqlite_commit(n: int = 200, directory: Path | None = None) -> Spread:
    """`n` one-row commits into a fresh SQLite file (WAL, synchronous=NORMAL, as the store)."""
    with tempfile.TemporaryDirectory(prefix="tafang-base-", dir=directory) as tmp:
        con = sqlite3.connect(Path(tmp) / "base.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT)")
        ms = []
        for _ in range(n):
            t = time.perf_counter()
            con.execute("BEGIN IMMEDIATE")
            con.execute("INSERT INTO t (at) VALUES (?)", (datetime.now(UTC).isoformat(),))
            con.execute("COMMIT")
            ms.append((time.perf_counter() - t) * 1000)
        con.close()
    return Spread.of(ms)


def pg_commit(dsn: str, n: int = 200) -> Spread:
    """`n` one-row commits into a plain (logged) table over psycopg: the PostgreSQL floor,
    its WAL flush included (a temporary table's commit skips it)."""
    import psycopg

    table = f"bench_base_{os.getpid()}"
    with psycopg.connect(dsn) as con:
        con.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, at text)")
        con.commit()
        ms = []
        try:
            for _ in range(n):
                t = time.perf_counter()
                con.execute(
                    f"INSERT INTO {table} (at) VALUES (%s)", (datetime.now(UTC).isoformat(),)
                )
                con.commit()
                ms.append((time.perf_counter() - t) * 1000)
        finally:
            con.rollback()
            con.execute(f"DROP TABLE {table}")
            con.commit()
    return Spread.of(ms)


def median(xs: list[float]) -> float:
    return statistics.median(xs)
