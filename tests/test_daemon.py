"""The SLA daemon: once-mode, the real scheduler loop, leadership, kill -9 and SIGTERM."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from tafang.sla.daemon import run_daemon
from tafang.sla.escalate import DaemonLock
from tafang.store.cases import Store
from tafang.store.record import verify

from tests.test_escalate import GUDANG, ROOT, T0, bulk_cases, counts, open_store

DAEMON_SCRIPT = """
import sys
from tafang.sla.daemon import run_daemon
from tafang.sla.policy import Policy
from tafang.store.cases import Store
from tafang.store.config import load_config
from tafang.store.db import make_engine

d = load_config(sys.argv[2])
store = Store(make_engine(sys.argv[1]), d, clocks=Policy(d))
sys.exit(run_daemon(store, d, once=sys.argv[4] == "once", batch=int(sys.argv[3])))
"""


def now() -> datetime:
    return datetime.now(UTC)


def wait_for(cond: Callable[[], Any], timeout: float = 60.0, every: float = 0.02) -> Any:
    """Poll `cond` (short sleeps) until it is truthy; fail after `timeout` seconds (a safety
    net for a loaded machine, not the expected wait)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def n_escalations(store: Store) -> int:
    with store.read_engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM escalations")).scalar_one()


def heartbeat(store: Store) -> Any:
    with store.read_engine.connect() as conn:
        return conn.execute(text("SELECT * FROM heartbeats WHERE name = 'daemon'")).first()


def log_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    for obj in lines:
        assert set(obj) == {"ts", "level", "event", "fields"}
    return lines


class DaemonThread:
    """run_daemon in a thread against its own engine, as another process would."""

    def __init__(self, url: str) -> None:
        self.store = open_store(url)
        self.stop = threading.Event()
        self.log = io.StringIO()
        self.rc: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.rc = run_daemon(
            self.store, GUDANG, stop_event=self.stop, log_stream=self.log, batch=100
        )

    def start(self) -> DaemonThread:
        self.thread.start()
        return self

    def events(self) -> list[str]:
        return [x["event"] for x in log_lines(self.log)]

    def close(self) -> int | None:
        self.stop.set()
        self.thread.join(15)
        assert not self.thread.is_alive()
        self.store.engine.dispose()
        return self.rc


# ---- once ------------------------------------------------------------------------------
def test_once_catches_up_writes_a_heartbeat_and_logs_json(db_url: str) -> None:
    store = open_store(db_url)
    try:
        ids = bulk_cases(store, 30, T0)
        stream = io.StringIO()
        fixed = T0 + timedelta(seconds=60 + 2 * 120 + 1)  # level 3 was due at 300 s
        rc = run_daemon(store, GUDANG, once=True, clock=lambda: fixed, log_stream=stream)
        assert rc == 0
        c = counts(store)
        assert sorted(e.case_id for e in c["esc"]) == ids
        assert {e.level for e in c["esc"]} == {3}
        assert len(c["outbox"]) == 30
        hb = heartbeat(store)
        assert hb is not None and hb.pid == os.getpid()
        assert json.loads(hb.info)["escalated"] == 30
        events = [x["event"] for x in log_lines(stream)]
        assert "catch_up" in events and events[-1] == "done"
        # A second run finds nothing more to do.
        assert run_daemon(store, GUDANG, once=True, clock=lambda: fixed, log_stream=stream) == 0
        assert n_escalations(store) == 30
        assert verify(store.engine).ok
    finally:
        store.engine.dispose()


def test_a_second_daemon_on_a_sqlite_file_is_refused_with_exit_2(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    try:
        lock = DaemonLock(store.engine)
        assert lock.try_acquire()
        stream = io.StringIO()
        assert run_daemon(store, GUDANG, once=True, log_stream=stream) == 2
        assert run_daemon(store, GUDANG, log_stream=stream) == 2
        busy = [x for x in log_lines(stream) if x["event"] == "lock_busy"]
        assert busy and f"pid {os.getpid()}" in busy[0]["fields"]["reason"]
        lock.release()
        assert run_daemon(store, GUDANG, once=True, log_stream=stream) == 0
    finally:
        store.engine.dispose()


# ---- the real loop: scheduler timers, real clock -----------------------------------------
@pytest.mark.slow  # a race / fuzz / real-time test: still runs in .ci/run
def test_loop_escalates_at_the_deadline_and_stops_cleanly(db_url: str) -> None:
    d = DaemonThread(db_url).start()
    writer = open_store(db_url)  # another process creates the cases
    try:
        wait_for(lambda: heartbeat(writer))
        # Due 0.4 s from now: picked up by the 1 s tick, fired by the armed date job.
        ids = bulk_cases(writer, 3, now() - timedelta(seconds=59.6))
        wait_for(lambda: n_escalations(writer) == 3, timeout=5)
        assert {e.case_id for e in counts(writer)["esc"]} == set(ids)
        assert writer.get(ids[0]).escalation_level == 1
        assert d.close() == 0
        assert json.loads(heartbeat(writer).info).get("stopped") is True
        assert "escalated" in d.events() and d.events()[-1] == "stopped"
        assert verify(writer.engine).ok
    finally:
        if d.thread.is_alive():
            d.close()
        writer.engine.dispose()


@pytest.mark.slow  # a race / fault test: still runs in .ci/run
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)  # SQLite: 2nd one exits 2
def test_two_daemons_escalate_each_case_exactly_once(db_url: str) -> None:
    writer = open_store(db_url)
    a = DaemonThread(db_url).start()
    b = DaemonThread(db_url).start()
    try:
        wait_for(lambda: "running" in a.events() + b.events())
        wait_for(lambda: "waiting_for_leader" in a.events() + b.events())
        leader, follower = (a, b) if "running" in a.events() else (b, a)
        first = bulk_cases(writer, 200, now() - timedelta(seconds=59.5), prefix="x")
        wait_for(lambda: n_escalations(writer) == 200)
        assert leader.close() == 0  # the follower takes the advisory lock
        wait_for(lambda: "running" in follower.events())
        second = bulk_cases(writer, 200, now() - timedelta(seconds=59.5), prefix="y")
        wait_for(lambda: n_escalations(writer) == 400)
        c = counts(writer)
        keys = [(e.case_id, e.clock, e.level) for e in c["esc"]]
        assert len(keys) == len(set(keys)) == 400
        assert {e.case_id for e in c["esc"]} == set(first) | set(second)
        assert len({o.key for o in c["outbox"]}) == len(c["outbox"]) == 400
        assert follower.close() == 0
        assert verify(writer.engine).ok
    finally:
        for t in (a, b):
            if t.thread.is_alive():
                t.close()
        writer.engine.dispose()


