"""How long one outbox claim holds SQLite's write lock with N notices queued (issue 15).

The write transaction is timed from its first statement (`_serialise_claims`) to its commit.
Compare with another copy of the code: PYTHONPATH=/path/to/old/pkg python bench/claim_hold.py.

Usage: .venv/bin/python bench/claim_hold.py [N=1000]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.append(str(ROOT))  # after PYTHONPATH: another copy of `tafang` can be measured

import tafang.sla.notify.claim as cm  # noqa: E402
from baselines import load  # noqa: E402
from sqlalchemy import event  # noqa: E402
from tafang.sla.notify import NotifySettings  # noqa: E402
from tafang.store.cases import Store  # noqa: E402
from tafang.store.config import load_config  # noqa: E402
from tafang.store.db import make_engine  # noqa: E402
from tafang.store.outbox import enqueue  # noqa: E402

from tests.test_notify import T0, deployment_with  # noqa: E402
from tests.test_notify import event as notice_event  # noqa: E402

ROBOT = {"level": "grid", "name": "W", "url": "http://127.0.0.1:9/h", "rate_per_minute": 20}


def once(n: int, d: Any) -> tuple[float, float]:
    """(write-lock hold, whole claim) in ms, on a new store with n notices queued."""
    store = Store(make_engine(f"sqlite:///{tempfile.mktemp(suffix='.db')}"), d)
    with store.write() as (conn, _head):
        for i in range(n):
            e = notice_event(level_name="grid", title="烟感告警 " * 10)
            enqueue(conn, key=f"k{i}", contact="grid", case_id=e["case_id"], event=e, now=T0)
    t: dict[str, float] = {}
    real = cm._serialise_claims

    def serialise(conn: Any) -> None:
        t.setdefault("begin", time.perf_counter())
        real(conn)

    cm._serialise_claims = serialise  # type: ignore[assignment]
    event.listen(store.engine, "commit", lambda _c: t.__setitem__("commit", time.perf_counter()))
    t0 = time.perf_counter()
    try:
        cm.claim(store, d, T0, NotifySettings())
    finally:
        cm._serialise_claims = real  # type: ignore[assignment]
        store.engine.dispose()
    return (t["commit"] - t["begin"]) * 1000, (time.perf_counter() - t0) * 1000


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    d = deployment_with(load_config(ROOT / "tests" / "fixtures" / "tiny.toml"), [ROBOT])
    print(f"{cm.__file__}; {load()}")
    runs = [once(n, d) for _ in range(5)]
    holds = [h for h, _ in runs]
    whole = statistics.median(t for _, t in runs)
    print(f"{n} queued: write lock held median {statistics.median(holds):.1f} ms, max "
          f"{max(holds):.1f} ms; whole claim median {whole:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
