"""Intake benchmark (DESIGN §5): JSON Lines into SQLite with dedupe and the record.

Generates realistic Gudang records (channels, categories and grids from config.toml, the 2023
channel mix, Chinese titles) into a temp JSONL file, then in one run times:
  1. `store.intake.ingest` on a fresh SQLite store, from file open to the last commit;
  2. raw `sqlite3.executemany` of the same rows into a bare table with the same columns
     (the floor: what SQLite itself costs, no validation, dedupe or record);
  3. optionally the `tafang ingest FILE` subprocess, if console/cli.py exists;
  4. a 60k "year of Gudang" run against its own target.

Usage: .venv/bin/python bench/ingest.py [--n 100000] [--year 60000] [--cli]

Wall times depend on what else runs on the machine: the CPU line says what the code costs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tafang.sla.policy import Policy  # noqa: E402
from tafang.store.cases import Actor, Store  # noqa: E402
from tafang.store.config import Deployment, load_config  # noqa: E402
from tafang.store.db import make_engine  # noqa: E402
from tafang.store.intake import ingest, normalise  # noqa: E402

TARGET_RATE = 20_000  # records/s (DESIGN §5)
TARGET_YEAR_S = 5.0  # a year of Gudang (~60k cases) in under 5 s

# 2023 volumes by channel (DESIGN §2); the 40,000+ shared-bike reports come through 数字城管.
MIX = {
    "ping_an": 34_536,
    "city_ops": 40_000,
    "smart_alarm": 12_657,
    "grid_app": 7_915,
    "xihu_code": 4_317,
    "hotline": 3_000,
    "four_platforms": 2_000,
    "enterprise": 800,
    "enforcement": 800,
    "patrol": 1_500,
}
PLACES = ["文二西路", "古墩路", "文三西路", "学院路", "益乐路", "莲花街", "嘉绿苑路", "华星路"]
WHAT = {
    "0590": ["共享单车堵塞消防通道", "共享单车乱停放占用盲道", "小区门口单车堆放"],
    "0603": ["夜间装修噪声扰民", "广场舞音响过大", "商铺外放音乐"],
    "0502": ["店外经营占道", "餐饮店门口摆摊"],
    "0102": ["垃圾桶满溢", "路边暴露垃圾"],
    "0602": ["装修现场电焊无证", "楼道堆放易燃物"],
    "0404": ["烟感告警：疑似火情", "电动车充电起火告警"],
}


def generate(d: Deployment, n: int, seed: int = 2023) -> list[dict]:
    """`n` records as feeds send them: a few fields odd, a few extra, all distinct keys."""
    rnd = random.Random(seed)
    channels = [c for c in MIX if c in d.channel_codes] or [d.channels[0].code]
    weights = [MIX.get(c, 1) for c in channels]
    grids = [g for g in d.tower.grids]
    cats = [c.code for c in d.categories]
    t0 = datetime(2023, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        ch = rnd.choices(channels, weights)[0]
        if ch == "city_ops" and rnd.random() < 0.8:
            cat = "0590"
        elif ch == "smart_alarm":
            cat = rnd.choice(["0404", "0602", "0607"])
        else:
            cat = rnd.choice(cats)
        g = rnd.choice(grids)
        what = rnd.choice(WHAT.get(cat, [d.categories_by_code[cat].name]))
        place = rnd.choice(PLACES)
        t = t0 + timedelta(seconds=i * (365 * 86400 / max(n, 1)) + rnd.random())
        rec: dict = {
            "source": ch,
            "external_id": f"{ch[:2].upper()}2023{i:08d}",
            "title": f"{place}{rnd.randint(1, 300)}号附近{what}",
            "description": f"群众反映：{place}{what}，请尽快处置。" * rnd.randint(1, 4),
            "category": cat,
            "grid": g.code if rnd.random() < 0.7 else g.label,
            "location": f"西湖区古荡街道{g.community}社区{place}",
            "priority": rnd.choices(["normal", "urgent", "critical"], [90, 8, 2])[0],
            "reported_at": (t - timedelta(seconds=rnd.randint(5, 120))).isoformat(),
            "received_at": t.isoformat(),
            "reporter": f"群众{rnd.randint(1000, 9999)}",
            "lat": round(30.28 + rnd.random() * 0.03, 6),
            "lon": round(120.10 + rnd.random() * 0.03, 6),
        }
        if rnd.random() < 0.05:
            rec["grid"] = str(rnd.randint(100, 999))  # a cell the feed got wrong: triage
        if rnd.random() < 0.1:
            rec["device_id"] = f"SA-{rnd.randint(1, 5000):05d}"  # unknown field: kept
        out.append(rec)
    return out


def write_jsonl(records: list[dict], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False))
            f.write("\n")


def time_ingest(
    d: Deployment, path: Path, workdir: Path, name: str, workers: int | None = None
) -> tuple[float, str, float, float]:
    """Wall seconds from file open to the last commit, the summary, and CPU seconds spent
    by this process and by worker processes (wall time depends on what else runs)."""
    db = workdir / f"{name}.db"
    engine = make_engine(f"sqlite:///{db}")
    store = Store(engine, d, clocks=Policy(d))  # as `tafang ingest` runs it: working-time limits
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = time.process_time()
    t = time.perf_counter()
    with path.open("rb") as f:
        res = ingest(store, f, origin=str(path), actor=Actor("bench", "bench"), workers=workers)
    elapsed = time.perf_counter() - t
    cpu = time.process_time() - cpu0
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    kids = (kids1.ru_utime + kids1.ru_stime) - (kids0.ru_utime + kids0.ru_stime)
    engine.dispose()
    return elapsed, res.summary, cpu, kids


def time_raw_sqlite(d: Deployment, records: list[dict], workdir: Path) -> float:
    """The floor: the same rows (already validated) into a bare table, one executemany."""
    now = datetime.now(UTC)
    from tafang.store.clocks import ClockRules

    clocks = ClockRules(d)
    rows = []
    for r in records:
        nm = normalise(r, d, now=now)
        v = nm.values  # type: ignore[union-attr]
        v.update(clocks.start(v))
        rows.append(v)
    cols = list(rows[0])
    tuples = [
        tuple(x.isoformat() if isinstance(x, datetime) else x for x in (v[c] for c in cols))
        for v in rows
    ]
    con = sqlite3.connect(workdir / "raw.db", isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    con.execute(
        f"CREATE TABLE cases (id INTEGER PRIMARY KEY, {', '.join(cols)}, "
        "UNIQUE (source, external_id))"
    )
    sql = f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    t = time.perf_counter()
    con.execute("BEGIN IMMEDIATE")
    con.executemany(sql, tuples)
    con.execute("COMMIT")
    elapsed = time.perf_counter() - t
    con.close()
    return elapsed


def time_cli(path: Path, workdir: Path) -> tuple[float, str] | None:
    if not (ROOT / "console" / "cli.py").exists():
        return None
    exe = ROOT / ".venv" / "bin" / "tafang"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "tafang"]
    env = {**os.environ, "TAFANG_DB": f"sqlite:///{workdir / 'cli.db'}"}
    t = time.perf_counter()
    p = subprocess.run(
        [*cmd, "ingest", str(path)], capture_output=True, text=True, env=env, cwd=ROOT
    )
    elapsed = time.perf_counter() - t
    if p.returncode not in (0, 1):
        return elapsed, f"exit {p.returncode}: {p.stderr.strip()[-300:]}"
    return elapsed, p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "(no output)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="records for the rate run")
    ap.add_argument("--year", type=int, default=60_000, help="records for the year run")
    ap.add_argument("--cli", action="store_true", help="also time `tafang ingest FILE`")
    args = ap.parse_args()
    d = load_config(ROOT / "config.toml")
    with tempfile.TemporaryDirectory(prefix="tafang-bench-") as tmp:
        work = Path(tmp)
        records = generate(d, args.n)
        path = work / "intake.jsonl"
        write_jsonl(records, path)
        size_mb = path.stat().st_size / 1e6
        print(f"{args.n:,} records, {size_mb:.1f} MB of JSON Lines, 2023 Gudang channel mix")

        print(f"  load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        # The baseline first, so that every figure below is printed beside its ratio to it.
        raw_el = time_raw_sqlite(d, records, work)
        raw_rate = args.n / raw_el
        print(f"  raw sqlite3 executemany (baseline): {raw_el:6.2f} s  {raw_rate:9,.0f} records/s")

        def vs_raw(rate: float) -> str:
            return f"×{rate / raw_rate:.2f} the raw rate"

        el, summary, cpu, kids = time_ingest(d, path, work, "intake")
        rate = args.n / el
        ok = "OK" if rate >= TARGET_RATE else "MISSED"
        print(
            f"  store.intake.ingest : {el:6.2f} s  {rate:9,.0f} records/s  {vs_raw(rate)}  "
            f"(target >= {TARGET_RATE:,}/s: {ok})  [{summary}]"
        )
        per = 1e6 / args.n
        print(
            f"    CPU per record: writer {cpu * per:.1f} us, worker {kids * per:.1f} us "
            f"-> bound on two idle cores ~{args.n / max(cpu, kids, 1e-9):,.0f} records/s"
        )
        el0, _, cpu0, _ = time_ingest(d, path, work, "single", workers=0)
        print(
            f"  one process (workers=0): {el0:6.2f} s  {args.n / el0:9,.0f} records/s  "
            f"{vs_raw(args.n / el0)}  (CPU {cpu0 * per:.1f} us/record)"
        )

        # Re-run on the same store: everything is a duplicate (the dedupe path's cost).
        engine = make_engine(f"sqlite:///{work / 'intake.db'}")
        store = Store(engine, d)
        t = time.perf_counter()
        with path.open("rb") as f:
            res = ingest(store, f, origin=str(path), actor=Actor("bench", "bench"))
        el2 = time.perf_counter() - t
        engine.dispose()
        print(
            f"  re-ingest (all dup) : {el2:6.2f} s  {args.n / el2:9,.0f} records/s  "
            f"{vs_raw(args.n / el2)}  [{res.summary}]"
        )

        if args.cli:
            cli = time_cli(path, work)
            if cli is None:
                print("  tafang ingest (CLI) : console/cli.py not there yet: skipped")
            else:
                cel, out = cli
                print(
                    f"  tafang ingest (CLI) : {cel:6.2f} s  {args.n / cel:9,.0f} records/s  "
                    f"{vs_raw(args.n / cel)}  [{out}]"
                )

        year = generate(d, args.year, seed=60)
        ypath = work / "year.jsonl"
        write_jsonl(year, ypath)
        yel, ysum, _, _ = time_ingest(d, ypath, work, "year")
        yok = "OK" if yel < TARGET_YEAR_S else "MISSED"
        print(
            f"  a year of Gudang ({args.year:,}): {yel:5.2f} s  {vs_raw(args.year / yel)}  "
            f"(target < {TARGET_YEAR_S:.0f} s: {yok})  [{ysum}]"
        )


if __name__ == "__main__":
    main()
