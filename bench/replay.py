"""What-if replay (issue 14): a week of Gudang (≈1,150 simulated cases) with `--instant`.

A SQLite store is filled with a simulated week (console/history_sim.py, not timed), then
`tafang replay --from --to --format json` runs in a fresh process (timed: start-up, reading
the period, fitting, replaying, the figures). Also prints the gap between the replay with
the config's roster and what happened, over a few seeds.

Target: ≤ 10 s for the week. Run: .venv/bin/python bench/replay.py [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from tafang.console.history_sim import HistorySim
from tafang.sla.policy import Policy
from tafang.sla.whatif_render import build
from tafang.sla.whatif_roster import config_roster
from tafang.store.cases import Actor, Store
from tafang.store.config import default_config_path, load_config
from tafang.store.db import make_engine
from tafang.store.intake import ingest

TARGET_S = 10.0
RATES = ("respond", "dispatch", "arrive", "handled_on_time")


def fill(path: Path) -> Store:
    d = load_config()
    s = Store(make_engine(f"sqlite:///{path}"), d, clocks=Policy(d))
    start = datetime(2023, 6, 4, 16, 0, tzinfo=UTC)  # Monday 5 June 2023, local midnight
    recs = [json.dumps(r) for r in HistorySim(d, seed=7).records(start, days=7)]
    ingest(s, recs, origin="bench", actor=Actor("s01", "bench"), history=True)
    return s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "week.db"
        s = fill(db)
        cmd = [sys.executable, "-m", "tafang", "--db", str(db), "replay", "--from",
               "2023-06-05", "--to", "2023-06-11", "--instant", "--format", "json"]  # fmt: skip
        env = {**os.environ, "TAFANG_CONFIG": str(default_config_path())}
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
        took = time.perf_counter() - t0
        cases = json.loads(out)["actual"]["cases"]
        print(f"replay --instant, a week ({cases} cases): {took:.2f} s (target ≤ {TARGET_S:.0f} s)")
        worst = dict.fromkeys(RATES, 0.0)
        for seed in range(1, a.seeds + 1):
            r = build(s, Policy(s.d), date(2023, 6, 5), date(2023, 6, 11),
                      config_roster(s.d), seed, "config")  # fmt: skip
            for c in RATES:
                worst[c] = max(worst[c], abs(r.replay.rate(c) - r.actual.rate(c)))  # type: ignore[operator]
        gaps = "  ".join(f"{c} {g * 100:.1f} pp" for c, g in worst.items())
        print(f"config roster vs what happened, widest gap, {a.seeds} seeds: {gaps} (test ≤ 4 pp)")
        s.engine.dispose()
    print(f"load average: {Path('/proc/loadavg').read_text().split()[:3]}")


if __name__ == "__main__":
    main()
