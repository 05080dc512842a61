"""The escalation sweep and the one-daemon-per-store lock.

`sweep` asks the policy what each due case needs and has the store make it so, in batches of
one transaction each (see `store.escalation`). `DaemonLock` keeps one daemon leading: on
PostgreSQL an advisory lock held by a dedicated connection for the daemon's life (the others
wait and retry); on SQLite an exclusive `flock` on "<db file>.daemon.lock" (a second daemon
is refused: exit code 2 and a message naming the lock file and the holder's pid).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, text
from tafang.sla.policy import Policy
from tafang.store.cases import Store
from tafang.store.escalation import EscalationResult, escalate_due, next_deadline

__all__ = ["DaemonLock", "EscalationResult", "LockBusy", "next_deadline", "sweep"]

ADVISORY_KEY = 0x7461_6661_6E67_01  # "tafang" + 1: the daemon leader lock


def sweep(
    store: Store,
    policy: Policy,
    now: datetime,
    *,
    batch: int = 1000,
    next_due: Callable[[datetime | None], None] | None = None,
) -> list[EscalationResult]:
    """Escalate every case due at `now`; returns what was escalated (committed).
    `next_due` is told the next deadline before the last commit (see `escalate_due`)."""
    return escalate_due(store, policy.plan_escalation, now, batch=batch, next_due=next_due)


class LockBusy(Exception):
    """Another daemon leads this store."""


class DaemonLock:
    """Leadership of one store: `acquire(wait=...)`, `release()`; a context manager too."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._fd: int | None = None
        self.path: Path | None = None
        if engine.dialect.name == "sqlite":
            db = engine.url.database
            if db and db != ":memory:":
                self.path = Path(db).resolve().with_name(Path(db).name + ".daemon.lock")

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def try_acquire(self) -> bool:
        """Take the lock if free; never blocks."""
        if self.held:
            return True
        if self.engine.dialect.name == "postgresql":
            conn = self.engine.connect()
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar()
            )
            conn.commit()
            if got:
                self._conn = conn
            else:
                conn.close()
            return got
        if self.path is None:
            return True  # in-memory SQLite: only this process can see it
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def acquire(self, *, wait: bool, stop: threading.Event | None = None, every: float = 1.0):
        """Take the lock; with `wait`, retry every `every` seconds until `stop` is set.

        Raises LockBusy when not waiting (or stopped while waiting)."""
        stop = stop or threading.Event()
        while not self.try_acquire():
            if not wait or stop.wait(every):
                raise LockBusy(self.describe_holder())
        return self

    def describe_holder(self) -> str:
        if self.path is not None:
            try:
                pid = self.path.read_text().strip()
            except OSError:
                pid = "?"
            return f"another daemon (pid {pid or '?'}) holds {self.path}"
        return "another daemon holds the PostgreSQL advisory lock of this store"

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_KEY})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()
