"""Escalation benchmark: the daemon in its own process on a big store, measured from outside.

Fills a store (SQLite file or a scratch PostgreSQL database) with open and closed cases (raw
bulk inserts, not the lifecycle), then, --runs times (default 5):

  0. states the load average and measures the baselines of this moment: an APScheduler date
     job's lateness and a raw one-row commit (see bench/baselines.py);
  1. starts `python -m tafang daemon` on the store (its own process, as in production) and
     waits for its `running` line;
  2. plants --spread cases whose respond deadline falls over the next --seconds, then a storm
     of --storm cases breaching within one second (this process writes them, as a terminal);
  3. stops the daemon (SIGTERM) and reads what it recorded: each escalation's `due_at` and
     `fired_at` (the sweep's clock when it escalated the case) from the store, and each
     sweep's `sweep_ms` (until its last commit) from the daemon's JSON log. Lateness of a case
     = fired_at + sweep_ms − due_at: until its escalation was committed.

Each run prints spread lateness p50 / p99 / max and storm (last deadline → last escalation
committed), each beside its target and as a ratio to the baseline; then the worst of all runs.
Goal: p99 ≤ 20 ms, max ≤ 100 ms, storm ≤ 500 ms, in every run.

The robots: by default a sink in this process answers every robot as DingTalk does when it
accepts (the config's placeholder URLs pointed at it, its secrets set): notices are delivered
and the outbox stays short, as in service. --robots dead leaves the placeholders (nothing
listens): every notice fails and is retried, hundreds wait, and the outbox's claim and settle
hold the SQLite write lock for long (issue 15: the remaining tail).

--trace runs the daemon under bench/sla_probe.py and prints, per run, what the slowest
sweeps spent their time on (lock wait, select, apply, commit, garbage collector, timer lag).

A PostgreSQL restart under two daemons (issue 13.2): --db private starts a private cluster
(tests/pg_cluster.py: initdb + pg_ctl on a free port, fsync off; the shared server is never
touched), --standby runs a second daemon (B, its own process, as an operator would run two)
beside the first (A), and --restart-at S restarts the private server S seconds after the
spread is planted (--down-for: how long it stays down). Both daemons log at DEBUG (each
sweep's start and end). Each run then also prints: leaders over time (runs of consecutive
sweeps by one daemon, seconds from the spread's start), the leadership events, the server's
stop / down / up and the gap without any sweep, the sweeps of one daemon that overlap a sweep
of the other (must be 0), the escalations duplicated (recorded rows beyond one per (case,
clock, level), and escalations logged by A + B beyond those recorded: must be 0; the unique
key refuses a second row, so a second leader's try shows as a sweep it refused), planted
cases escalated (must be all), and spread lateness p50 / p99 / max including the restart,
quoted without a goal (also for the cases due from the stop until the first sweep after it).
Such a run is within the goal when overlaps and duplicates are 0, every case is escalated,
both daemons exit 0 and (without --restart-at) the lateness goals hold.

Usage: .venv/bin/python bench/sla.py [--quick] [--runs 5] [--db PATH | --db postgresql+psycopg://
       127.0.0.1:5432/bench_sla | --db private] [--standby] [--restart-at S [--down-for S]]
       [--trace] [--keep]
e.g.   .venv/bin/python bench/sla.py --db private --standby --restart-at 15
A PostgreSQL database named in --db is created for the bench (it must not exist) and
dropped afterwards unless --keep; --db private's cluster is removed afterwards unless --keep
(then it is left running and its pg_ctl stop command printed).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from baselines import Spread, load, pct, pg_commit, ratio, scheduler_lateness, sqlite_commit  # noqa: E402
from sqlalchemy import func, or_, select, update  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from tafang.sla.escalate import sweep  # noqa: E402
from tafang.sla.policy import Policy  # noqa: E402
from tafang.store.cases import Store  # noqa: E402
from tafang.store.config import load_config  # noqa: E402
from tafang.store.db import make_engine  # noqa: E402
from tafang.store.models import Case, Escalation  # noqa: E402

CONFIG = ROOT / "config.toml"
TARGET_P99_MS = 20.0
TARGET_MAX_MS = 100.0
TARGET_STORM_MS = 500.0
GRIDS: list[str] = []
STARTED: list[DaemonProcess] = []  # killed at exit if still running (a bench that failed)


# ---- the store ------------------------------------------------------------------------------
@dataclass
class Target:
    """The store under test: a SQLite file, or a PostgreSQL database made for the bench."""

    url: str
    kind: str
    tmpdir: Path | None = None
    admin: str = ""  # PostgreSQL: a DSN of the server's `postgres` database
    dbname: str = ""
    cluster: Any = None  # --db private: the PrivateCluster (tests/pg_cluster.py) it lives in

    @classmethod
    def make(cls, db: str | None) -> Target:
        if db == "private":
            return cls.private()
        if db and "://" in db:
            u = make_url(db)
            if not u.username:
                u = u.set(username="postgres")
            admin = u.set(drivername="postgresql", database="postgres")
            t = cls(u.render_as_string(hide_password=False), "postgresql", dbname=u.database or "")
            t.admin = admin.render_as_string(hide_password=False)
            with _pg_admin(t.admin) as con:
                con.execute(f'CREATE DATABASE "{t.dbname}"')
            return t
        if db:
            if Path(db).exists():
                sys.exit(f"{db} exists; give a new path")
            return cls(f"sqlite:///{Path(db).resolve()}", "sqlite")
        tmp = Path(tempfile.mkdtemp(prefix="tafang-bench-"))
        return cls(f"sqlite:///{tmp / 'bench.db'}", "sqlite", tmpdir=tmp)

    @classmethod
    def private(cls) -> Target:
        """A database in a private cluster started for the bench on its own port: it can be
        restarted (--restart-at) without disturbing the shared server."""
        from tests.pg_cluster import PrivateCluster, _bin

        if _bin() is None:
            sys.exit("--db private: no PostgreSQL server binaries (initdb, pg_ctl); TAFANG_PG_BIN")
        cluster = PrivateCluster()
        try:
            t = cls.make(cluster.url("bench_sla"))
        except BaseException:
            cluster.destroy()
            raise
        t.cluster = cluster
        return t

    @property
    def dsn(self) -> str:
        return make_url(self.url).set(drivername="postgresql").render_as_string(False)

    def drop(self) -> None:
        if self.cluster is not None:
            self.cluster.destroy()
        elif self.kind == "postgresql":
            with _pg_admin(self.admin) as con:
                con.execute(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        elif self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)


def _pg_admin(dsn: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(dsn, autocommit=True)


def ts(d: datetime) -> str:
    """How the store keeps an aware datetime in SQLite: UTC text with microseconds."""
    return d.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _default(name: str) -> Any:
    """A column's scalar default (columns added later, NOT NULL with a default), else None."""
    d = Case.__table__.c[name].default
    return d.arg if d is not None and d.is_scalar else None


