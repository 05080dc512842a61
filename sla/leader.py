"""Leadership that is checked, not assumed: one daemon sweeps a store, and knows when it stops.

`Leadership` wraps the store's `DaemonLock`. On PostgreSQL the advisory lock lives in one
session: a server restart (or a killed backend) ends that session and frees the lock without
a word to the holder, who would sweep on beside a new leader. So the leader asks `holds()`
before each sweep and on every tick, on the lock's own connection: the lock is in `pg_locks`
under that backend's pid, or the leader steps down at once. Each sweep batch also checks it
inside its own transaction (`fenced`): a restart ends every session, so a batch that saw the
lock held and committed did so before any restart. Waiting for the lock rides out an
unreachable server (connection errors are retried, never fatal), and a stop while waiting or
reconnecting is a clean exit. SQLite's `flock` cannot vanish under its holder.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, literal_column, text
from tafang.sla.escalate import ADVISORY_KEY, DaemonLock
from tafang.store.cases import Store
from tafang.store.record import Head

_HI, _LO = (ADVISORY_KEY >> 32) & 0xFFFFFFFF, ADVISORY_KEY & 0xFFFFFFFF
# A bigint advisory key shows in pg_locks as classid (high half), objid (low half), objsubid 1.
_TRY = text("SELECT pg_try_advisory_lock(:k), pg_backend_pid()")
# Asked inside a sweep's own transaction: is the lock still held by our lock session? A
# server restart ends every session, so a transaction that saw the lock held and commits
# did so before any restart: no batch is written by a daemon that lost the lock.
_FENCE = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = :pid "
    "AND classid = :hi AND objid = :lo AND objsubid = 1 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
# The same question as a scalar subquery (integers only are formatted in).
_FENCE_SQL = (
    "(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = {pid} "
    "AND classid = {hi} AND objid = {lo} AND objsubid = 1 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)


class LeadershipLost(Exception):
    """A sweep's transaction found the leader lock no longer held by this daemon."""


_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    "AND pid = pg_backend_pid() AND classid = :hi AND objid = :lo AND objsubid = 1"
)


class Leadership:
    """Take, check and give up the store's leadership; never raises for a lost server."""

    def __init__(self, lock: DaemonLock, log: Callable[..., None]) -> None:
        self.lock = lock
        self.log = log
        self.postgres = lock.engine.dialect.name == "postgresql"
        self._guard = threading.Lock()  # the lock's connection is used by one thread at a time
        self._unreachable = False
        self.pid: int | None = None  # the lock session's backend pid (PostgreSQL)
        self._fence: tuple[int, Any] | None = None  # (pid, fence_column's column)

    @property
    def held(self) -> bool:
        return self.lock.held

    @property
    def unreachable(self) -> bool:
        """The last try to take the lock found no server."""
        return self._unreachable

    def try_take(self) -> bool:
        """Take the lock if free; False also when the server does not answer (logged)."""
        with self._guard:
            try:
                got = self._try_pg() if self.postgres else self.lock.try_acquire()
                self._unreachable = False
                return got
            except Exception as e:
                self._drop()
                if not self._unreachable:  # once per outage, not every second
                    self.log("warning", "leader_lock_unreachable", error=_short(e))
                self._unreachable = True
                return False

    def _try_pg(self) -> bool:
        """`pg_try_advisory_lock` on a connection kept for as long as the lock is held."""
        if self.lock._conn is not None:
            return True
        conn = self.lock.engine.connect()
        try:
            got, pid = conn.execute(_TRY, {"k": ADVISORY_KEY}).one()
            conn.commit()
        except Exception:
            conn.invalidate()
            conn.close()
            raise
        if got:
            self.lock._conn, self.pid = conn, int(pid)
        else:
            conn.close()
        return bool(got)

    def fence(self, conn: Connection) -> None:
        """Raise LeadershipLost unless our lock session still holds the lock (PostgreSQL),
        asked on `conn`, inside the caller's transaction."""
        if not self.postgres:
            return
        held = (
            self.pid is not None
            and conn.execute(_FENCE, {"pid": self.pid, "hi": _HI, "lo": _LO}).scalar()
        )
        if not held:
            raise LeadershipLost("the store's leader lock is no longer held by this daemon")

    def fenced(self, store: Store) -> Store:
        """The same store whose write transactions first check `fence` (for the sweep)."""
        f = copy.copy(store)
        f.__class__ = _FencedStore
        f._leader = self  # type: ignore[attr-defined]
        return f

    def fence_column(self) -> Any:
        """`fence`'s question as a column for the head's locking SELECT (PostgreSQL); the same
        object while the lock session lasts (the statement built with it is reused)."""
        pid = -1 if self.pid is None else int(self.pid)
        if self._fence is None or self._fence[0] != pid:
            self._fence = (pid, literal_column(_FENCE_SQL.format(pid=pid, hi=_HI, lo=_LO)))
        return self._fence[1]

    def fence_seen(self, held: Any) -> None:
        """Raise LeadershipLost unless the fence column said our session holds the lock."""
        if self.pid is None or not held:
            raise LeadershipLost("the store's leader lock is no longer held by this daemon")

    def wait_take(self, stop: threading.Event, every: float = 1.0) -> bool:
        """Wait for the lock, through server restarts; False when `stop` is set first."""
        while not stop.is_set():
            if self.try_take():
                return True
            if stop.wait(every):
                break
        return False

    def holds(self) -> bool:
        """Whether this daemon still holds the lock, asked of the server now (PostgreSQL);
        on a lost session the lock's connection is dropped and False returned."""
        if not self.postgres:
            return True  # a flock (or an in-memory store) cannot vanish under its holder
        with self._guard:
            conn = self.lock._conn
            if conn is None:
                return False
            try:
                ok = bool(conn.execute(_HELD, {"hi": _HI, "lo": _LO}).scalar())
                conn.commit()
            except Exception as e:
                self.log("error", "leader_lock_lost", error=_short(e))
                ok = False
            if not ok:
                self._drop()
            return ok

    def release(self) -> None:
        """Give the lock up; a dead session has nothing left to give (no error)."""
        with self._guard:
            try:
                self.lock.release()
            except Exception:
                self._drop()

    def _drop(self) -> None:
        """Forget a PostgreSQL lock connection that is gone (invalidated, not returned)."""
        conn, self.lock._conn, self.pid = self.lock._conn, None, None
        if conn is not None:
            try:
                conn.invalidate()
                conn.close()
            except Exception:
                pass


def _short(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]


class _FencedStore(Store):
    """A store whose every write transaction starts with the leader's fence, asked in the
    statement that locks the record's head (one round trip, not two)."""

    _leader: Leadership

    def _head_ask(self, conn: Connection) -> Any:
        return self._leader.fence_column() if conn.dialect.name == "postgresql" else None

    @contextmanager
    def write(self, **kw: Any) -> Iterator[tuple[Connection, Head]]:
        with super().write(**kw) as (conn, head):
            if conn.dialect.name == "postgresql":
                self._leader.fence_seen(head.asked)
            yield conn, head
