"""Live-update benchmark (DESIGN §5): another terminal's change → seen here, p50/p95/max.

A writer process (its own engine, as another terminal) acknowledges --changes cases one by
one via `store.act`, at random 20–80 ms gaps, and reports when it called act. This process
watches like the console's poll worker: `ChangeFeed.wait` (PostgreSQL LISTEN/NOTIFY,
SQLite data_version), then `change_seq()` and `changed_since(seq)`; a change is "seen" when
`changed_since` has returned its row. Latency = seen − the writer's call to act (so it
includes the write and commit themselves; both clocks are CLOCK_MONOTONIC of one machine).
The console paints the delta in its next frame: add ≤ 17 ms for it to be on screen (and
the `store.officers()` read the console does with each delta, printed separately).

With --baseline the old loop (sleep 0.3 s, then change_seq) is measured as well.
Each store's figures are also printed as ratios to a raw one-row commit on the same kind of
store measured in the same run (bench/baselines.py), with the load average.

Usage: .venv/bin/python bench/live.py [--changes 200] [--pg URL] [--no-pg] [--no-sqlite]
       [--baseline]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from tafang.store.cases import Actor, Store  # noqa: E402
from tafang.store.changes import ChangeFeed  # noqa: E402
from tafang.store.config import load_config  # noqa: E402
from tafang.store.db import make_engine  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))
from baselines import Spread, load, pg_commit, ratio, sqlite_commit  # noqa: E402

TARGET_P95_MS = {"postgresql": 200.0, "sqlite": 1000.0}
FRAME_MS = 17.0
PG_ADMIN = os.environ.get("TAFANG_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
WRITER = Actor("d02", "bench-writer")


def writer(url: str, ids: list[int], go: Any, out: Any, seed: int) -> None:
    """The other terminal: ack each case, say when act was called and when it returned."""
    d = load_config(ROOT / "config.toml")
    engine = make_engine(url, upgrade=False)
    store = Store(engine, d)
    rnd = random.Random(seed)
    go.wait()
    for cid in ids:
        time.sleep(rnd.uniform(0.02, 0.08))
        t0 = time.monotonic()
        view = store.act(cid, "ack", WRITER)
        out.put((cid, view.version, t0, time.monotonic()))
    out.put(None)
    engine.dispose()


def measure(url: str, n: int, mode: str) -> dict[str, Any]:
    """Run one writer against one watcher; latencies in ms."""
    d = load_config(ROOT / "config.toml")
    engine = make_engine(url)
    store = Store(engine, d)
    ids = [
        store.create({"source": "ping_an", "title": f"bench {i}", "category": "0590"}, WRITER).id
        for i in range(n)
    ]
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=writer, args=(url, ids, go, out, 7), daemon=True)
    proc.start()
    feed = ChangeFeed(engine) if mode == "feed" else None
    seen: dict[tuple[int, int], float] = {}
    officers_ms: list[float] = []
    seq = store.change_seq()
    time.sleep(1.0)  # let the writer import and connect before the clock starts
    go.set()
    deadline = time.monotonic() + n * 0.08 + 30
    try:
        while len(seen) < n and time.monotonic() < deadline:
            if feed is not None:
                if not feed.wait(0.1):
                    continue
            else:
                time.sleep(0.3)
            s = store.change_seq()
            if s == seq:
                continue
            rows = store.changed_since(seq)
            t = time.monotonic()
            for r in rows:
                seen.setdefault((r.id, r.version), t)
            seq = max([s, *(r.updated_seq for r in rows)])
            t1 = time.perf_counter()
            store.officers()
            officers_ms.append((time.perf_counter() - t1) * 1000)
    finally:
        if feed is not None:
            feed.close()
    sent: list[tuple[int, int, float, float]] = []
    while (item := out.get(timeout=30)) is not None:
        sent.append(item)
    proc.join(10)
    engine.dispose()
    lat = [(seen[(cid, v)] - t0) * 1000 for cid, v, t0, _ in sent if (cid, v) in seen]
    act = [(t1 - t0) * 1000 for _, _, t0, t1 in sent]
    return {
        "n": len(sent),
        "missed": len(sent) - len(lat),
        "lat": lat,
        "act": statistics.median(act),
        "officers": statistics.median(officers_ms) if officers_ms else 0.0,
    }


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def raw_commit(url: str) -> Spread:
    """The baseline: one-row raw commits on the same kind of store, now."""
    if url.startswith("sqlite"):
        return sqlite_commit()
    from sqlalchemy.engine import make_url

    return pg_commit(make_url(url).set(drivername="postgresql").render_as_string(False))


def report(kind: str, mode: str, r: dict[str, Any], base: Spread) -> None:
    lat = r["lat"]
    target = TARGET_P95_MS[kind]
    p95 = pct(lat, 95)
    label = "feed" if mode == "feed" else "old 0.3 s poll"
    ok = "OK" if p95 + FRAME_MS <= target and not r["missed"] else "MISS"
    print(
        f"{kind:<10} {label:<15} n={r['n']:<4} p50 {pct(lat, 50):7.1f}  p95 {p95:7.1f}  "
        f"max {max(lat):7.1f} ms   (+≤{FRAME_MS:.0f} ms frame → p95 on screen ≤ "
        f"{p95 + FRAME_MS:.0f} ms; target ≤ {target:.0f})  {ok}"
    )
    print(
        f"{'':<10} {'':<15} act (write+commit) median {r['act']:.1f} ms; "
        f"console's officers() read per delta median {r['officers']:.1f} ms; "
        f"missed {r['missed']}"
    )
    print(
        f"{'':<10} {'':<15} baseline raw commit {base}; p50 {ratio(pct(lat, 50), base.p50)}, "
        f"p95 {ratio(p95, base.p99)} its p99, act {ratio(r['act'], base.p50)}; {load()}"
    )


@contextmanager
def fresh_pg(admin_url: str) -> Iterator[str]:
    name = f"tafang_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as c:
            c.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--pg", default=PG_ADMIN, help="an existing database to create a temp DB on")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true")
    ap.add_argument("--baseline", action="store_true", help="also measure the old 0.3 s poll")
    a = ap.parse_args()
    modes = ["feed", "poll"] if a.baseline else ["feed"]
    print(f"change → seen latency over {a.changes} changes (another process writing)")
    if not a.no_sqlite:
        for mode in modes:
            with tempfile.TemporaryDirectory() as tmp:
                base = raw_commit("sqlite://")
                r = measure(f"sqlite:///{tmp}/live.db", a.changes, mode)
                report("sqlite", mode, r, base)
    if not a.no_pg:
        for mode in modes:
            with fresh_pg(a.pg) as url:
                base = raw_commit(url)
                report("postgresql", mode, measure(url, a.changes, mode), base)


if __name__ == "__main__":
    main()
