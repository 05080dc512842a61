"""Console benchmark (DESIGN §5): first frame, key → repaint, memory, on a big SQLite store.

Builds (or reuses, with --db) a SQLite store holding --open open and --closed closed cases,
bulk-inserted with raw `sqlite3.executemany`, then runs the real console headless
(`App.run_test`, 200×60, its live poll worker and once-a-second tick running) and measures:
  0. start-up from process start: `python -m tafang console` spawned under a pseudo-terminal,
     until the bytes it wrote show a queue row (see `startup`) — target ≤ 1.5 s (median of
     --startup-runs runs; the worst is printed beside it);
  1. time to first frame: from creating the Store and the App until the queue shows the
     open cases (the poll worker's full load applied and painted) — target ≤ 1 s;
  2. key → repaint p50/p95 for queue navigation (`down`/`up`, scrolling past the page) —
     target p95 ≤ 16 ms (one frame);
  3. key → repaint p50/p95 for an action that writes the store (`a` = acknowledge, through
     `Store.act` in a thread worker): until the first frame after the store answered that
     shows the acknowledged row — target p95 ≤ 50 ms;
  3b. the dispatch panel's Enter, `:a ID` and `:d ID CODE` on the command line: from the
     Enter key until the frame that shows the row's new state — target p95 ≤ 100 ms;
  4. resident memory (current and peak RSS of the process) — target ≤ 200 MB.

Baseline (same run, same process, same frame clock): a bare Textual app (one Static that
counts key presses) — its first frame and its key → repaint, timed exactly as above. Each
figure is printed beside its ratio to the baseline, so runs on different machines compare.

Method (what a dispatcher feels, not a synthetic stream):
  * Keys are spaced like a person typing: one every --gap ms (default 60 ms ± 15 ms jitter,
    i.e. ~16 keys a second, faster than anyone reads a queue). A key sent the instant the
    previous frame appeared would wait for the next slot of Textual's frame clock and measure
    frame pacing, not the console; a key sent at a random moment meets whatever is in
    flight (the 1 s tick, a poll answer, the frame clock), which is the real queueing.
  * t0 is the moment the key reaches the app's message queue (`App.post_message`, as the
    driver thread does); the stop is the moment the first frame showing the change has been
    composed *and* turned into the terminal byte string (`App._display` is wrapped: headless
    Textual composes every changed line and skips only the write, so the wrapper also runs
    `CompositorUpdate.render_segments` — the write itself is one `os.write`).
  * The probe is the visible state: the queue cursor on the expected line, the acknowledged
    case's row in the queue showing its new status.
  * --fps sets TEXTUAL_FPS before Textual is imported (Textual's default frame clock is
    60 fps; the console's entry point raises it, see console/app.py).

Usage: .venv/bin/python bench/console.py [--open 10000] [--closed 1000000] [--presses 200]
       [--actions 50] [--gap 60] [--db PATH] [--profile FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Textual reads its frame rate once, at import: --fps must be in the environment before.
_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--fps", type=int)
if (_fps := _pre.parse_known_args()[0].fps) is not None:
    os.environ["TEXTUAL_FPS"] = str(_fps)

# isort: off
from tafang.console.app import TafangApp  # noqa: E402  (the first import of Textual: its frame rate)
from textual import constants, events  # noqa: E402
from textual._compositor import CompositorUpdate  # noqa: E402

# isort: on

from tafang.store.cases import Store  # noqa: E402
from tafang.store.config import Deployment, load_config  # noqa: E402
from tafang.store.db import make_engine  # noqa: E402

TARGET_STARTUP_S = 1.5
TARGET_FIRST_FRAME_S = 1.0
TARGET_NAV_P95_MS = 16.0
TARGET_ACTION_P95_MS = 50.0
TARGET_OTHER_P95_MS = 100.0
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


def startup(path: Path, probe: tuple[str, ...] = TITLES, timeout: float = 30.0) -> float:
    """Seconds from process start to the first terminal output that shows queue rows.

    What the dispatcher meets: `python -m tafang console` spawned under a pseudo-terminal
    (120×36) on the bench store; the clock starts just before the spawn and stops when the
    bytes the console has written contain a case title (a queue row). Then the console is
    sent ctrl+q and reaped."""
    import pty
    import select
    import signal
    import struct
    import termios
    from fcntl import ioctl

    env = dict(os.environ, TERM="xterm-256color", COLUMNS="120", LINES="36")
    argv = [sys.executable, "-m", "tafang", "--db", str(path), "--config",
            str(ROOT / "config.toml"), "console"]  # fmt: skip
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # the child: the console, as typed at a prompt
        os.execvpe(argv[0], argv, env)
    ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 36, 120, 0, 0))
    seen, wanted = b"", [w.encode() for w in probe]
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(fd, 1 << 16)
                except OSError:  # the console exited: say what it wrote
                    raise RuntimeError(f"console exited: {seen[-2000:]!r}") from None
                if any(w in seen for w in wanted):
                    return time.perf_counter() - t0
        raise TimeoutError(f"no queue row on the terminal within {timeout} s")
    finally:
        with suppress_os():
            os.write(fd, b"\x11")  # ctrl+q
            deadline = time.perf_counter() + 3
            while time.perf_counter() < deadline and os.waitpid(pid, os.WNOHANG) == (0, 0):
                with suppress_os():
                    select.select([fd], [], [], 0.05) and os.read(fd, 1 << 16)
            if os.waitpid(pid, os.WNOHANG) == (0, 0):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        os.close(fd)


def suppress_os():  # type: ignore[no-untyped-def]
    import contextlib

    return contextlib.suppress(OSError, ChildProcessError)


def pct(xs: list[float], p: int) -> float:
    """The p-th percentile (inclusive method: no extrapolation beyond the worst sample)."""
    if len(xs) < 2:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[p - 1]


def rss_mb() -> tuple[float, float]:
    """(current VmRSS, peak) in MB."""
    cur = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            cur = int(line.split()[1]) / 1024
    return cur, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class FrameClock:
    """Stamps the first frame, composed and encoded for the terminal, that shows what a probe
    waits for.

    Headless Textual composes every frame (render_line of each changed line) and then skips
    only the terminal write in `App._display`; the wrapper encodes the update as the real
    driver would (`render_segments`) and then stamps. Timing the frame itself avoids the
    harness's idle-waiting (Pilot.pause polls for CPU idle: ~80 ms a press on its own).
    """

    def __init__(self, app: TafangApp) -> None:
        self.probe: Callable[[], bool] | None = None
        self.at: float | None = None
        self.frames = 0
        original = app._display

        def display(screen, renderable):  # type: ignore[no-untyped-def]
            if renderable is not None:
                self.frames += 1
                if isinstance(renderable, CompositorUpdate):
                    renderable.render_segments(app.console)
                if self.probe is not None and self.probe():
                    self.at = time.perf_counter()
                    self.probe = None
            original(screen, renderable)

        app._display = display  # type: ignore[method-assign]

    async def wait(self, probe: Callable[[], bool], t0: float, what: str) -> float:
        """Milliseconds from `t0` until a frame shows `probe()` true."""
        self.at, self.probe = None, probe
        while self.at is None:
            if time.perf_counter() - t0 > 5:
                raise TimeoutError(f"no frame after {what!r} within 5 s")
            await asyncio.sleep(0.0005)
        return (self.at - t0) * 1000

    async def key(self, app: TafangApp, key: str, probe: Callable[[], bool]) -> float:
        """Post one key press as the driver does; milliseconds until a frame shows it."""
        self.at, self.probe = None, probe
        t0 = time.perf_counter()
        app.post_message(events.Key(key, None))
        return await self.wait(probe, t0, key)


async def spaced(rng: random.Random, gap_ms: float, since: float) -> None:
    """Wait until one human key interval (gap ± 25 %) has passed since `since`."""
    gap = gap_ms * rng.uniform(0.75, 1.25) / 1000
    left = since + gap - time.perf_counter()
    if left > 0:
        await asyncio.sleep(left)


async def measure(
    path: Path, d: Deployment, n_open: int, presses: int, actions: int, gap_ms: float,
    profile: cProfile.Profile | None = None,
) -> dict:  # fmt: skip
    out: dict[str, Any] = {}
    rng = random.Random(11)
    t0 = time.perf_counter()
    engine = make_engine(f"sqlite:///{path}")
    store = Store(engine, d)
    app = TafangApp(store, d, operator="d01", terminal="bench", lang="zh")
    async with app.run_test(size=(200, 60)):
        frames = FrameClock(app)
        queue = app.dash.queue
        await frames.wait(lambda: app.loaded and len(queue.rows) >= n_open, t0, "first load")
        out["first_frame_s"] = frames.at - t0  # type: ignore[operator]
        queue.focus()
        await asyncio.sleep(2.0)  # the day's figures (first_slow) arrive: a steady console
        if profile is not None:
            profile.enable()
        nav: list[float] = []
        last = time.perf_counter()
        for i in range(presses):
            key, step = ("down", 1) if (i // 50) % 2 == 0 else ("up", -1)
            want = queue.cursor_row + step
            await spaced(rng, gap_ms, last)
            last = time.perf_counter()
            nav.append(await frames.key(app, key, lambda w=want: queue.cursor_row == w))
        act: list[float] = []
        for _ in range(actions):
            cid = next(r.case_id for r in queue.rows if r.status == "new")
            queue.select_case(cid)
            await spaced(rng, gap_ms, last)
            last = time.perf_counter()

            def acked(c: int = cid) -> bool:
                row = queue.row_for(c)
                return row is not None and row.status == "acknowledged"

            act.append(await frames.key(app, "a", acked))
        out["panel"], out["cmd_a"], out["cmd_d"] = await other_paths(
            app, frames, rng, gap_ms, actions // 2 or 1
        )
        if profile is not None:
            profile.disable()
        out["nav"], out["act"] = nav, act
        out["rss_mb"], out["peak_rss_mb"] = rss_mb()
        out["frames"] = frames.frames
    engine.dispose()
    return out


async def bare_baseline(presses: int, gap_ms: float) -> tuple[float, list[float]]:
    """A bare Textual app's first frame (s) and key → repaint (ms), timed like the console."""
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class Bare(App[None]):
        def __init__(self) -> None:
            super().__init__()
            self.n = 0

        def compose(self) -> ComposeResult:
            yield Static("0")

        def on_key(self, _event: events.Key) -> None:
            self.n += 1
            self.query_one(Static).update(str(self.n))

    rng = random.Random(5)
    t0 = time.perf_counter()
    app = Bare()
    frames = FrameClock(app)  # type: ignore[arg-type]
    frames.probe = lambda: True
    async with app.run_test(size=(200, 60)):
        while frames.at is None:  # the first frame, stamped by the probe set before start
            await asyncio.sleep(0.0005)
        first = frames.at - t0  # type: ignore[operator]
        await asyncio.sleep(0.5)
        keys: list[float] = []
        last = time.perf_counter()
        for i in range(presses):
            await spaced(rng, gap_ms, last)
            last = time.perf_counter()
            keys.append(await frames.key(app, "x", lambda w=i + 1: app.n >= w))  # type: ignore[arg-type]
    return first, keys


