"""Change feed: wake a terminal as soon as another one has written (DESIGN §3, §5).

On PostgreSQL a dedicated connection LISTENs on `tafang_changes`; `Store.write()` sends
`pg_notify` with the new change_seq inside the writing transaction, so it arrives at commit.
If that connection drops, the feed polls `change_seq` meanwhile and reconnects with backoff.
On SQLite there is nothing to listen to: the feed asks its own connection for
`PRAGMA data_version` (moves whenever another connection commits, a few µs) every `poll`
seconds and only then reads `change_seq`, so heartbeats and cursors do not wake anyone.

One API for both: `wait(timeout) -> bool` (True: something may have changed, go and read
the deltas; False: nothing within the timeout) and `close()`. A True can be spurious, a
missed notification cannot be ruled out on a broken network, so callers still check
`change_seq` now and then (the console does at least every second).
"""

from __future__ import annotations

import sqlite3
import time
from types import TracebackType
from typing import Any

from sqlalchemy import Engine

CHANNEL = "tafang_changes"
APP_NAME = "tafang-listen"
SEQ_SQL = "SELECT change_seq FROM audit_head WHERE id = 1"


class ChangeFeed:
    """Blocks the calling thread until the store changes; use from one thread only."""

    def __init__(
        self,
        engine: Engine,
        *,
        poll: float = 0.1,
        fallback: float = 0.25,
        retry: float = 0.5,
        max_retry: float = 5.0,
        connect_timeout: int = 3,
    ) -> None:
        """`poll`: SQLite check interval; `fallback`: PostgreSQL poll interval while the
        LISTEN connection is down; `retry`..`max_retry`: its reconnect backoff."""
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"
        self.poll = poll
        self.fallback = fallback
        self.retry = retry
        self.max_retry = max_retry
        self.connect_timeout = connect_timeout
        self.reconnects = 0  # LISTEN connections opened after the first (for tests, logs)
        self.last_error: str | None = None
        self._closed = False
        self._listen: Any = None  # psycopg.Connection while listening
        self._lite: sqlite3.Connection | None = None
        self._version: int | None = None
        self._seq: int | None = None
        self._next_try = 0.0
        self._backoff = retry
        self._opened_once = False
        if self.pg:
            self._connect()
            self._changed()  # the baseline change_seq for the fallback poll
        else:
            try:
                self._lite_changed()  # the baseline data_version and change_seq
            except Exception:  # not there yet: the first wait opens it
                self._close_lite()

    # ---- public ------------------------------------------------------------------------
    @property
    def mode(self) -> str:
        """listen (PostgreSQL NOTIFY), poll (PostgreSQL fallback) or data_version (SQLite)."""
        if not self.pg:
            return "data_version"
        return "listen" if self._listen is not None else "poll"

    @property
    def listen_pid(self) -> int | None:
        """Backend pid of the LISTEN connection (None while down)."""
        return self._listen.info.backend_pid if self._listen is not None else None

    def wait(self, timeout: float) -> bool:
        """Block up to `timeout` s; True as soon as something may have changed."""
        if self._closed:
            return False
        end = time.monotonic() + max(timeout, 0.0)
        if not self.pg:
            return self._wait_sqlite(end)
        while True:
            if self._listen is None and time.monotonic() >= self._next_try:
                if self._connect():
                    return True  # back on NOTIFY: whatever happened meanwhile, look
            if self._listen is not None:
                return self._wait_listen(end)
            if self._changed():
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(self.fallback, left, max(self._next_try - time.monotonic(), 0.01)))

    def close(self) -> None:
        self._closed = True
        self._drop_listen()
        self._close_lite()

    def __enter__(self) -> ChangeFeed:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- PostgreSQL ------------------------------------------------------------------------
    def _connect(self) -> bool:
        """Open the LISTEN connection; on failure schedule the next try (backoff)."""
        import psycopg

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=self.connect_timeout,
                application_name=APP_NAME,  # findable in pg_stat_activity
                # a silently dead peer is noticed in ~10 s instead of hours
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
            )
            conn.execute(f"LISTEN {CHANNEL}")
        except Exception as e:  # server down, auth, network: poll until it comes back
            self.last_error = f"{type(e).__name__}: {e}"[:300]
            self._next_try = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.max_retry)
            return False
        if self._opened_once:
            self.reconnects += 1
        self._opened_once = True
        self._listen = conn
        self._backoff = self.retry
        return True

    def _wait_listen(self, end: float) -> bool:
        conn = self._listen
        try:
            got = False
            for _ in conn.notifies(timeout=max(end - time.monotonic(), 0.0), stop_after=1):
                got = True
            if got:
                for _ in conn.notifies(timeout=0):  # drain the burst: one wake per burst
                    pass
            return got
        except Exception as e:  # the connection dropped: poll meanwhile, reconnect soon
            self.last_error = f"{type(e).__name__}: {e}"[:300]
            self._drop_listen()
            self._next_try = time.monotonic() + self._backoff
            self._backoff = min(self._backoff * 2, self.max_retry)
            return True  # a notification may have been lost with it

    def _drop_listen(self) -> None:
        conn, self._listen = self._listen, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # already broken; nothing more to release
                pass

    def _changed(self) -> bool:
        """Fallback poll: has change_seq moved? An error counts as a maybe."""
        try:
            with self.engine.connect() as conn:
                seq = int(conn.exec_driver_sql(SEQ_SQL).scalar_one())
        except Exception:
            return True
        old, self._seq = self._seq, seq
        return old is None or seq != old

    # ---- SQLite ------------------------------------------------------------------------------
    def _wait_sqlite(self, end: float) -> bool:
        while True:
            try:
                if self._lite_changed():
                    return True
            except Exception:  # the file went away or is locked oddly: reopen, go look
                self._close_lite()
                return True
            left = end - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(self.poll, left))

    def _lite_changed(self) -> bool:
        if self._lite is None:
            self._lite = sqlite3.connect(
                self.engine.url.database or "", timeout=5, isolation_level=None
            )
            self._version = None
        cur = self._lite.cursor()
        version = cur.execute("PRAGMA data_version").fetchone()[0]
        if version == self._version:
            return False
        self._version = version
        seq = cur.execute(SEQ_SQL).fetchone()[0]
        old, self._seq = self._seq, seq
        return old is not None and seq != old

    def _close_lite(self) -> None:
        conn, self._lite = self._lite, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # closing a broken handle: nothing more to release
                pass
