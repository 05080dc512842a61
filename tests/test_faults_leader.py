"""Issue 13.2, as an operator would break it: a PostgreSQL restart under two daemons.

A private cluster on its own port (tests/pg_cluster.py), two daemons as real processes,
cases falling due every second. The cluster is restarted mid-run. Before the fix the
standby died (fatal OperationalError), the leader's advisory lock vanished while it swept
on, a restarted standby took the lock and both swept; SIGTERM then gave exit 1. Now: the
sweeps of the two daemons never overlap in time (each sweep is logged with its start and
end, and is made only after the lock was checked on the server), every case is escalated
exactly once, and SIGTERM while the server is down exits 0.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tafang.sla.escalate import ADVISORY_KEY
from tafang.store.db import make_engine

from tests.pg_cluster import PrivateCluster
from tests.test_escalate import ROOT, bulk_cases, counts
from tests.test_escalate import open_store as _open_store

pytestmark = pytest.mark.slow


def wait_until(cond: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll `cond` until truthy; the timeout is a safety net, not the expected wait."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


class Proc:
    """A daemon process with its JSON log in a file."""

    def __init__(self, name: str, url: str, log: Path, level: str = "debug", **kw: Any) -> None:
        self.name = name
        self.log = log
        self.fh = open(log, "w", encoding="utf-8")
        args = [url, str(ROOT / "config.toml"), level, str(kw.get("speed", 1.0))]
        args += [str(kw.get("wall0", time.time())), json.dumps(kw.get("overrides", {}))]
        self.p = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "fault_daemon.py"), *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=self.fh,
        )

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.log.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                continue  # a line being written
        return out

    def events(self) -> list[str]:
        return [x["event"] for x in self.lines()]

    def stop(self, timeout: float = 30.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait(10)
        self.fh.close()


def sweeps(p: Proc) -> list[tuple[datetime, datetime, int]]:
    return [
        (
            datetime.fromisoformat(x["fields"]["start"]),
            datetime.fromisoformat(x["fields"]["end"]),
            x["fields"].get("count", 0),  # a failed sweep may have committed batches
        )
        for x in p.lines()
        if x["event"] == "swept" or (x["event"] == "sweep_failed" and "start" in x["fields"])
    ]


def leaders_over_time(procs: list[Proc]) -> list[tuple[str, datetime, datetime, int]]:
    """Runs of consecutive sweeps by one daemon: (name, first start, last end, escalated)."""
    allsw = sorted((s, e, n, p.name) for p in procs for s, e, n in sweeps(p))
    runs: list[tuple[str, datetime, datetime, int]] = []
    for s, e, n, name in allsw:
        if runs and runs[-1][0] == name:
            runs[-1] = (name, runs[-1][1], e, runs[-1][3] + n)
        else:
            runs.append((name, s, e, n))
    return runs


def test_pg_restart_under_two_daemons_never_two_leaders(tmp_path: Path) -> None:
    cluster = PrivateCluster()
    procs: list[Proc] = []
    try:
        url = cluster.url()
        writer = _open_store(url)  # migrates the private cluster's database
        now = datetime.now(UTC)
        n_batches, per = 8, 20
        ids: list[int] = []
        for k in range(n_batches):  # respond is 60 s: batch k falls due k s from now (+2 s)
            ids += bulk_cases(writer, per, now - timedelta(seconds=58 - k), prefix=f"b{k}")
        writer.engine.dispose()
        procs = [Proc(n, url, tmp_path / f"{n}.log") for n in ("A", "B")]
        wait_until(
            lambda: (
                sum("leading" in p.events() for p in procs) == 1
                and sum("waiting_for_leader" in p.events() for p in procs) == 1
            ),
            "one daemon leads, the other waits",
        )
        engine = make_engine(url, upgrade=False)

        def escalated() -> int:
            try:
                with engine.connect() as c:
                    return c.execute(text("SELECT count(*) FROM escalations")).scalar_one()
            except Exception:
                return -1

        wait_until(lambda: escalated() >= 2 * per, "the first sweeps")
        down, up = cluster.restart(down_for=0.5)
        engine.dispose()
        wait_until(lambda: escalated() == len(ids), "every case escalated after the restart")
        # SIGTERM while the server is down (the leader reconnecting, the standby retrying).
        cluster.stop()
        wait_until(
            lambda: all(
                {"stepped_down", "leader_lock_unreachable"} & set(p.events()) for p in procs
            ),
            "both daemons see the server gone",
        )
        rcs = [p.stop() for p in procs]
        assert rcs == [0, 0], [p.lines()[-5:] for p in procs]
        for p in procs:
            assert "fatal" not in p.events(), p.name
        cluster.start()

        c = counts(_open_store(url))
        keys = [(e.case_id, e.clock, e.level) for e in c["esc"]]
        assert len(keys) == len(set(keys)) == len(ids)  # zero duplicates
        assert len({o.key for o in c["outbox"]}) == len(c["outbox"]) == len(ids)

        runs = leaders_over_time(procs)
        for (_a, _s1, e1, _n1), (_b, s2, _e2, _n2) in itertools.pairwise(runs):
            assert e1 <= s2, f"two leaders swept at once: {runs}"
        assert 0 < sum(n for *_x, n in runs) <= len(ids)
        print("\nleaders over time (first sweep → last sweep, escalations):")
        for name, s, e, n in runs:
            print(f"  {name}: {s:%H:%M:%S.%f} → {e:%H:%M:%S.%f}  {n}")
        went = datetime.fromtimestamp(down, UTC)
        back = datetime.fromtimestamp(up, UTC)
        print(f"  server down {went:%H:%M:%S.%f} → up {back:%H:%M:%S.%f}")
        surely_down = datetime.fromtimestamp(cluster.start_asked, UTC)  # it may answer sooner
        for p in procs:
            assert not [s for s, e, _n in sweeps(p) if went < s < surely_down], "a sweep while down"
        terms = sorted(
            (x["ts"], p.name, x["event"])
            for p in procs
            for x in p.lines()
            if x["event"] in ("leading", "stepped_down", "waiting_for_leader", "stopped")
        )
        for ts, name, ev in terms:
            print(f"  {ts} {name} {ev}")
        first = next(name for _ts, name, ev in terms if ev == "leading")
        steps = [ts for ts, name, ev in terms if name == first and ev == "stepped_down"]
        asked = datetime.fromtimestamp(cluster.stop_asked, UTC)  # a client may see it go then
        assert steps and steps[0] > asked.isoformat(timespec="milliseconds"), terms
    finally:
        for p in procs:
            p.kill()
        cluster.destroy()


def test_a_leader_whose_lock_session_is_killed_steps_down_and_leads_again(pg_url: str) -> None:
    """The lock's backend ended under the leader (as a restart does): noticed at the next
    tick, the daemon steps down, and takes the lock again once it is free."""
    from tests.test_daemon import DaemonThread, wait_for

    d = DaemonThread(pg_url).start()
    admin = make_engine(pg_url, upgrade=False)
    try:
        wait_for(lambda: "running" in d.events())
        with admin.begin() as c:
            killed = c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                    "AND classid = :hi AND objid = :lo AND granted AND database = "
                    "(SELECT oid FROM pg_database WHERE datname = current_database())"
                ),
                {"hi": ADVISORY_KEY >> 32, "lo": ADVISORY_KEY & 0xFFFFFFFF},
            ).all()
        assert killed, "no advisory lock to end"
        wait_for(lambda: "stepped_down" in d.events())
        wait_for(lambda: d.events().count("leading") == 2)
        assert d.close() == 0
    finally:
        if d.thread.is_alive():
            d.close()
        admin.dispose()
