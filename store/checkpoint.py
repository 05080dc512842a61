"""WAL checkpoints at a moment the owner chooses, not inside whichever commit comes next.

SQLite copies the write-ahead log back into the database file (a checkpoint) as part of the
commit that finds the log past `wal_autocheckpoint` pages (1000 by default): that commit
writes the pages and then fsyncs a database file of a million cases. Seen in the daemon
(bench/sla.py --trace with --wrap strace, issue 15): an escalation's commit took 503 ms, of
which 479 ms were one `fdatasync` of the database file after 107 page writes — the case
escalated half a second late. `own_checkpoints` switches that off for one engine's
connections, and its owner (the daemon) calls `checkpoint` between deadlines; a PASSIVE
checkpoint never blocks the writers and readers of other connections, so a sweep that meets
one in progress still commits at once. Other processes (consoles, ingest) keep SQLite's
default. PostgreSQL checkpoints in the server: nothing to do.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, event


@dataclass(frozen=True)
class Checkpointed:
    """What a PASSIVE checkpoint did: frames in the log, frames copied back, busy."""

    busy: bool
    log_frames: int
    copied: int


def _no_autocheckpoint(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA wal_autocheckpoint=0")
    cur.close()


def own_checkpoints(engine: Engine) -> bool:
    """This engine's connections stop checkpointing in their commits; True when that applies
    (a SQLite file). Pooled connections are closed so that every one gets the setting."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return False
    if not event.contains(engine, "connect", _no_autocheckpoint):
        event.listen(engine, "connect", _no_autocheckpoint)
        engine.dispose()
    return True


def checkpoint(engine: Engine) -> Checkpointed | None:
    """A PASSIVE checkpoint on a connection of its own (outside any transaction); None off
    SQLite."""
    if engine.dialect.name != "sqlite":
        return None
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        busy, log, copied = cur.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        cur.close()
    finally:
        raw.close()
    return Checkpointed(bool(busy), int(log), int(copied))