def _status_is(app: TafangApp, cid: int, status: str) -> Callable[[], bool]:
    def probe() -> bool:
        row = app.dash.queue.row_for(cid)
        return row is not None and row.status == status

    return probe


async def _type(app: TafangApp, text: str) -> None:
    """Type a command line (untimed): `:` as a key, then the line put into the input."""
    app.post_message(events.Key("colon", ":"))
    while not app.dash.command.has_focus:
        await asyncio.sleep(0.005)
    app.dash.command.value = text
    await asyncio.sleep(0.05)


async def other_paths(
    app: TafangApp, frames: FrameClock, rng: random.Random, gap_ms: float, n: int
) -> tuple[list[float], list[float], list[float]]:
    """Key → visible result for the dispatch panel's Enter, `:a ID` and `:d ID CODE` (Enter
    on the command line), each timed from the Enter key to the frame showing the new row."""
    from tafang.widgets.dispatch_panel import DispatchPanel

    panel = app.dash.query_one(DispatchPanel)
    queue = app.dash.queue
    panel_enter: list[float] = []
    cmd_a: list[float] = []
    cmd_d: list[float] = []
    officers = [o.code for s in app.d.squads for o in s.officers]
    for i in range(n):
        new = [r.case_id for r in queue.rows if r.status == "new"]
        cid = new[0]
        queue.select_case(cid)
        queue.focus()
        app.post_message(events.Key("d", "d"))
        while not panel.is_open:
            await asyncio.sleep(0.005)
        await spaced(rng, gap_ms, time.perf_counter())
        panel_enter.append(await frames.key(app, "enter", _status_is(app, cid, "dispatched")))
        await asyncio.sleep(0.1)
        a_id, d_id = new[1], new[2]
        await _type(app, f"a {a_id}")
        cmd_a.append(await frames.key(app, "enter", _status_is(app, a_id, "acknowledged")))
        await asyncio.sleep(0.1)
        await _type(app, f"d {d_id} {officers[i % len(officers)]}")
        cmd_d.append(await frames.key(app, "enter", _status_is(app, d_id, "dispatched")))
        await asyncio.sleep(0.1)
    return panel_enter, cmd_a, cmd_d


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--open", type=int, default=10_000, help="open cases (default 10000)")
    ap.add_argument("--closed", type=int, default=1_000_000, help="closed cases (default 1M)")
    ap.add_argument("--presses", type=int, default=200, help="navigation key presses")
    ap.add_argument("--actions", type=int, default=50, help="acknowledge key presses")
    ap.add_argument("--gap", type=float, default=60.0, help="ms between keys (±25 %%)")
    ap.add_argument("--fps", type=int, help="TEXTUAL_FPS (default: the console's own)")
    ap.add_argument("--db", help="SQLite file to build once and reuse (default: a temp file)")
    ap.add_argument("--profile", help="write a cProfile of the UI thread (keys only) here")
    ap.add_argument("--startup-runs", type=int, default=5, help="process start-ups to time")
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
    with sqlite3.connect(path) as con:
        n_closed = con.execute("SELECT count(*) FROM cases WHERE status = 'closed'").fetchone()[0]
    starts = [startup(path) for _ in range(a.startup_runs)]
    base_first, base_keys = asyncio.run(bare_baseline(min(a.presses, 100), a.gap))
    base_p95 = pct(base_keys, 95)
    profile = cProfile.Profile() if a.profile else None
    r = asyncio.run(measure(path, d, a.open, a.presses, a.actions, a.gap, profile))
    if profile is not None:
        profile.dump_stats(a.profile)
    ok = lambda v, target: "ok" if v <= target else "MISSED"  # noqa: E731
    x = lambda v, b: f"×{v / b:.1f}" if b > 0 else "×-"  # noqa: E731
    nav, act = r["nav"], r["act"]
    print(f"store {path}: {a.open:,} open, {n_closed:,} closed; {constants.MAX_FPS} fps; "
          f"keys every {a.gap:.0f} ms ± 25 %")  # fmt: skip
    if starts:
        mid = statistics.median(starts)
        print(f"start-up (process)   {mid:8.3f} s    target ≤ {TARGET_STARTUP_S} s"
              f"   {ok(mid, TARGET_STARTUP_S)}  (worst {max(starts):.3f} s of {len(starts)};"
              f" load average {os.getloadavg()[0]:.2f})")  # fmt: skip
    print(f"baseline: a bare Textual app's first frame {base_first:.3f} s, key → repaint p50 "
          f"{pct(base_keys, 50):.2f} / p95 {base_p95:.2f} ms ({len(base_keys)} keys); "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")  # fmt: skip
    print(f"first frame          {r['first_frame_s']:8.3f} s    target ≤ {TARGET_FIRST_FRAME_S} s"
          f"   {ok(r['first_frame_s'], TARGET_FIRST_FRAME_S)}"
          f"  ({x(r['first_frame_s'], base_first)} the bare app's)")  # fmt: skip
    for name, xs, target in (("navigation", nav, TARGET_NAV_P95_MS),
                             ("write action", act, TARGET_ACTION_P95_MS),
                             ("panel Enter", r["panel"], TARGET_OTHER_P95_MS),
                             (":a ID Enter", r["cmd_a"], TARGET_OTHER_P95_MS),
                             (":d ID CODE Enter", r["cmd_d"], TARGET_OTHER_P95_MS)):  # fmt: skip
        p95 = pct(xs, 95)
        print(f"{name + ' p95':<20} {p95:8.2f} ms   target ≤ {target:.0f} ms   {ok(p95, target)}"
              f"  (p50 {pct(xs, 50):.2f}, p99 {pct(xs, 99):.2f}, max {max(xs):.2f} ms;"
              f" {len(xs)} keys; p95 {x(p95, base_p95)} the bare app's)")  # fmt: skip
    peak = r["peak_rss_mb"]
    print(f"resident memory      {r['rss_mb']:8.1f} MB   target ≤ {TARGET_RSS_MB:.0f} MB"
          f"   {ok(peak, TARGET_RSS_MB)}  (peak {peak:.1f} MB)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
