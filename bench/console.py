"""Console benchmark (DESIGN §5): first frame, key → repaint, memory, on a big SQLite store.

Builds (or reuses, with --db) a SQLite store holding --open open and --closed closed cases,
bulk-inserted with raw `sqlite3.executemany`, then runs the real console headless
(`App.run_test`) and measures:
  1. time to first frame: from creating the Store and the App until the queue shows the
     open cases (the poll worker's full load applied and painted) — target ≤ 1 s;
  2. key press → repaint p95 for queue navigation (`down`/`up`): from posting the key to the
     first composed frame with the cursor moved (see FrameClock) — target ≤ 16 ms;
  3. key press → repaint p95 for an action that writes the store (`a` = acknowledge): from
     the key to the first frame after the store answered and the row shows it — ≤ 50 ms;
  4. resident memory (peak RSS of the process) — target ≤ 200 MB.

Usage: .venv/bin/python bench/console.py [--open 10000] [--closed 1000000] [--presses 200]
       [--actions 50] [--db PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402

from console.app import TafangApp  # noqa: E402
from store.cases import Store  # noqa: E402
from store.config import Deployment, load_config  # noqa: E402
from store.db import make_engine  # noqa: E402

TARGET_FIRST_FRAME_S = 1.0
TARGET_NAV_P95_MS = 16.0
TARGET_ACTION_P95_MS = 50.0
TARGET_RSS_MB = 200.0

COLUMNS = (
    "source", "external_id", "title", "description", "category", "grid", "location",
    "priority", "reporter", "received_at", "raw", "triage", "triage_reason", "status",
    "escalation_level", "supervised", "acknowledged_at", "dispatched_at", "arrived_at",
    "handled_at", "closed_at", "respond_due", "dispatch_due", "arrive_due", "resolve_due",
    "next_check_at", "version", "updated_at", "updated_by", "updated_terminal", "updated_seq",
)  # fmt: skip
TITLES = ("共享单车堵塞消防通道", "夜间施工噪音扰民", "餐馆门口摆桌占道", "垃圾桶满溢无人清运",
          "电动车楼道起火", "流动摊贩占道经营", "楼道堆放杂物", "餐饮油烟直排")  # fmt: skip


def ts(t: datetime) -> str:
    """How SQLAlchemy stores a UTC datetime in SQLite."""
    return t.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def build(path: Path, d: Deployment, n_open: int, n_closed: int) -> None:
    """Create the schema (migrations), then bulk-insert the cases with raw executemany."""
    make_engine(f"sqlite:///{path}").dispose()
    rng = random.Random(7)
    grids = [g.code for g in d.tower.grids]
    cats = [c.code for c in d.categories]
    chans = [c.code for c in d.channels]
    now = datetime.now(UTC)
    seq = 0

    def rows(n: int, closed: bool):  # type: ignore[no-untyped-def]
        nonlocal seq
        for i in range(n):
            seq += 1
            if closed:
                rec = now - timedelta(days=1 + rng.random() * 364)
                done = (rec + timedelta(seconds=30), rec + timedelta(seconds=120),
                        rec + timedelta(seconds=280), rec + timedelta(hours=2),
                        rec + timedelta(hours=3))  # fmt: skip
                status, due_check = "closed", None
            else:
                rec = now - timedelta(seconds=rng.uniform(0, 3600))
                done = (None,) * 5
                status, due_check = "new", rec + timedelta(seconds=60)
            yield (
                rng.choice(chans), f"b-{'c' if closed else 'o'}-{i}", rng.choice(TITLES), "",
                rng.choice(cats), rng.choice(grids), "", "normal", "", ts(rec), "{}", 0, "",
                status, 0, 0,
                *(ts(t) if t else None for t in done),
                ts(rec + timedelta(seconds=60)), ts(rec + timedelta(seconds=180)),
                ts(rec + timedelta(seconds=300)), ts(rec + timedelta(days=1)),
                ts(due_check) if due_check else None,
                1, ts(rec), "bench", "bench", seq,
            )  # fmt: skip

    sql = f"INSERT INTO cases ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    with con:
        con.executemany(sql, rows(n_closed, True))
        con.executemany(sql, rows(n_open, False))
        con.execute("UPDATE audit_head SET change_seq = ? WHERE id = 1", (seq,))
    con.execute("ANALYZE")
    con.close()


def p95(xs: list[float]) -> float:
    return statistics.quantiles(xs, n=20)[-1] if len(xs) >= 2 else xs[0]


def rss_mb() -> tuple[float, float]:
    """(current VmRSS, peak) in MB."""
    cur = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            cur = int(line.split()[1]) / 1024
    return cur, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class FrameClock:
    """Stamps the first composed frame that shows what a probe waits for.

    Headless Textual composes every frame (render_line of each changed line) and then skips
    only the terminal write in `App._display`; wrapping `_display` therefore times key →
    repaint without the harness's own idle-waiting (Pilot.pause polls for CPU idle, which
    alone costs ~80 ms per press even in an empty app).
    """

    def __init__(self, app: TafangApp) -> None:
        self.probe: Callable[[], bool] | None = None
        self.at: float | None = None
        original = app._display

        def display(screen, renderable):  # type: ignore[no-untyped-def]
            if renderable is not None and self.probe is not None and self.probe():
                self.at = time.perf_counter()
                self.probe = None
            original(screen, renderable)

        app._display = display  # type: ignore[method-assign]

    async def key(self, app: TafangApp, key: str, probe: Callable[[], bool]) -> float:
        """Post one key press; milliseconds until a frame shows `probe()` true."""
        self.at, self.probe = None, probe
        t0 = time.perf_counter()
        app.post_message(events.Key(key, None))
        while self.at is None:
            if time.perf_counter() - t0 > 5:
                raise TimeoutError(f"no frame after {key!r} within 5 s")
            await asyncio.sleep(0.0005)
        return (self.at - t0) * 1000


async def measure(path: Path, d: Deployment, n_open: int, presses: int, actions: int) -> dict:
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    engine = make_engine(f"sqlite:///{path}")
    store = Store(engine, d)
    app = TafangApp(store, d, operator="d01", terminal="bench", lang="zh")
    async with app.run_test(size=(200, 60)) as pilot:
        frames = FrameClock(app)
        queue = app.dash.queue
        frames.probe = lambda: app.loaded and len(queue.rows) >= n_open
        while frames.at is None:
            await asyncio.sleep(0.001)
        out["first_frame_s"] = frames.at - t0
        queue.focus()
        await pilot.pause()
        nav: list[float] = []
        for i in range(presses):
            key, step = ("down", 1) if (i // 50) % 2 == 0 else ("up", -1)
            want = queue.cursor_row + step
            nav.append(await frames.key(app, key, lambda w=want: queue.cursor_row == w))
        out["nav_p95_ms"] = p95(nav)
        out["nav_median_ms"] = statistics.median(nav)
        act: list[float] = []
        for _ in range(actions):
            cid = next(r.case_id for r in queue.rows if r.status == "new")
            queue.select_case(cid)
            await pilot.pause()
            act.append(
                await frames.key(
                    app, "a", lambda c=cid: app.state.cases[c].status == "acknowledged"
                )
            )
        out["action_p95_ms"] = p95(act)
        out["action_median_ms"] = statistics.median(act)
        out["rss_mb"], out["peak_rss_mb"] = rss_mb()
    engine.dispose()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--open", type=int, default=10_000, help="open cases (default 10000)")
    ap.add_argument("--closed", type=int, default=1_000_000, help="closed cases (default 1M)")
    ap.add_argument("--presses", type=int, default=200, help="navigation key presses")
    ap.add_argument("--actions", type=int, default=50, help="acknowledge key presses")
    ap.add_argument("--db", help="SQLite file to build once and reuse (default: a temp file)")
    a = ap.parse_args()
    d = load_config(ROOT / "config.toml")
    if a.db:
        path = Path(a.db)
    else:
        path = Path(tempfile.mkdtemp(prefix="tafang-bench-")) / "bench.db"
    if not path.exists():
        t = time.perf_counter()
        build(path, d, a.open, a.closed)
        print(f"built {path}: {a.open:,} open + {a.closed:,} closed in "
              f"{time.perf_counter() - t:.1f} s")  # fmt: skip
    r = asyncio.run(measure(path, d, a.open, a.presses, a.actions))
    ok = lambda v, target: "ok" if v <= target else "MISSED"  # noqa: E731
    print(f"first frame          {r['first_frame_s']:8.3f} s    target ≤ {TARGET_FIRST_FRAME_S} s"
          f"   {ok(r['first_frame_s'], TARGET_FIRST_FRAME_S)}")  # fmt: skip
    print(f"navigation p95       {r['nav_p95_ms']:8.2f} ms   target ≤ {TARGET_NAV_P95_MS} ms"
          f"   {ok(r['nav_p95_ms'], TARGET_NAV_P95_MS)}  (median {r['nav_median_ms']:.2f} ms,"
          f" {a.presses} presses)")  # fmt: skip
    print(f"write action p95     {r['action_p95_ms']:8.2f} ms   target ≤ {TARGET_ACTION_P95_MS}"
          f" ms   {ok(r['action_p95_ms'], TARGET_ACTION_P95_MS)}  (median "
          f"{r['action_median_ms']:.2f} ms, {a.actions} acks)")  # fmt: skip
    peak = r["peak_rss_mb"]
    print(f"resident memory      {r['rss_mb']:8.1f} MB   target ≤ {TARGET_RSS_MB:.0f} MB"
          f"   {ok(peak, TARGET_RSS_MB)}  (peak {peak:.1f} MB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
