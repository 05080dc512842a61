"""Reports benchmark (issue 12): a year of Gudang history (~60k cases) imported with
`ingest --history`, then every meeting report made from it, each beside its target.

  1. the simulated year (console/history_sim.py) written as JSON Lines (not timed);
  2. `store.intake.ingest(..., history=True)` into a fresh SQLite store: target ≤ 5 s;
  3. each report kind (daily, weekly, monthly, the whole year as a range) in each format,
     from the store to the text: target ≤ 2 s each;
  4. the console's stats screen (`k`), from pushing it to its first frame (target ≤ 1 s) and
     to its figures on screen (read by a thread worker), over the last 30 days and the year;
  5. as the user meets them: `python -m tafang ingest --history` and `report range` in each
     format as processes, from start to exit (CPU: the child's).

Usage: .venv/bin/python bench/report.py [--year 2023] [--keep DIR]

Wall times depend on what else runs on the machine: the load average is printed, and the CPU
seconds of this process beside each wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tafang.console.history_sim import write_year  # noqa: E402
from tafang.sla.meeting import inputs_for  # noqa: E402
from tafang.sla.meeting_render import FORMATS, render  # noqa: E402
from tafang.sla.policy import Policy  # noqa: E402
from tafang.store.cases import Actor, Store  # noqa: E402
from tafang.store.config import load_config  # noqa: E402
from tafang.store.db import make_engine  # noqa: E402
from tafang.store.intake import ingest  # noqa: E402

TARGET_IMPORT_S = 5.0
TARGET_REPORT_S = 2.0
TARGET_FRAME_S = 1.0


def cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime + ch.ru_utime + ch.ru_stime


def line(what: str, wall: float, cpu_s: float, target: float) -> str:
    ok = "ok" if wall <= target else "OVER"
    return f"{what:<34} {wall:6.2f} s wall  {cpu_s:6.2f} s cpu   target ≤ {target:.0f} s  {ok}"


async def stats_frame(store: Store, d: Any, now: datetime, days: int) -> tuple[float, float]:
    """From pushing the stats screen (the console's `k`) to its first frame (the screen with
    its loading line: the figures are read by a thread worker) and to its figures on screen."""
    from tafang.console.i18n import Strings
    from tafang.console.screens.stats import StatsScreen
    from tafang.console.view_model import ViewModel
    from textual.app import App

    t = Strings("zh")
    screen = StatsScreen(store, d, t, lambda: now, ViewModel(d, t).cell_specs())
    screen.days = days
    app: App[None] = App()
    async with app.run_test(size=(140, 40)) as pilot:
        drawn: list[float] = []
        display = app._display  # Textual's private "put a frame on the terminal"

        def spy(*a: Any, **k: Any) -> Any:
            if not drawn and app.screen is screen:
                drawn.append(time.perf_counter())
            return display(*a, **k)

        app._display = spy  # type: ignore[method-assign]
        t0 = time.perf_counter()
        await app.push_screen(screen)
        while not drawn:
            await asyncio.sleep(0.001)
        first = drawn[0] - t0
        while screen.stats is None:
            await pilot.pause(0.005)
        await pilot.pause()
        return first, time.perf_counter() - t0


def as_lead(work: Path) -> Path:
    """config.toml with this OS login as the supervisor s01 (a process's `ingest --history`
    is a lead's move, and the store knows the caller by login)."""
    import getpass
    import re

    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    m = re.search(r'(?m)^code = "s01"\n(?:(?!\n).+\n)*', text)
    assert m is not None
    block = [ln for ln in m.group(0).splitlines() if not ln.startswith("login = ")]
    body = "\n".join([*block, f'login = "{getpass.getuser()}"']) + "\n"
    cfg = work / "config.toml"
    cfg.write_text(text[: m.start()] + body + text[m.end() :], encoding="utf-8")
    return cfg


def processes(work: Path, src: Path, year: int) -> None:
    """As the user meets them: `python -m tafang …` from process start to exit, on a store
    already made (`db upgrade`, not timed)."""
    import subprocess

    db = work / "cli.db"
    base = [
        sys.executable,
        "-m",
        "tafang",
        "--config",
        str(as_lead(work)),
        "--db",
        f"sqlite:///{db}",
    ]
    subprocess.run([*base, "db", "upgrade"], check=True, capture_output=True)
    rng = ["--from", f"{year}-01-01", "--to", f"{year}-12-31"]
    runs = [("ingest --history", ["ingest", "--history", str(src)], TARGET_IMPORT_S)]
    runs += [
        (f"report range {f}", ["report", "range", *rng, "--format", f], TARGET_REPORT_S)
        for f in FORMATS
    ]
    for what, argv, target in runs:
        c0, t0 = cpu(), time.perf_counter()
        subprocess.run([*base, *argv], check=True, capture_output=True)
        print(line(f"process: {what}", time.perf_counter() - t0, cpu() - c0, target))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--year", type=int, default=2023)
    ap.add_argument("--keep", help="keep the store and the reports in this folder")
    args = ap.parse_args()
    d = load_config(None)
    work = Path(args.keep or tempfile.mkdtemp(prefix="tafang-bench-report-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / "year.jsonl"
    n = write_year(d, src, args.year)
    db = work / "tafang.db"
    if db.exists():
        db.unlink()
    store = Store(make_engine(f"sqlite:///{db}"), d, clocks=Policy(d))
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (2 cores)")
    print(f"{n} history records ({src.stat().st_size / 1e6:.1f} MB), year {args.year}")
    c0, t0 = cpu(), time.perf_counter()
    with src.open("rb") as f:
        r = ingest(store, f, origin=src.name, actor=Actor("s01", "bench"), history=True)
    wall, used = time.perf_counter() - t0, cpu() - c0
    print(line(f"import --history ({r.accepted} cases)", wall, used, TARGET_IMPORT_S))
    worst = 0.0
    mid = date(args.year, 6, 14)
    kinds = (
        ("daily", {"day": mid}),
        ("weekly", {"day": mid}),
        ("monthly", {"day": mid}),
        ("range", {"start": date(args.year, 1, 1), "end": date(args.year, 12, 31)}),
    )
    for kind, kw in kinds:
        for fmt in FORMATS:
            c0, t0 = cpu(), time.perf_counter()
            text = render(inputs_for(store, d, kind, **kw), fmt)
            wall, used = time.perf_counter() - t0, cpu() - c0
            worst = max(worst, wall)
            if args.keep:
                (work / f"{kind}.{fmt}").write_text(text, encoding="utf-8")
            print(
                line(f"report {kind} {fmt} ({len(text) // 1000} kB)", wall, used, TARGET_REPORT_S)
            )
    print(f"slowest report: {worst:.2f} s (target ≤ {TARGET_REPORT_S:.0f} s)")
    for days in (30, 365):
        c0 = cpu()
        first, full = asyncio.run(
            stats_frame(store, d, datetime(args.year, 12, 31, 4, tzinfo=UTC), days)
        )
        used = cpu() - c0
        print(line(f"stats screen first frame ({days} days)", first, used, TARGET_FRAME_S))
        print(f"{'  … its figures on screen':<34} {full:6.2f} s wall  (read by a thread worker)")
    processes(work, src, args.year)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if not args.keep:
        for p in work.iterdir():
            p.unlink()
        work.rmdir()


if __name__ == "__main__":
    main()
