"""`tafang audit verify` on a large store (issue 13.3): the chain, keyed, and every case replayed.

Builds a store of N ingested cases (keyed with a throw-away record key), a share of them moved
through a life (ack, dispatch, arrive, handle, close) with the bulk SQL a year would leave
(their record entries chained with the key through `store.record.append`), then times:
  1. the chain walk (`store.record.verify`, keyed);
  2. the replay of every case against the cases table (`store.replay.check_cases`);
and prints the peak RSS (the replay streams windows of case ids: memory stays flat).

Usage: .venv/bin/python bench/record_verify.py [--n 100000] [--moved 0.2] [--db URL]
Default store: a temp SQLite file. Target: verify of a 100k-case store in under 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, update  # noqa: E402
from tafang.sla.policy import Policy  # noqa: E402
from tafang.store.cases import CASES, Actor, Store  # noqa: E402
from tafang.store.config import load_config  # noqa: E402
from tafang.store.db import make_engine  # noqa: E402
from tafang.store.intake import ingest  # noqa: E402
from tafang.store.record import Entry, append, verify  # noqa: E402
from tafang.store.record_key import ENV  # noqa: E402
from tafang.store.replay import check_cases  # noqa: E402

TARGET_S = 60.0
T0 = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
LIFE = ("ack", "dispatch", "arrive", "handle", "close")


def build(store: Store, n: int, moved: float) -> None:
    lines = (
        json.dumps(
            {
                "source": "city_ops",
                "external_id": f"B{i}",
                "title": "共享单车堵塞消防通道",
                "category": "0590",
                "grid": "N1-01",
                "received_at": (T0 + timedelta(seconds=i)).isoformat(),
            }
        )
        for i in range(n)
    )
    ingest(store, lines, origin="bench", actor=Actor("d01", "bench"), now=T0)
    _move(store, int(n * moved))


def _move(store: Store, k: int, batch: int = 2000) -> None:
    """Close k cases the way `Store.act` would leave them, in bulk (act is ~ms a move)."""
    for lo in range(1, k + 1, batch):
        ids = range(lo, min(lo + batch, k + 1))
        rows, entries = [], []
        for cid in ids:
            t = T0 + timedelta(seconds=cid)
            times = [t + timedelta(minutes=m) for m in range(1, 6)]
            rows.append(
                dict(b_id=cid, ack=times[0], dis=times[1], arr=times[2], han=times[3], clo=times[4])
            )
            for action, at in zip(LIFE, times, strict=True):
                detail = {"from": "?", "to": _to(action)}
                if action == "dispatch":
                    detail.update(assignee="2-03", kind="officer")
                entries.append(Entry(at, "d01", "bench", action, cid, detail))
        with store.write() as (conn, head):
            conn.execute(_CLOSE, rows)
            append(conn, head, entries)


def _to(action: str) -> str:
    return {"ack": "acknowledged", "dispatch": "dispatched", "arrive": "on_scene"}.get(
        action, "handled" if action == "handle" else "closed"
    )


_CLOSE = (
    update(CASES)
    .where(CASES.c.id == bindparam("b_id"))
    .values(
        status="closed",
        assignee="2-03",
        assignee_kind="officer",
        acknowledged_at=bindparam("ack"),
        dispatched_at=bindparam("dis"),
        arrived_at=bindparam("arr"),
        handled_at=bindparam("han"),
        closed_at=bindparam("clo"),
    )
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--moved", type=float, default=0.2, help="share of cases taken to closed")
    ap.add_argument("--db", help="store URL (default: a temp SQLite file)")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tafang-verify-"))
    key = tmp / "record-key"
    key.write_bytes(os.urandom(32).hex().encode())
    os.environ[ENV] = str(key)
    d = load_config(ROOT / "config.toml")
    store = Store(make_engine(a.db or f"sqlite:///{tmp / 'b.db'}"), d, clocks=Policy(d))
    t = time.perf_counter()
    build(store, a.n, a.moved)
    print(f"built {a.n:,} cases ({a.moved:.0%} closed) in {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    v = verify(store.engine, key=store.record_key)
    chain = time.perf_counter() - t
    assert v.ok and v.keyed_from == 1, v
    t = time.perf_counter()
    c = check_cases(store.engine)
    cases = time.perf_counter() - t
    assert c.ok and c.cases == a.n, c
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"chain (keyed): {v.checked:,} entries in {chain:.1f} s ({v.checked / chain:,.0f}/s)")
    print(f"cases replayed: {c.cases:,} in {cases:.1f} s ({c.cases / cases:,.0f}/s)")
    total = chain + cases
    print(f"audit verify total: {total:.1f} s (target < {TARGET_S:.0f} s); peak RSS {rss:.0f} MB")
    print(f"load average: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