def _rows(n_open: int, n_closed: int, now: datetime, cols: list[str], as_text: bool):  # type: ignore[no-untyped-def]
    """The filler's cases: closed ones over two years, open ones well inside their clocks."""
    rnd = random.Random(7)
    conv = ts if as_text else (lambda d: d)
    base: dict[str, Any] = {c: _default(c) for c in cols}
    base.update(source="ping_an", title="共享单车乱停放", description="", category="0590",
                location="", priority="normal", reporter="", raw="{}", triage=0,
                triage_reason="", escalation_level=0, supervised=0, version=1,
                updated_by="bench", updated_terminal="bench", updated_seq=0)  # fmt: skip
    for kind, total in (("closed", n_closed), ("open", n_open)):
        for i in range(total):
            r = dict(base, external_id=f"{kind}-{i}", grid=GRIDS[i % len(GRIDS)])
            if kind == "closed":
                rec = conv(now - timedelta(days=1 + (i % 700)))
                r.update(status="closed", received_at=rec, updated_at=rec, closed_at=rec)
            else:  # next checks hours ahead: never due in the run
                rec = conv(now - timedelta(seconds=rnd.randint(0, 3600)))
                nxt = conv(now + timedelta(seconds=rnd.randint(3600, 48 * 3600)))
                r.update(status="on_scene", received_at=rec, updated_at=rec, resolve_due=nxt,
                         next_check_at=nxt)  # fmt: skip
            yield tuple(r[c] for c in cols)


def fill(t: Target, n_open: int, n_closed: int) -> float:
    """Create the schema, bulk-insert the cases; returns seconds taken."""
    t0 = time.perf_counter()
    make_engine(t.url).dispose()
    cols = [c.name for c in Case.__table__.columns if c.name != "id"]
    now = datetime.now(UTC)
    if t.kind == "sqlite":
        con = sqlite3.connect(make_url(t.url).database or "")
        con.execute("PRAGMA synchronous=OFF")
        sql = f"INSERT INTO cases ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        con.executemany(sql, _rows(n_open, n_closed, now, cols, True))
        con.commit()
        con.execute("ANALYZE")
        con.commit()
        con.close()
    else:
        import psycopg

        with psycopg.connect(t.dsn) as con:
            con.execute("ALTER TABLE cases DISABLE TRIGGER USER")  # the fill is no operator
            with con.cursor().copy(f"COPY cases ({', '.join(cols)}) FROM STDIN") as cp:
                for r in _rows(n_open, n_closed, now, cols, False):
                    cp.write_row(r)
            con.execute("ALTER TABLE cases ENABLE TRIGGER USER")
            con.commit()
            con.autocommit = True
            con.execute("VACUUM ANALYZE cases")
    return time.perf_counter() - t0


def plant(store: Store, dues: list[datetime], prefix: str) -> None:
    """New cases whose respond deadline is at each of `dues`, in one transaction."""
    table = Case.__table__
    budget = timedelta(seconds=store.clocks.budgets(None, "normal")["respond"])
    rows = []
    for i, due in enumerate(dues):
        v = {"source": "smart_alarm", "external_id": f"{prefix}-{i}", "title": "烟感告警",
             "grid": GRIDS[i % len(GRIDS)], "received_at": due - budget, "status": "new",
             "version": 1, "updated_at": due - budget, "updated_by": "bench",
             "updated_terminal": "bench"}  # fmt: skip
        v.update(store.clocks.start(v))
        rows.append(v)
    with store.write() as (conn, head):
        for v in rows:
            head.change_seq += 1
            v["updated_seq"] = head.change_seq
        conn.execute(table.insert(), rows)


