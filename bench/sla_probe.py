"""The daemon under a probe: `tafang daemon` with its sweep's phases, the garbage collector and
every commit timestamped, for bench/sla.py --trace (not for production).

Usage (bench/sla.py does this): TAFANG_TRACE=FILE python bench/sla_probe.py --db URL
    --config FILE daemon

Each line of FILE is JSON: {"k": kind, "t": wall-clock start (UNIX s), "ms": duration, ...}
  gc      one collection: generation, objects collected
  job     the sweep job started: `armed` is the deadline it was armed for (lag = t − armed)
  sweep   one sweep: total, `n` escalated; phases of its transactions follow as
  enter   Store.write entered until the record head is locked (BEGIN IMMEDIATE / FOR UPDATE)
  select  the due rows read;  apply  planned and written;  commit  the DBAPI commit
  commit  (outside a sweep) any other commit: heartbeat, outbox, tick; `thread` names it
  rearm   the sweep re-armed at `at`
  hold    a write transaction (any thread): from its BEGIN IMMEDIATE (or FOR UPDATE of the
          head) acquired to its commit's end: who held the lock a sweep waited for

TAFANG_PROBE_UNDO=1 undoes issue 15's fixes in this process, for a before/after under the same
load (bench/sla.py --undo): the sweep's per-case inserts (store/escalation.py as of UNDO_REV,
read with git), SQLite's own checkpoints in commits, no frozen heap, the outbox's claim at
any moment, the default GIL switch interval.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

UNDO_REV = "b37607e0af818a82394a0f7195571d70866e6a45~1"  # the commit before the fixes
TRACE: list[dict[str, Any]] = []
_local = threading.local()


def note(kind: str, t: float, ms: float, **kw: Any) -> None:
    TRACE.append({"k": kind, "t": round(t, 6), "ms": round(ms, 3), **kw})


def _gc_probe() -> None:
    start: dict[str, float] = {}

    def cb(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            start["t"], start["p"] = time.time(), time.perf_counter()
        elif "p" in start:
            ms = (time.perf_counter() - start["p"]) * 1000
            note("gc", start["t"], ms, gen=info["generation"], collected=info["collected"])

    gc.callbacks.append(cb)


def timed(kind: str, fn: Any, *, always: bool = False) -> Any:
    """Wrap `fn`: its duration noted as `kind` (only inside a sweep unless `always`)."""

    def wrapper(*a: Any, **kw: Any) -> Any:
        t, p = time.time(), time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            inside = getattr(_local, "sweep", False)
            if inside or always:
                k = kind if inside or kind != "commit" else "commit_other"
                note(k, t, (time.perf_counter() - p) * 1000, thread=threading.current_thread().name)

    return wrapper


def _hold_probe() -> None:
    """Write transactions: when the lock was acquired (the BEGIN IMMEDIATE returned) and
    held until the commit ended, per thread."""
    from sqlalchemy import Engine, event

    def after(conn: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if statement.startswith("BEGIN IMMEDIATE") or "FOR UPDATE" in statement:
            if getattr(_local, "held", None) is None:
                _local.held = (time.time(), time.perf_counter())

    event.listen(Engine, "after_cursor_execute", after)


def install() -> None:
    from sqlalchemy.engine.default import DefaultDialect
    from tafang.sla import daemon
    from tafang.store import cases, escalation

    _gc_probe()
    _hold_probe()
    commit = timed("commit", DefaultDialect.do_commit, always=True)

    def do_commit(self: Any, dbapi_conn: Any) -> None:
        try:
            commit(self, dbapi_conn)
        finally:
            held = getattr(_local, "held", None)
            _local.held = None
            if held is not None:
                ms = (time.perf_counter() - held[1]) * 1000
                who = getattr(_local, "job", None) or threading.current_thread().name
                note("hold", held[0], ms, thread=who, sweep=getattr(_local, "sweep", False))

    DefaultDialect.do_commit = do_commit  # type: ignore[method-assign]
    escalation._select_due = timed("select", escalation._select_due)
    escalation._apply = timed("apply", escalation._apply)

    real_lock = cases.lock_head

    def lock_head(*a: Any, **kw: Any) -> Any:
        head = real_lock(*a, **kw)
        if getattr(_local, "sweep", False):
            p0 = getattr(_local, "enter", None)
            if p0 is not None:
                note("enter", p0[0], (time.perf_counter() - p0[1]) * 1000)
        return head

    cases.lock_head = lock_head
    real_write = cases.Store.write

    @contextlib.contextmanager
    def write(self: Any, **kw: Any) -> Any:
        _local.enter = (time.time(), time.perf_counter())
        with real_write(self, **kw) as got:
            yield got

    cases.Store.write = write  # type: ignore[method-assign]
    real_sweep = daemon.sweep

    def sweep(*a: Any, **kw: Any) -> Any:
        _local.sweep = True
        t, p = time.time(), time.perf_counter()
        try:
            out = real_sweep(*a, **kw)
        finally:
            _local.sweep = False
        note("sweep", t, (time.perf_counter() - p) * 1000, n=len(out))
        return out

    daemon.sweep = sweep
    real_job = daemon._Daemon.sweep_job

    def sweep_job(self: Any, due: Any = None) -> None:
        armed = self._armed
        note("job", time.time(), 0.0, armed=armed.timestamp() if armed else None)
        real_job(self, due)

    daemon._Daemon.sweep_job = sweep_job  # type: ignore[method-assign]
    real_rearm = daemon._Daemon.rearm

    def rearm(self: Any, after: Any = None, *a: Any, **kw: Any) -> Any:
        before = self._armed
        out = real_rearm(self, after, *a, **kw)  # a deadline the job follows, or None
        if self._armed is not None and self._armed != before:
            note("rearm", time.time(), 0.0, at=self._armed.timestamp())
        return out

    daemon._Daemon.rearm = rearm  # type: ignore[method-assign]
    for name in dir(daemon._Daemon):  # each job names the thread it runs in, for `hold`
        if name.endswith("_job") or name in ("heartbeat", "tick"):
            setattr(daemon._Daemon, name, _named(name, getattr(daemon._Daemon, name)))


def _named(name: str, fn: Any) -> Any:
    def wrapper(*a: Any, **kw: Any) -> Any:
        _local.job = name
        try:
            return fn(*a, **kw)
        finally:
            _local.job = None

    return wrapper


def undo_fixes() -> None:
    """The daemon as it was before issue 15's fixes (the rest of the tree as it is)."""
    import importlib.util
    import subprocess

    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{UNDO_REV}:store/escalation.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    spec = importlib.util.spec_from_loader("tafang.store.escalation", loader=None)
    assert spec is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["tafang.store.escalation"] = mod
    exec(compile(src, "escalation_before_issue15.py", "exec"), mod.__dict__)
    from tafang.sla import daemon, pauses

    pauses.freeze_heap = lambda: 0  # type: ignore[assignment]
    pauses.share_gil_finely = lambda: sys.getswitchinterval()  # type: ignore[assignment]
    pauses.DELIVER_MAX_SKIPS = 0  # type: ignore[misc]  # the outbox job never put off
    daemon.own_checkpoints = lambda engine: False  # type: ignore[attr-defined]

    def old_sweep(store: Any, policy: Any, now: Any, *, batch: int = 1000, **_kw: Any) -> Any:
        return mod.escalate_due(store, policy.plan_escalation, now, batch=batch)

    def old_job(self: Any) -> None:  # the next sweep armed after the commit and a re-read
        before = self.clock()
        self.sweep_once()
        self.rearm(after=before)

    daemon.sweep = old_sweep  # type: ignore[attr-defined]
    daemon._Daemon.sweep_job = old_job  # type: ignore[method-assign]


def dump() -> None:
    path = os.environ.get("TAFANG_TRACE")
    if path:
        with open(path, "w", encoding="utf-8") as f:
            for e in list(TRACE):
                f.write(json.dumps(e) + "\n")


if __name__ == "__main__":
    if os.environ.get("TAFANG_PROBE_UNDO"):
        undo_fixes()
    install()
    atexit.register(dump)
    from tafang.console.cli import main

    sys.exit(main(sys.argv[1:]))