# ---- processes: kill -9 amid a storm, SIGTERM --------------------------------------------
def spawn(url: str, batch: int = 20, mode: str = "loop") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", DAEMON_SCRIPT, url, str(ROOT / "config.toml"), str(batch), mode],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow  # a race / fault test: still runs in .ci/run
def test_kill_9_amid_a_storm_then_restart_escalates_each_case_once(
    tmp_path: Path, httpserver
) -> None:
    url = f"sqlite:///{tmp_path / 'k.db'}"
    store = open_store(url)
    try:
        ids = bulk_cases(store, 1000, now() - timedelta(seconds=65))  # all 5 s past respond
        proc = spawn(url, batch=20)
        try:
            # Wait on the condition itself (the first escalation committed, or the process
            # gone), not on a fixed 10 s: a loaded machine may take longer to start Python,
            # migrate and sweep (the old 10 s wait failed under load). The limit is a safety
            # net only.
            wait_for(
                lambda: n_escalations(store) > 0 or proc.poll() is not None,
                timeout=180,
                every=0.002,
            )
            assert proc.poll() is None, proc.communicate()[1]  # it died on its own: say why
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        at_kill = n_escalations(store)
        print(f"escalated before kill -9: {at_kill} of 1000")
        restart = spawn(url, batch=1000, mode="once")
        _, err = restart.communicate(timeout=120)
        assert restart.returncode == 0, err
        c = counts(store)
        keys = [(e.case_id, e.clock, e.level) for e in c["esc"]]
        assert len(keys) == len(set(keys)) == 1000, f"{at_kill} escalated before the kill"
        assert {k[0] for k in keys} == set(ids)
        out_keys = [o.key for o in c["outbox"]]
        assert len(out_keys) == len(set(out_keys)) == 1000
        assert set(out_keys) == {f"esc-{i}-respond-1" for i in ids}
        assert len(c["audit"]) == 1000
        assert verify(store.engine).ok
        # Every notification is then delivered at least once, to a real HTTP endpoint.
        from tafang.sla.notify import deliver_due
        from tafang.store.config import Contact

        httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True})
        dep = GUDANG.model_copy(
            update={
                "contacts": [
                    Contact(level=lv, name=lv, url=httpserver.url_for("/hook"), format="json")
                    for lv in ("grid", "enforcement", "emergency", "risk", "centre")
                ]
            }
        )
        notifier = Store(store.engine, dep)
        for minute in range(10):  # the robot takes 20 a minute; storms fold into digests
            deliver_due(notifier, dep, now=now() + timedelta(seconds=61 * minute))
            with store.engine.connect() as conn:
                statuses = dict(
                    conn.execute(text("SELECT status, count(*) FROM outbox GROUP BY status")).all()
                )
            if statuses == {"sent": 1000}:
                break
        assert statuses == {"sent": 1000}
        sent_keys = [r.headers.get("Idempotency-Key") for r, _ in httpserver.log]
        assert sent_keys and all(sent_keys) and len(sent_keys) == len(set(sent_keys))
        # The restart logged JSON lines only.
        for line in err.splitlines():
            assert set(json.loads(line)) == {"ts", "level", "event", "fields"}
    finally:
        store.engine.dispose()


@pytest.mark.slow  # a race / fault test: still runs in .ci/run
def test_sigterm_stops_the_daemon_cleanly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    store = open_store(url)
    try:
        proc = spawn(url)
        try:
            wait_for(lambda: heartbeat(store) or proc.poll() is not None)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 0, err
        events = [json.loads(line)["event"] for line in err.splitlines()]
        assert events[-2:] == ["signal", "stopped"] or events[-1] == "stopped"
        assert json.loads(heartbeat(store).info)["stopped"] is True
        # The lock file is free again.
        assert spawn(url, mode="once").wait(30) == 0
    finally:
        store.engine.dispose()