# ---- the robots -------------------------------------------------------------------------------
class RobotSink:
    """An HTTP server that accepts every robot message (DingTalk's `{"errcode": 0}`), and a
    copy of config.toml whose robots point at it, their secrets set in the environment."""

    def __init__(self, work: Path) -> None:
        import http.server
        import threading

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # the stdlib names it
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b'{"errcode": 0, "errmsg": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_a: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{self.server.server_address[1]}/robot/send"
        text = CONFIG.read_text("utf-8")
        self.env = {n: "bench" for n in re.findall(r'_env = "([A-Z0-9_]+)"', text)}
        self.config = work / "config.toml"
        self.config.write_text(text.replace("http://127.0.0.1:9/robot/send", url), "utf-8")

    def close(self) -> None:
        self.server.shutdown()


# ---- the daemon, in its own process ---------------------------------------------------------
class DaemonProcess:
    """`python -m tafang daemon` (or the probe) on the store; its JSON log kept in a file."""

    def __init__(
        self,
        t: Target,
        workdir: Path,
        run: str,
        trace: bool,
        code: str = "",
        wrap: str = "",
        sink: RobotSink | None = None,
        debug: bool = False,
        who: str = "A",
    ) -> None:
        self.who = who  # A, B: the name it has in the leaders' report
        self.log_path = workdir / f"daemon-{run}.log"
        self.trace_path = workdir / f"trace-{run}.jsonl" if trace else None
        probe = trace or code == "undo"  # --undo: the probe undoes issue 15's fixes
        entry = [str(ROOT / "bench" / "sla_probe.py")] if probe else ["-m", "tafang"]
        config = sink.config if sink else CONFIG
        argv = [sys.executable, *entry, "--config", str(config), "--db", t.url, "daemon"]
        if wrap:  # e.g. strace: "{run}" in it becomes the run's name
            argv = [*wrap.replace("{run}", run).split(), *argv]
        env = dict(os.environ, **(sink.env if sink else {}))
        if code == "undo":
            env["TAFANG_PROBE_UNDO"] = "1"
        elif code:  # another copy of the code (--versus): its `tafang` package first
            env["PYTHONPATH"] = code
        if self.trace_path:
            env["TAFANG_TRACE"] = str(self.trace_path)
        if debug:  # each sweep's start and end (`swept`): who swept when
            env["TAFANG_LOG_LEVEL"] = "DEBUG"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(argv, stderr=self.log, stdout=self.log, env=env, cwd=ROOT)
        STARTED.append(self)

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line[line.index("{") :]))
            except ValueError:
                continue
        return out

    def wait_running(self, timeout: float = 60, event: str = "running") -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(e.get("event") == event for e in self.events()):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        sys.exit(f"the daemon did not start: {self.log_path.read_text()[-2000:]}")

    def term(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        rc = self.proc.wait(30)
        self.log.close()
        return rc

    def stop(self) -> int:
        self.term()
        return self.wait()

    def sweeps(self, failed: bool = True) -> list[tuple[datetime, datetime, int]]:
        """Each sweep's (start, end, escalated) from its DEBUG `swept` line; with `failed`
        the failed sweeps too (their start and end: they may have committed batches)."""
        kinds = ("swept", "sweep_failed") if failed else ("swept",)
        return [
            (
                datetime.fromisoformat(f["start"]),
                datetime.fromisoformat(f["end"]),
                int(f.get("count", 0)),
            )
            for e in self.events()
            if e.get("event") in kinds and "start" in (f := e["fields"])
        ]

    def sweep_ms(self) -> dict[int, float]:
        """Case id (the first 20 of each sweep) → that sweep's duration, from the log."""
        out: dict[int, float] = {}
        for e in self.events():
            if e.get("event") in ("escalated", "catch_up"):
                f = e["fields"]
                for cid in f.get("cases", []):
                    out[cid] = float(f.get("sweep_ms", 0.0))
        return out


# ---- leadership (--standby, --restart-at) -------------------------------------------------
LEADER_EVENTS = ("leading", "stepped_down", "waiting_for_leader", "leader_lock_unreachable",
                 "leader_lock_lost", "stopped", "fatal")  # fmt: skip


@dataclass
class Fault:
    """What a --standby / --restart-at run shows of its leaders (issue 13.2)."""

    t0: datetime  # the spread's start: times are printed as seconds from it
    leaders: list[tuple[str, datetime, datetime, int, int]]  # who, from, to, sweeps, escalated
    overlaps: int  # sweeps begun while another daemon's sweep was under way
    timeline: list[tuple[datetime, str, str]]  # (ts, who, leadership event)
    recorded: int  # escalation rows of the planted cases
    distinct: int  # ... distinct by (case, clock, level)
    logged: dict[str, int]  # escalations each daemon logged
    refused: int  # sweeps refused by the unique key (a second daemon escalating a case again)
    planted: int
    escalated: int  # planted cases with an escalation
    rcs: dict[str, int]
    errors: dict[str, int]  # "who event" → count of error lines
    restart: tuple[datetime, datetime, datetime] | None = None  # stop asked, down, up
    gap: tuple[datetime, datetime] | None = None  # last sweep before → first sweep after
    window: Spread | None = None  # lateness of the cases due within the gap

    @property
    def duplicated(self) -> int:
        """Rows beyond one per key, and escalations logged beyond those recorded."""
        return self.recorded - self.distinct + max(0, sum(self.logged.values()) - self.recorded)

    @property
    def ok(self) -> bool:
        return (
            self.overlaps == 0
            and self.duplicated == 0
            and self.escalated == self.planted
            and not any(self.rcs.values())
        )

    def at(self, d: datetime) -> str:
        return f"{(d - self.t0).total_seconds():+.2f}"

    def succession(self) -> str:
        return " → ".join(who for who, *_r in self.leaders) or "none"


def overlapping(daemons: list[DaemonProcess]) -> int:
    """Sweeps that began while another daemon's sweep was under way (two leaders at once)."""
    allsw = sorted((s, e, d.who) for d in daemons for s, e, _n in d.sweeps())
    n, ends = 0, {}
    for s, e, who in allsw:
        n += any(end > s for w, end in ends.items() if w != who)
        ends[who] = max(e, ends.get(who, e))
    return n


def leaders(daemons: list[DaemonProcess]) -> list[tuple[str, datetime, datetime, int, int]]:
    """Runs of consecutive sweeps by one daemon in one term (from its `leading` line): (who,
    first start, last end, sweeps, escalated); a daemon that stepped down and led anew is
    `A (term 2)`."""
    rows = []
    for d in daemons:
        terms = [datetime.fromisoformat(e["ts"]) for e in d.events() if e.get("event") == "leading"]
        for s, e, n in d.sweeps():
            k = bisect.bisect_right(terms, s)
            rows.append((s, e, n, d.who if k <= 1 else f"{d.who} (term {k})"))
    out: list[tuple[str, datetime, datetime, int, int]] = []
    for s, e, n, who in sorted(rows):
        if out and out[-1][0] == who:
            w, s0, _e, k, m = out[-1]
            out[-1] = (w, s0, e, k + 1, m + n)
        else:
            out.append((who, s, e, 1, n))
    return out


def escalation_keys(store: Store, *ranges: tuple[int, int]) -> list[tuple[int, str, int]]:
    e = Escalation.__table__.c
    q = select(e.case_id, e.clock, e.level).where(or_(*(e.case_id.between(*r) for r in ranges)))
    with store.read_engine.connect() as conn:
        return [tuple(r) for r in conn.execute(q).all()]  # type: ignore[misc]


def fault_of(
    daemons: list[DaemonProcess],
    rcs: list[int],
    store: Store,
    t0: datetime,
    ranges: tuple[tuple[int, int], ...],
    restart: tuple[datetime, datetime, datetime] | None,
    spread: list[tuple[int, datetime, datetime]],
    spread_ms: list[float],
) -> Fault:
    keys = escalation_keys(store, *ranges)
    logged: dict[str, int] = {}
    errors: dict[str, int] = {}
    timeline = []
    refused = 0
    for d in daemons:
        logged[d.who] = 0
        for e in d.events():
            ev, f = e.get("event"), e.get("fields", {})
            if ev in ("escalated", "catch_up"):
                logged[d.who] += int(f.get("count", 0))
            if ev in LEADER_EVENTS:
                timeline.append((datetime.fromisoformat(e["ts"]), d.who, ev))
            if e.get("level") == "error" and ev != "calendar_gap":
                errors[f"{d.who} {ev}"] = errors.get(f"{d.who} {ev}", 0) + 1
                err = str(f.get("error", ""))
                refused += ev == "sweep_failed" and ("UniqueViolation" in err or "uq_" in err)
    f = Fault(
        t0=t0,
        leaders=leaders(daemons),
        overlaps=overlapping(daemons),
        timeline=sorted(timeline),
        recorded=len(keys),
        distinct=len(set(keys)),
        logged=logged,
        refused=refused,
        planted=sum(hi - lo + 1 for lo, hi in ranges),
        escalated=len({k[0] for k in keys}),
        rcs={d.who: rc for d, rc in zip(daemons, rcs, strict=True)},
        errors=errors,
        restart=restart,
    )
    if restart is not None:
        asked, _down, up = restart
        ok = sorted((s, e) for d in daemons for s, e, _n in d.sweeps(failed=False))
        before = [e for s, e in ok if s < asked]
        after = [s for s, _e in ok if s > up]
        if before and after:
            f.gap = (max(before), min(after))
            win = [ms for (_c, due, _f), ms in zip(spread, spread_ms, strict=True)
                   if asked <= due <= f.gap[1]]  # fmt: skip
            f.window = Spread.of(win) if win else None
    return f


# ---- one run ----------------------------------------------------------------------------------
@dataclass
class Run:
    label: str
    load: str
    sched: Spread
    commit: Spread
    spread: Spread | None = None
    storm_ms: float = float("nan")
    storm_n: int = 0
    missing: int = 0
    errors: list[str] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    fault: Fault | None = None  # --standby / --restart-at: the leaders

    @property
    def ok(self) -> bool:
        s = self.spread
        f = self.fault
        if f is not None and f.restart is not None:  # no lateness goal across a restart
            return s is not None and not self.missing and f.ok
        return (
            s is not None
            and s.p99 <= TARGET_P99_MS
            and s.max <= TARGET_MAX_MS
            and self.storm_ms <= TARGET_STORM_MS
            and not self.missing
            and (f is None or f.ok)
        )


def planted_ids(store: Store, prefix: str) -> tuple[int, int]:
    """The id range of the cases planted as `prefix` (one transaction: consecutive ids),
    found once through the (source, external_id) index."""
    c = Case.__table__.c
    q = select(func.min(c.id), func.max(c.id)).where(
        c.source == "smart_alarm", c.external_id >= f"{prefix}-", c.external_id < f"{prefix}."
    )
    with store.read_engine.connect() as conn:
        lo, hi = conn.execute(q).one()
    return lo, hi


def escalated(store: Store, ids: tuple[int, int]) -> list[tuple[int, datetime, datetime]]:
    """(case id, due_at, fired_at) of the planted cases escalated so far (a cheap indexed
    read: the bench must not load the machine it measures)."""
    e = Escalation.__table__.c
    q = select(e.case_id, e.due_at, e.fired_at).where(e.case_id.between(*ids))
    with store.read_engine.connect() as conn:
        rows = conn.execute(q).all()
    return [(r[0], _aware(r[1]), _aware(r[2])) for r in rows]


def _aware(d: datetime) -> datetime:
    return d.replace(tzinfo=UTC) if d.tzinfo is None else d


def wait_escalated(store: Store, ids: tuple[int, int], n: int, until: float) -> None:
    e = Escalation.__table__.c
    q = select(func.count()).where(e.case_id.between(*ids))
    while time.monotonic() < until:
        with store.read_engine.connect() as conn:
            if conn.execute(q).scalar_one() >= n:
                return
        time.sleep(0.5)


def settle(store: Store, *ranges: tuple[int, int]) -> None:
    """The run's cases leave the sweep's way (as if acknowledged): their next level would
    fall due two minutes later, in another run or in the idle sweeps."""
    c = Case.__table__.c
    with store.engine.begin() as conn:
        for ids in ranges:
            conn.execute(
                update(Case.__table__).where(c.id.between(*ids)).values(next_check_at=None)
            )


def lateness(rows: list[tuple[int, datetime, datetime]], sweeps: dict[int, float]) -> list[float]:
    """Per case, ms from its deadline to its escalation's commit (fired_at + sweep_ms)."""
    by_fired: dict[datetime, float] = {}
    for cid, _due, fired in rows:
        if cid in sweeps:
            by_fired[fired] = sweeps[cid]
    return [(f - d).total_seconds() * 1000 + by_fired.get(f, 0.0) for _c, d, f in rows]


def one_run(
    store: Store, t: Target, a: argparse.Namespace, i: int, work: Path, code: str = ""
) -> Run:
    label = {"": "this tree", "undo": "fixes undone"}.get(code, "versus")
    print(f"run {i} ({label}): {load()}", flush=True)
    commit = sqlite_commit(directory=work) if t.kind == "sqlite" else pg_commit(t.dsn)
    run = Run(label, load(), scheduler_lateness(a.base_jobs, a.base_seconds), commit)
    name = f"{i}{'v' if code else ''}"
    faults = a.standby or a.restart_at is not None
    daemon = DaemonProcess(t, work, name, a.trace, code, a.wrap, a.sink, debug=faults)
    daemon.wait_running()
    daemons = [daemon]
    if a.standby:  # B, as an operator would run a second one: it waits for the lock
        b = DaemonProcess(t, work, f"{name}B", a.trace, code, a.wrap, a.sink, True, "B")
        b.wait_running(event="waiting_for_leader")
        daemons.append(b)
    now = datetime.now(UTC)
    dues = sorted(
        now + timedelta(seconds=1.5 + random.uniform(0, a.seconds)) for _ in range(a.spread)
    )
    tag = f"r{i}{'v' if code else ''}"
    plant(store, dues, f"{tag}-spread")
    spread_ids = planted_ids(store, f"{tag}-spread")
    restart = None
    if a.restart_at is not None:  # the private server, a.restart_at s into the spread
        time.sleep(max(0.0, (now - datetime.now(UTC)).total_seconds() + a.restart_at))
        asked = datetime.now(UTC)
        down, up = t.cluster.restart(down_for=a.down_for)
        restart = (asked, datetime.fromtimestamp(down, UTC), datetime.fromtimestamp(up, UTC))
    wait_escalated(store, spread_ids, a.spread, time.monotonic() + a.seconds + 20)
    storm_at = datetime.now(UTC) + timedelta(seconds=2)
    sdues = [storm_at + timedelta(microseconds=random.randrange(1_000_000)) for _ in range(a.storm)]
    plant(store, sdues, f"{tag}-storm")
    storm_ids = planted_ids(store, f"{tag}-storm")
    wait_escalated(store, storm_ids, a.storm, time.monotonic() + 30)
    time.sleep(0.3)  # the last sweep's log line
    for d in daemons:  # all at once: the one stopped first would not hand over to the other
        d.term()
    rcs = [d.wait() for d in daemons]
    rc = rcs[0]
    sweeps = {k: v for d in daemons for k, v in d.sweep_ms().items()}
    spread_rows, storm_rows = escalated(store, spread_ids), escalated(store, storm_ids)
    spread_ms = lateness(spread_rows, sweeps)
    if faults:
        run.fault = fault_of(daemons, rcs, store, now, (spread_ids, storm_ids), restart,
                             spread_rows, spread_ms)  # fmt: skip
    settle(store, spread_ids, storm_ids)
    if spread_rows:
        run.spread = Spread.of(spread_ms)
    if storm_rows:
        run.storm_n = len(storm_rows)
        last = max(lateness(storm_rows, sweeps)[k] / 1000 + storm_rows[k][1].timestamp()
                   for k in range(len(storm_rows)))  # fmt: skip
        run.storm_ms = (last - max(sdues).timestamp()) * 1000
    run.missing = a.spread - len(spread_rows) + a.storm - len(storm_rows)
    run.errors = [json.dumps(e, ensure_ascii=False)[:300] for e in daemon.events()
                  if e.get("level") == "error" and e.get("event") != "calendar_gap"]  # fmt: skip
    if rc != 0:
        run.errors.append(f"daemon exit code {rc}")
    if run.fault is not None:  # errors are expected across a restart: counted, not listed
        run.errors = [e for e in run.errors if e.startswith("daemon exit code")]
    if daemon.trace_path is not None:
        from sla_trace import explain

        run.trace = explain(daemon.trace_path, spread_rows, storm_rows, sweeps)
    return run


# ---- the report ---------------------------------------------------------------------------------
def mark(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def print_run(i: int, r: Run) -> None:
    b = r.sched
    print(f"  baseline: APScheduler date job lateness {b}; raw commit {r.commit}")
    restarted = r.fault is not None and r.fault.restart is not None
    if r.spread is not None and restarted:
        s = r.spread
        print(f"  spread lateness p50 / p99 / max  {s.p50:7.1f} / {s.p99:6.1f} / {s.max:6.1f} ms"
              f"  ({s.n} cases, the restart included; no goal)")  # fmt: skip
    elif r.spread is not None:
        s = r.spread
        print(f"  spread lateness p50 / p99 / max  {s.p50:7.1f} / {s.p99:6.1f} / {s.max:6.1f} ms"
              f"  ({ratio(s.p50, b.p50)} / {ratio(s.p99, b.p99)} / {ratio(s.max, b.max)} "
              f"the date job)  target p99 ≤ {TARGET_P99_MS:.0f}, max ≤ {TARGET_MAX_MS:.0f}  "
              f"{mark(s.p99 <= TARGET_P99_MS and s.max <= TARGET_MAX_MS)}")  # fmt: skip
    print(f"  storm: last deadline → last escalated {r.storm_ms:7.1f} ms ({r.storm_n} cases; "
          f"{ratio(r.storm_ms, b.max)} the date job's max)  target ≤ {TARGET_STORM_MS:.0f} ms  "
          f"{mark(r.storm_ms <= TARGET_STORM_MS)}")  # fmt: skip
    if r.missing:
        print(f"  NOT ESCALATED: {r.missing} planted cases")
    for e in r.errors[:3]:
        print(f"  daemon error: {e}")
    for line in r.trace:
        print(f"  trace: {line}")
    if r.fault is not None:
        print_fault(r.fault)


def print_fault(f: Fault) -> None:
    """The leaders of one run, times in seconds from the spread's start."""
    print(f"  leaders over time (s from the spread's start {f.t0:%H:%M:%S.%f}Z; consecutive "
          f"sweeps by one daemon):")  # fmt: skip
    for who, s, e, k, n in f.leaders:
        print(f"    {who:10} {f.at(s):>8} → {f.at(e):>8} s  {k:5d} sweeps  {n:5d} escalated")
    if f.restart is not None:
        asked, down, up = f.restart
        gap = ""
        if f.gap is not None:
            gap = (f"; no sweep from {f.at(f.gap[0])} to {f.at(f.gap[1])} s "
                   f"({(f.gap[1] - f.gap[0]).total_seconds():.2f} s)")  # fmt: skip
        print(f"  server restart: stop asked {f.at(asked)}, down {f.at(down)}, "
              f"up {f.at(up)} s{gap}")  # fmt: skip
        if f.window is not None:
            w = f.window
            print(f"  lateness of the {w.n} cases due from the stop to the first sweep "
                  f"after: p50 / p99 / max {w.p50:.1f} / {w.p99:.1f} / {w.max:.1f} ms "
                  "(no goal)")  # fmt: skip
    print("  leadership: " + ", ".join(f"{f.at(ts)} {who} {ev}" for ts, who, ev in f.timeline))
    logged = " + ".join(f"{who} {n}" for who, n in f.logged.items())
    print(f"  overlapping sweeps (two leaders at once): {f.overlaps}  must be 0  "
          f"{mark(f.overlaps == 0)}")  # fmt: skip
    print(f"  escalations duplicated: {f.duplicated}  must be 0  {mark(f.duplicated == 0)}  "
          f"(recorded {f.recorded}, distinct (case, clock, level) {f.distinct}; logged by "
          f"{logged}; sweeps refused by the unique key {f.refused})")  # fmt: skip
    print(f"  planted cases escalated: {f.escalated}/{f.planted}  "
          f"{mark(f.escalated == f.planted)}")  # fmt: skip
    codes = ", ".join(f"{who} {rc}" for who, rc in f.rcs.items())
    errs = ", ".join(f"{k} ×{n}" for k, n in sorted(f.errors.items())) or "none"
    print(f"  exit codes (SIGTERM): {codes}  {mark(not any(f.rcs.values()))}; "
          f"error lines logged: {errs}")  # fmt: skip


def print_faults(all_runs: list[Run], a: argparse.Namespace) -> None:
    runs = [r for r in all_runs if r.fault is not None]
    if not runs:
        return
    fs = [r.fault for r in runs if r.fault is not None]
    what = "standby B beside A" if a.standby else "one daemon"
    if a.restart_at is not None:
        what += f", PostgreSQL restarted {a.restart_at:g} s into the spread"
    spreads = [r.spread for r in runs if r.spread is not None]
    wins = [f.window for f in fs if f.window is not None]

    def worst(xs: list[Spread], k: str) -> float:
        return max(getattr(x, k) for x in xs) if xs else float("nan")

    who = "; ".join(f"run {k}: {f.succession()}" for k, f in enumerate(fs, 1))
    print(f"\n{len(runs)} runs ({what}): leaders {who}; "
          f"overlapping sweeps {sum(f.overlaps for f in fs)}; escalations duplicated "
          f"{sum(f.duplicated for f in fs)}; planted cases escalated "
          f"{sum(f.escalated for f in fs)}/{sum(f.planted for f in fs)}; non-zero exit codes "
          f"{sum(bool(rc) for f in fs for rc in f.rcs.values())}")  # fmt: skip
    print(f"  spread lateness, worst of the runs: p50 {worst(spreads, 'p50'):.1f}, p99 "
          f"{worst(spreads, 'p99'):.1f}, max {worst(spreads, 'max'):.1f} ms"
          + (f"; cases due in the restart's gap: p50 {worst(wins, 'p50'):.1f}, p99 "
             f"{worst(wins, 'p99'):.1f}, max {worst(wins, 'max'):.1f} ms"
             if a.restart_at is not None else "")
          + ("  (no goal across a restart)" if a.restart_at is not None else ""))  # fmt: skip
    print(f"  {sum(r.ok for r in runs)}/{len(runs)} runs within the goal (no overlap, no "
          f"duplicate, every case escalated, exit 0"
          f"{'' if a.restart_at is not None else ', the lateness goals'}); {load()}")  # fmt: skip


def print_worst(all_runs: list[Run], label: str) -> None:
    runs = [r for r in all_runs if r.label == label]
    if not runs:
        return
    spreads = [r.spread for r in runs if r.spread is not None]
    p99 = max(s.p99 for s in spreads) if spreads else float("nan")
    mx = max(s.max for s in spreads) if spreads else float("nan")
    storm = max(r.storm_ms for r in runs)
    base = max(r.sched.p99 for r in runs)
    print(f"\nworst of {len(runs)} runs ({label}): spread p99 {p99:.1f} ms ({ratio(p99, base)}), "
          f"max {mx:.1f} ms; storm {storm:.1f} ms; "
          f"{sum(r.ok for r in runs)}/{len(runs)} runs within the goal "
          f"(p99 ≤ {TARGET_P99_MS:.0f}, max ≤ {TARGET_MAX_MS:.0f}, storm ≤ "
          f"{TARGET_STORM_MS:.0f} ms)")  # fmt: skip


def idle_sweeps(store: Store, n: int, commit: Spread) -> None:
    policy = store.clocks
    assert isinstance(policy, Policy)
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        if sweep(store, policy, datetime.now(UTC)):
            print("idle sweep: something was still due (an earlier run missed cases)")
        ms.append((time.perf_counter() - t0) * 1000)
    p50 = pct(ms, 50)
    print(f"idle sweep median {p50:.2f} ms ({ratio(p50, commit.p50)} a raw commit), "
          f"p99 {pct(ms, 99):.2f} ms  target median ≤ 5 ms  {mark(p50 <= 5)}")  # fmt: skip


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="a small store and short runs (~1 min)")
    ap.add_argument("--open", type=int)
    ap.add_argument("--closed", type=int)
    ap.add_argument("--spread", type=int, help="cases due over --seconds (default 300)")
    ap.add_argument("--seconds", type=float, help="the spread's span (default 30 s)")
    ap.add_argument("--storm", type=int, default=1000, help="cases breaching in one second")
    ap.add_argument("--idle-runs", type=int, default=300)
    ap.add_argument(
        "--db",
        help="SQLite path (new), postgresql+psycopg://HOST:PORT/NEWDB, or private: a private "
        "PostgreSQL cluster started for the bench on its own port (tests/pg_cluster.py)",
    )
    ap.add_argument(
        "--standby",
        action="store_true",
        help="a second daemon (B, its own process) on the same PostgreSQL store beside A: "
        "leaders over time, overlapping sweeps, duplicated escalations",
    )
    ap.add_argument(
        "--restart-at",
        type=float,
        metavar="S",
        help="restart the PostgreSQL server S seconds after each run's spread is planted "
        "(needs --db private: the shared server is never restarted)",
    )
    ap.add_argument(
        "--down-for",
        type=float,
        default=0.0,
        metavar="S",
        help="with --restart-at: the server stays down S seconds (default 0: pg_ctl stop -m "
        "fast, then start)",
    )
    ap.add_argument("--trace", action="store_true", help="the daemon under bench/sla_probe.py")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    ap.add_argument(
        "--robots",
        choices=["ok", "dead"],
        default="ok",
        help="ok: a sink here accepts every notice (default); dead: nothing listens",
    )
    ap.add_argument(
        "--wrap",
        default="",
        help="run the daemon under this command, e.g. 'strace -f -tt -T --seccomp-bpf -e "
        "trace=fsync,fdatasync -o /tmp/st-{run}.txt' ({run}: the run's name)",
    )
    ap.add_argument(
        "--undo",
        action="store_true",
        help="each run runs the daemon with issue 15's fixes undone first (bench/sla_probe.py), "
        "then this tree's: before and after under the same load",
    )
    ap.add_argument(
        "--versus",
        metavar="DIR",
        help="a directory holding another copy of the `tafang` package (e.g. the code before a "
        "change): each run runs its daemon first, then this tree's, under the same load",
    )
    a = ap.parse_args()
    pg = a.db is not None and (a.db == "private" or "://" in a.db)
    if a.restart_at is not None and a.db != "private":
        ap.error("--restart-at needs --db private (a restart of a shared server would disturb "
                 "everything else on it)")  # fmt: skip
    if a.standby and not pg:
        ap.error("--standby needs PostgreSQL (--db private or a URL): on SQLite a second "
                 "daemon is refused")  # fmt: skip
    if (a.standby or a.restart_at is not None) and (a.versus or a.undo):
        ap.error("--standby / --restart-at do not combine with --versus / --undo")
    quick = dict(open=10_000, closed=100_000, spread=100, seconds=5.0)
    full = dict(open=100_000, closed=1_000_000, spread=300, seconds=30.0)
    for k, v in (quick if a.quick else full).items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    a.base_jobs, a.base_seconds = (50, 1.0) if a.quick else (100, 3.0)
    if a.quick:
        a.idle_runs = min(a.idle_runs, 100)
    return a


def main() -> int:
    a = parse()
    d = load_config(CONFIG)
    GRIDS.extend(g.code for g in d.tower.grids)
    t = Target.make(a.db)
    work = Path(tempfile.mkdtemp(prefix="tafang-bench-logs-"))
    a.sink = RobotSink(work) if a.robots == "ok" else None
    try:
        print(f"store {t.url}: filling {a.open:,} open + {a.closed:,} closed cases; {load()}")
        print(f"  filled in {fill(t, a.open, a.closed):.1f} s", flush=True)
        store = Store(make_engine(t.url), d, clocks=Policy(d))
        runs: list[Run] = []
        for i in range(1, a.runs + 1):
            if a.versus or a.undo:
                other = "undo" if a.undo else str(Path(a.versus).resolve())
                runs.append(one_run(store, t, a, i, work, other))
                print_run(i, runs[-1])
            runs.append(one_run(store, t, a, i, work))
            print_run(i, runs[-1])
        print_worst(runs, "versus")
        print_worst(runs, "fixes undone")
        if a.restart_at is None:  # across a restart the lateness has no goal
            print_worst(runs, "this tree")
        print_faults(runs, a)
        idle_sweeps(store, a.idle_runs, runs[-1].commit)
        store.engine.dispose()
        print(f"daemon logs: {work}")
        return 0 if all(r.ok for r in runs if r.label == "this tree") else 1
    finally:
        for dp in STARTED:
            if dp.proc.poll() is None:
                dp.proc.kill()
                dp.proc.wait(10)
        if a.sink is not None:
            a.sink.close()
        if not a.keep:
            t.drop()
        elif t.cluster is not None:
            c = t.cluster
            print(f"private cluster left running: {t.url}; stop it with: pg_ctl -D {c.data} "
                  f"stop (as postgres), then rm -r {c.root}")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
