"""The headless SLA daemon: APScheduler as a timer, the database as the truth.

A date job is armed at the next deadline (`min(next_check_at)`, cheap via its index) and
re-armed after every sweep; a 1 s tick re-reads that deadline so changes made by other
processes (a new case, an ack) are picked up within a second. The scheduler keeps no job
store of its own (APScheduler 3 must not share one between processes). Other jobs: outbox
delivery every second, feed polls, a heartbeat every 5 s. Logs are JSON lines on stderr:
`{"ts", "level", "event", "fields"}`, below `log_level` dropped, prefixed with their syslog
priority when stderr is the journal; secrets are never logged. A year without holiday data
in the next 60 days is an ERROR (`calendar_gap`) at start and every day while it remains.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from tafang.sla import pauses
from tafang.sla.escalate import DaemonLock, next_deadline, sweep
from tafang.sla.leader import Leadership, LeadershipLost
from tafang.sla.policy import Policy
from tafang.sla.witness import WitnessState, send_anchor
from tafang.store.cases import Store
from tafang.store.checkpoint import checkpoint, own_checkpoints
from tafang.store.config import Deployment
from tafang.store.db import sweep_engine, upsert
from tafang.store.escalation import EscalationResult, rehearse
from tafang.store.models import Heartbeat
from tafang.store.record import record_head

HEARTBEATS = Heartbeat.__table__
HEARTBEAT_NAME = "daemon"
TICK_SECONDS = 1.0
DELIVER_SECONDS = 1.0
HEARTBEAT_SECONDS = 5.0
ANCHOR_SECONDS = 60.0  # how often the record's head goes to the log (an outside anchor)
ALARM_SECONDS = 5.0  # how often stuck notices are looked for (`[notices] alarm_after_minutes`)
CALENDAR_SECONDS = 86400.0  # how often a calendar gap is logged again while it remains
RISK_SECONDS = 60.0  # how often due risk-point checks are filed as cases (store/risk.py)
REPORT_SECONDS = 60.0  # how often due meeting reports are looked for (sla/report_schedule.py)
MIN_REARM = timedelta(milliseconds=50)
WAKE_EARLY = timedelta(milliseconds=25)
"""The sweep's timer fires this long before the deadline, and the sweep waits out the rest in
its own thread: the scheduler's wake-up and its hand-off to a worker thread (1–22 ms under
load on PostgreSQL, bench/sla.py --trace) happen before the deadline instead of after it."""


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---- JSON-lines logging -----------------------------------------------------------------
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
# syslog priorities: journald files a line by its `<N>` prefix (sd-daemon(3))
PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}


def is_journal(stream: TextIO) -> bool:
    """Whether `stream` is connected to the journal: systemd sets JOURNAL_STREAM=DEV:INODE
    of the stream it gives the service's stdout/stderr (systemd.exec(5))."""
    dev, _, inode = os.environ.get("JOURNAL_STREAM", "").partition(":")
    try:
        st = os.fstat(stream.fileno())
        return (st.st_dev, st.st_ino) == (int(dev), int(inode))
    except (AttributeError, OSError, ValueError):  # no such fd, no or a bad JOURNAL_STREAM
        return False


class JsonLog:
    """One JSON object per line: ts, level, event, fields. Thread-safe.

    Lines below `level` are dropped. When the stream is the journal each line starts with
    its syslog priority (`<3>` error, `<4>` warning, `<6>` info, `<7>` debug), so that
    `journalctl -p err` finds the errors; elsewhere the line is plain JSON."""

    def __init__(self, stream: TextIO | None = None, level: str = "info") -> None:
        self.stream = stream or sys.stderr
        self.min_level = LEVELS[level.lower()]
        self.journal = is_journal(self.stream)
        self._lock = threading.Lock()

    def __call__(self, level: str, event: str, **fields: Any) -> None:
        if LEVELS.get(level, 40) < self.min_level:
            return
        line = json.dumps(
            {
                "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "level": level,
                "event": event,
                "fields": fields,
            },
            ensure_ascii=False,
            default=str,
        )
        if self.journal:
            line = f"<{PRIORITY.get(level, 3)}>{line}"
        with self._lock:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (ValueError, OSError):
                pass  # stderr closed at exit: nothing useful left to do


class _JsonHandler(logging.Handler):
    """Routes library logging (APScheduler, the policy's calendar warning) into JsonLog."""

    def __init__(self, log: JsonLog) -> None:
        super().__init__()
        self.log = log

    def emit(self, record: logging.LogRecord) -> None:
        self.log(record.levelname.lower(), record.name, message=record.getMessage())


# ---- heartbeat ------------------------------------------------------------------------------
def write_heartbeat(
    engine: Engine,
    *,
    now: datetime,
    started_at: datetime,
    info: dict[str, Any],
    name: str = HEARTBEAT_NAME,
) -> None:
    """Upsert the daemon's heartbeat row; the console shows 'daemon down since …' from it."""
    values = dict(
        name=name,
        at=now,
        started_at=started_at,
        pid=os.getpid(),
        host=socket.gethostname(),
        info=json.dumps(info, ensure_ascii=False, default=str),
    )
    with engine.begin() as conn:
        conn.execute(upsert(conn, HEARTBEATS, values, "name"))


# ---- the daemon ---------------------------------------------------------------------------
class _Daemon:
    def __init__(
        self,
        store: Store,
        deployment: Deployment,
        policy: Policy,
        clock: Callable[[], datetime],
        log: JsonLog,
        batch: int,
        on_sweep: Callable[[list[EscalationResult], datetime], None] | None,
        leader: Leadership | None = None,
        *,
        own_engine: bool = True,
    ) -> None:
        """`own_engine`: the sweep writes through an engine of its own (PostgreSQL,
        `store.db.sweep_engine`); not worth a second pool for the one sweep of `--once`."""
        # Imported here so that `write_heartbeat` users (the demo) need not load httpx.
        from tafang.sla.feeds import poll_due
        from tafang.sla.notify import deliver_due

        self.store = store
        self.d = deployment
        self.policy = policy
        self.clock = clock
        self.log = log
        self.deliver = deliver_due
        self.poll = poll_due
        self.batch = batch
        self.on_sweep = on_sweep
        self.started_at = clock()
        self.sched: Any = None
        self._sweep_lock = threading.Lock()
        self._arm_lock = threading.Lock()
        self._armed: datetime | None = None
        self._following: datetime | None = None  # a deadline the sweep job sweeps itself
        self.gate = pauses.SweepGate(clock)  # the sweeps close it; the delivery waits at it
        self.checkpoints = pauses.ClearOfDeadlines(
            clock, clear=pauses.CHECKPOINT_CLEAR, max_skips=pauses.CHECKPOINT_MAX_SKIPS
        )
        self.deliveries = pauses.ClearOfDeadlines(
            clock, clear=pauses.DELIVER_CLEAR, max_skips=pauses.DELIVER_MAX_SKIPS
        )
        self.escalated = 0
        self.last_sweep: datetime | None = None
        self.calendar = policy.calendar
        self.witnessed = WitnessState()  # the anchor last sent to the witnesses (sla/witness)
        self.leader = leader
        # the sweep writes through the leader's fence: each batch checks the lock in its txn
        sweeper = leader.fenced(store) if leader is not None else store
        # On PostgreSQL the sweep's own engine; its sessions commit without waiting for the
        # WAL flush unless `sla.sweep_sync_commit` (the one place that choice is applied).
        durable = store.d.sla.sweep_sync_commit
        self.sweep_engine = (
            sweep_engine(store.engine, durable=durable) if own_engine else store.engine
        )
        if self.sweep_engine is not store.engine:
            sweeper = sweeper.on_engine(self.sweep_engine)
        self.sweeper = sweeper
        self.lost = threading.Event()  # leadership gone: the loop stops, the daemon waits again

    # jobs --------------------------------------------------------------------------------
    def leading(self) -> bool:
        """Still the leader, asked of the server (issue 13: a restart frees the lock
        silently); on a loss the daemon steps down: this run of jobs ends."""
        if self.lost.is_set():
            return False
        if self.leader is None or self.leader.holds():
            return True
        self.lost.set()
        self.log("warning", "stepped_down", reason="the store's leader lock is no longer held")
        return False

    def sweep_once(
        self,
        event: str = "escalated",
        next_due: Callable[[datetime | None], None] | None = None,
    ) -> list[EscalationResult]:
        # Leadership is asked inside the sweep's own transaction (the fence, sla/leader.py),
        # not before it on the lock's connection too: that was 3 more round trips (BEGIN,
        # SELECT, COMMIT) before every sweep on PostgreSQL. A lost lock still writes nothing.
        with self._sweep_lock:
            if self.lost.is_set():
                return []
            now = self.clock()
            try:
                results = sweep(self.sweeper, self.policy, now, batch=self.batch, next_due=next_due)
            except LeadershipLost:  # the fence refused the batch: ask, and step down
                self.leading()
                return []
            except Exception as e:  # a failed sweep is retried by the next tick
                err = f"{type(e).__name__}: {e}"
                self.log("error", "sweep_failed", error=err, start=now, end=self.clock())
                return []
            done = self.clock()
            self.last_sweep = now
            self.log("debug", "swept", start=now, end=done, count=len(results))
            if results:
                self.escalated += len(results)
                if self.on_sweep is not None:
                    self.on_sweep(results, done)
                lat = [r.lateness_ms for r in results]
                self.log(
                    "info",
                    event,
                    count=len(results),
                    catch_up=sum(r.catch_up for r in results),
                    max_lateness_ms=max(lat),
                    sweep_ms=round((done - now).total_seconds() * 1000, 3),
                    cases=[r.case_id for r in results[:20]],
                )
            return results

    def rehearse(self) -> None:
        """A stand-in's escalation, rolled back (`store.escalation.rehearse`): the first
        real one after a start is then as quick as the ones after it."""
        try:
            ms = rehearse(self.sweeper, self.policy.plan_escalation, self.clock())
        except LeadershipLost:
            self.leading()
        except Exception as e:  # a warm-up: never a reason not to run
            self.log("warning", "rehearsal_failed", error=f"{type(e).__name__}: {e}")
        else:
            self.log("debug", "rehearsed", ms=round(ms, 1))

    def sweep_job(self, due: datetime | None = None) -> None:
        """Sweep at `due` (the timer fires WAKE_EARLY before it), with the next sweep armed
        from inside the last batch's transaction before its commit (issue 15: on PostgreSQL
        the commit's WAL flush and the re-read after it took 5-30 ms on a busy server, and
        the next deadline waited for both); a failed sweep re-arms from the store as before."""
        with self.gate.sweeping():  # the outbox's delivery waits meanwhile
            self._sweep_job(due)

    def _sweep_job(self, due: datetime | None) -> None:
        """Sweep at `due`; then, while the next deadline is nearer than the early wake, sweep
        it from here too (issue 15: handing a deadline 5 ms away to the scheduler, to wake
        and start a thread under load, had the case wait 10-17 ms after its predecessor)."""
        try:
            while True:
                if due is not None:
                    self._wait_for(due)
                due = self._sweep_and_arm()
                if due is None:
                    return
        finally:
            if self._following is not None:  # left before sweeping its own deadline
                self._following = None
                self.rearm()

    def _sweep_and_arm(self) -> datetime | None:
        """One sweep, the next one armed from inside its transaction; returns the next
        deadline when it is this job's to sweep (`rearm`'s `follow`)."""
        self._following = None
        before = self.clock()
        armed: list[datetime | None] = []

        def arm(nd: datetime | None) -> None:
            try:
                armed.append(self.rearm(after=before, known=(nd,), follow=True))
            except Exception as e:  # never fail the sweep's transaction over its timer
                self.log("error", "rearm_failed", error=f"{type(e).__name__}: {e}")

        self.sweep_once(next_due=arm)
        if not armed or self.last_sweep is None or self.last_sweep < before:
            armed = [self.rearm(after=before, follow=True)]
        return armed[-1]

    def _wait_for(self, due: datetime) -> None:
        """Sleep until `due` by the daemon's clock: one sleep, never longer than twice the
        early wake (a clock that does not move, as in tests, costs that at most)."""
        left = (due - self.clock()).total_seconds()
        if left > 0:
            time.sleep(min(left, 2 * WAKE_EARLY.total_seconds()) + 0.0002)

    def tick(self) -> None:
        if self.leading():
            self.rearm()

    def rearm(
        self,
        after: datetime | None = None,
        known: tuple[datetime | None] | None = None,
        *,
        follow: bool = False,
    ) -> datetime | None:
        """Arm the sweep at the earliest deadline in the store (the truth), or at `known`'s
        one (read by the sweep inside its transaction). `follow` (the sweep job's own call):
        a deadline nearer than the early wake is not given to the scheduler but returned,
        for the job to sweep it itself."""
        if known is not None:
            nd = known[0]
        else:
            try:
                nd = next_deadline(self.store.read_engine)
            except Exception as e:
                self.log("error", "rearm_failed", error=f"{type(e).__name__}: {e}")
                return None
        with self._arm_lock:
            if self.sched is None:
                return None
            job = self.sched.get_job("sweep")
            if nd is None:
                if job is not None:
                    job.remove()
                self._armed = self.gate.next_due = None
                return None
            if after is not None and nd <= after:
                # Still due right after a sweep: not ours to spin on; look again shortly.
                nd = self.clock() + MIN_REARM
            if follow and nd - self.clock() <= WAKE_EARLY:
                if job is not None:
                    job.remove()
                self._armed = self._following = self.gate.next_due = nd
                return nd
            if not follow and self._following is not None:
                return None  # the sweep job sweeps that one itself, then arms what follows
            if job is not None and self._armed == nd:
                return None
            self._armed = nd
            self.gate.next_due = nd  # the delivery keeps clear of it
            self.sched.add_job(
                self.sweep_job,
                "date",
                run_date=nd - WAKE_EARLY,
                kwargs={"due": nd},
                id="sweep",
                replace_existing=True,
                misfire_grace_time=None,
                max_instances=3,
            )
        return None

    def deliver_job(self) -> None:
        if self.lost.is_set() or not self.deliveries.due(self._armed):
            return  # (a deadline is near: the claim's write lock would hold the sweep up)
        try:
            report = self.deliver(self.store, self.d, now=self.clock(), gate=self.gate)
            fields: dict[str, Any] = {
                n: getattr(report, n) for n in ("sent", "failed", "dead", "messages", "waiting")
            }
            if any(fields.values()):
                self.log("info", "delivered", **fields)
        except Exception as e:
            self.log("error", "deliver_failed", error=f"{type(e).__name__}: {e}")

    def alarm_job(self) -> None:
        """Notices undelivered for `[notices] alarm_after_minutes`: the centre is told."""
        from tafang.sla.notify.alarm import raise_alarm

        if self.lost.is_set():
            return
        try:
            key = raise_alarm(self.store, self.d, self.clock())
        except Exception as e:
            self.log("error", "alarm_failed", error=f"{type(e).__name__}: {e}")
            return
        if key is not None:
            self.log("error", "notices_undeliverable", alarm=key)

    def poll_job(self) -> None:
        if self.lost.is_set():
            return
        try:
            report = self.poll(self.store, self.d, now=self.clock())
            fields: dict[str, Any] = {"accepted": report.accepted, "rejected": report.rejected}
            if report.failed:
                fields["failed"] = [f.feed for f in report.failed]
            if any(fields.values()):
                self.log("info", "polled", **fields)
        except Exception as e:
            self.log("error", "poll_failed", error=f"{type(e).__name__}: {e}")

    def heartbeat(self, **extra: Any) -> None:
        if self.lost.is_set():
            return  # the heartbeat row is the leader's
        info = {
            "escalated": self.escalated,
            "last_sweep": self.last_sweep.isoformat() if self.last_sweep else None,
            "next_deadline": self._armed.isoformat() if self._armed else None,
            "db": self.store.engine.dialect.name,
            **extra,
        }
        try:
            write_heartbeat(
                self.store.engine, now=self.clock(), started_at=self.started_at, info=info
            )
        except Exception as e:
            self.log("error", "heartbeat_failed", error=f"{type(e).__name__}: {e}")

    def checkpoint_job(self) -> None:
        """The WAL copied back into the database file between deadlines (sla/pauses.py)."""
        try:
            if self.checkpoints.due(self._armed):
                checkpoint(self.store.engine)
        except Exception as e:
            self.log("error", "checkpoint_failed", error=f"{type(e).__name__}: {e}")

    def anchor_job(self) -> None:
        """Log the record's head and send it to the witnesses (`[record] witness_file`, the
        centre's robot: sla/witness.py): kept outside the database, it lets `tafang audit
        verify --witness FILE` / `--anchor SEQ:HASH` catch a rewritten or truncated record."""
        try:
            seq, digest = record_head(self.store.engine)
        except Exception as e:
            self.log("error", "record_head_failed", error=f"{type(e).__name__}: {e}")
            return
        self.log("info", "record_head", seq=seq, hash=digest, anchor=f"{seq}:{digest}")
        try:
            a = send_anchor(self.store, self.clock(), self.witnessed)
        except Exception as e:  # a full disk or a bad key must not stop the daemon: say it
            self.log("error", "witness_failed", error=f"{type(e).__name__}: {e}")
            return
        if a is not None and a.key_id is None and not self.witnessed.warned:
            self.witnessed.warned = True
            self.log(
                "warning",
                "record_unkeyed",
                message="the record is a plain SHA-256 chain "
                "(no record key): whoever can write the database can re-chain it",
            )

    def calendar_job(self) -> None:
        """An ERROR while the current or next 60 days hold a year that neither
        chinese_calendar nor config `[calendar]` knows (those days count Monday–Friday)."""
        today = self.clock().astimezone(ZoneInfo(self.d.timezone)).date()
        years = self.calendar.gaps(today)
        if years:
            self.log(
                "error",
                "calendar_gap",
                years=years,
                today=today.isoformat(),
                message="no holiday data for these years: Monday-Friday counts as working "
                "days; type the State Council's notice into config.toml [calendar] "
                "(holidays, workdays) or upgrade chinese_calendar",
            )

    def risk_job(self) -> None:
        """Planned risk-point checks that fell due become cases (once each: intake dedupes)."""
        from tafang.store.risk import file_due_checks

        if self.lost.is_set():
            return
        try:
            filed = file_due_checks(self.store, self.clock())
        except Exception as e:
            self.log("error", "risk_checks_failed", error=f"{type(e).__name__}: {e}")
            return
        if filed:
            self.log("info", "risk_checks_filed", cases=filed)

    def report_job(self) -> None:
        """Meeting reports that fell due, written and announced (sla/report_schedule.py)."""
        from tafang.sla.report_schedule import write_due

        if self.lost.is_set():
            return
        try:
            written = write_due(self.store, self.clock())
        except Exception as e:  # a full disk must not stop the daemon: say it
            self.log("error", "report_failed", error=f"{type(e).__name__}: {e}")
            return
        for path in written:
            self.log("info", "report_written", path=str(path))

    # running -------------------------------------------------------------------------------
    def run_once(self) -> None:
        self.sweep_once("catch_up")
        self.deliver_job()
        self.poll_job()
        self.heartbeat(once=True)
        self.anchor_job()
        self.alarm_job()
        self.risk_job()

    def run_forever(self, stop: threading.Event) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.sched = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(8)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self.sweep_once("catch_up")
        self.rehearse()
        pauses.freeze_heap()  # no full collection of the start-up heap in the middle of a sweep
        pauses.share_gil_finely()  # a busy job thread holds the sweep up ≤ 1 ms at a time
        s = self.sched
        if own_checkpoints(self.store.engine):  # SQLite: no checkpoint inside a sweep's commit
            every = pauses.CHECKPOINT_SECONDS
            s.add_job(self.checkpoint_job, "interval", seconds=every, id="checkpoint")
        s.add_job(self.tick, "interval", seconds=TICK_SECONDS, id="tick")
        s.add_job(self.deliver_job, "interval", seconds=DELIVER_SECONDS, id="deliver")
        s.add_job(self.heartbeat, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat")
        every = self.d.record.witness_interval
        s.add_job(self.anchor_job, "interval", seconds=every, id="anchor")
        s.add_job(self.alarm_job, "interval", seconds=ALARM_SECONDS, id="alarm")
        s.add_job(self.calendar_job, "interval", seconds=CALENDAR_SECONDS, id="calendar")
        s.add_job(self.risk_job, "interval", seconds=RISK_SECONDS, id="risk")
        s.add_job(self.report_job, "interval", seconds=REPORT_SECONDS, id="reports")
        if self.d.feeds:
            every = max(1.0, min(f.interval for f in self.d.feeds))
            s.add_job(self.poll_job, "interval", seconds=every, id="feeds")
        s.start()
        self.rearm()
        self.heartbeat()
        self.log("info", "running", next_deadline=self._armed)
        while not stop.wait(0.5) and not self.lost.is_set():
            pass
        with self._arm_lock:
            sched, self.sched = self.sched, None
        sched.shutdown(wait=True)


def run_daemon(
    store: Store,
    deployment: Deployment,
    *,
    once: bool = False,
    clock: Callable[[], datetime] = utcnow,
    stop_event: threading.Event | None = None,
    policy: Policy | None = None,
    batch: int = 1000,
    log_stream: TextIO | None = None,
    log_level: str = "info",
    on_sweep: Callable[[list[EscalationResult], datetime], None] | None = None,
) -> int:
    """Run the daemon until SIGTERM/SIGINT or `stop_event`; `once` runs every due job once.

    Exit codes: 0 done or stopped cleanly; 2 another daemon leads this store (SQLite, or any
    store with `once`); 1 an unexpected error (logged). On PostgreSQL a second daemon waits
    for the leader's advisory lock and takes over when it goes.
    """
    log = JsonLog(log_stream, log_level)
    unroute = _route_logs(log)
    stop = stop_event or threading.Event()
    restore = _install_signals(stop, log)
    leader = Leadership(DaemonLock(store.engine), log)
    daemon: _Daemon | None = None
    try:
        refused = _lead(leader, store, once, stop, log)
        if refused is not None:
            return refused
        if policy is None:
            policy = store.clocks if isinstance(store.clocks, Policy) else Policy(deployment)
        daemon = _Daemon(
            store, deployment, policy, clock, log, batch, on_sweep, leader, own_engine=not once
        )
        added = store.sync_roster()  # officers new to the config start available
        db = store.engine.dialect.name
        log("info", "started", pid=os.getpid(), db=db, once=once, roster_added=added)
        daemon.calendar_job()
        t0 = time.perf_counter()
        if once:
            daemon.run_once()
            log("info", "done", seconds=round(time.perf_counter() - t0, 3))
            return 0
        while _run_led(daemon, leader, stop, log):
            pass
        daemon.heartbeat(stopped=True)
        log("info", "stopped", escalated=daemon.escalated)
        return 0
    except Exception as e:
        log("error", "fatal", error=f"{type(e).__name__}: {e}")
        return 1
    finally:
        if daemon is not None and daemon.sweep_engine is not store.engine:
            daemon.sweep_engine.dispose()
        leader.release()
        restore()
        unroute()


def _run_led(daemon: _Daemon, leader: Leadership, stop: threading.Event, log: JsonLog) -> bool:
    """Run the jobs while leading; True to run again after stepping down and leading anew
    (the lock was lost, e.g. to a server restart, and taken back), False when stopped."""
    log("info", "leading", pid=os.getpid())
    daemon.run_forever(stop)
    if stop.is_set() or not daemon.lost.is_set():
        return False
    leader.release()
    log("info", "waiting_for_leader", reason="stepped down; waiting for the lock again")
    if not leader.wait_take(stop):
        return False
    daemon.lost.clear()
    return True


def _lead(
    leader: Leadership, store: Store, once: bool, stop: threading.Event, log: JsonLog
) -> int | None:
    """Take the store's leadership; None once led, else the exit code to return.

    On PostgreSQL (and not `once`) a second daemon waits for the leader's lock, through
    server restarts; otherwise a busy lock is exit code 2, and a stop while waiting 0."""
    if leader.try_take():
        return None
    if once and leader.unreachable:
        log("error", "fatal", error="the store does not answer (leader lock not taken)")
        return 1
    holder = leader.lock.describe_holder()
    if once or store.engine.dialect.name != "postgresql":
        log("error", "lock_busy", reason=holder)
        print(f"tafang daemon: {holder}; one daemon per store", file=sys.stderr)
        return 2
    log("info", "waiting_for_leader", reason=holder)
    if not leader.wait_take(stop):
        log("info", "stopped", while_waiting=True)
        return 0
    return None


def _route_logs(log: JsonLog) -> Callable[[], None]:
    """Library logging (APScheduler, tafang.*) goes to the JSON log; returns an undo."""
    handler = _JsonHandler(log)
    libs = [logging.getLogger("apscheduler"), logging.getLogger("tafang")]
    ours_before = libs[1].level
    for lg in libs:
        lg.addHandler(handler)
        lg.propagate = False
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, log.min_level))
    libs[1].setLevel(log.min_level)  # --log-level DEBUG shows tafang's debug lines too

    def undo() -> None:
        for lg in libs:
            lg.removeHandler(handler)
            lg.propagate = True
        libs[1].setLevel(ours_before)

    return undo


def _install_signals(stop: threading.Event, log: JsonLog) -> Callable[[], None]:
    """SIGTERM/SIGINT set `stop` (only possible from the main thread); returns an undo."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def on_signal(signum: int, _frame: Any) -> None:
        log("info", "signal", signal=signal.Signals(signum).name)
        stop.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for s, h in old.items():
            signal.signal(s, h)

    return restore
