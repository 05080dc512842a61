"""`deliver_due`: claim, send each target's batch concurrently, settle, report.

Targets are sent to concurrently, one batch in flight per target, and each target's outcome
is written as soon as its batch ends. `deliver_due` waits at most `return_after` seconds: a
target still busy then finishes in the background, is skipped by later calls until it ends
(its rows are leased anyway), and its result is reported by the first call after it ends. So
a slow or dead endpoint never delays the other endpoints, and the sweep runs in its own job.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Engine
from tafang.sla.notify.claim import claim
from tafang.sla.notify.plan import Message, Plan
from tafang.sla.notify.redact import redact
from tafang.sla.notify.render import Names
from tafang.sla.notify.report import ContactResult, DeliveryReport
from tafang.sla.notify.send import post_bounded
from tafang.sla.notify.settings import DEFAULT_SETTINGS, NotifySettings
from tafang.sla.notify.settle import Outcome, settle
from tafang.sla.pauses import SweepGate
from tafang.store.cases import Store
from tafang.store.config import Deployment

log = logging.getLogger("tafang.sla.notify")


@dataclass
class _Batch:
    """A target's messages as they were tried: in order, stopping at the first failure."""

    outcomes: list[Outcome] = field(default_factory=list)
    deferred: list[Message] = field(default_factory=list)  # not started (call budget)
    untried: list[Message] = field(default_factory=list)  # skipped after a failure: uncharged
    first_error: str = ""
    requests: int = 0


def _deliver_contact(
    store: Store,
    plan: Plan,
    names: Names,
    client: httpx.Client | None,
    now: datetime,
    s: NotifySettings,
    gate: SweepGate,
) -> ContactResult:
    """Send a target's messages in order and settle them.

    Without a shared client the batch has its own, closed when it ends: that also cuts any
    request it abandoned at the deadline."""
    http = client or httpx.Client(timeout=s.timeout, follow_redirects=False)
    started = time.monotonic()
    try:
        batch = _send_batch(plan, names, http, now, s, started, gate)
    finally:
        if client is None:
            http.close()
    # `now` may be long past when a batch ran in the background: whole seconds suffice.
    ended = now + timedelta(seconds=int(time.monotonic() - started))
    gate.wait()
    sent, failed, dead = settle(
        store, plan, batch.outcomes, batch.deferred, batch.untried, now, ended, s
    )
    digests = sum(1 for m, e in batch.outcomes if m.digest and e is None)
    if digests:
        log.info("notified %s: %d rows folded into digest(s)", plan.label, digests)
    return ContactResult(
        contact=plan.label,
        messages=batch.requests,
        sent=sent,
        failed=failed,
        dead=dead,
        deferred=sum(len(m.rows) for m in batch.deferred),
        waiting=plan.waiting,
        digests=digests,
        error=batch.first_error,
    )


def _send_batch(
    plan: Plan,
    names: Names,
    client: httpx.Client,
    now: datetime,
    s: NotifySettings,
    started: float,
    gate: SweepGate,
) -> _Batch:
    """Try the messages in order; after a failure the rest wait, untried and uncharged;
    after the call budget the rest are deferred."""
    b = _Batch()
    for i, msg in enumerate(plan.messages):
        if b.first_error:
            b.untried.append(msg)
            continue
        if time.monotonic() - started > s.call_budget:
            b.deferred = plan.messages[i:]
            break
        if msg.contact is None:
            err: str | None = f"no contact configured for level {msg.rows[0].contact!r}"
        else:
            gate.wait()  # not beside a sweep (sla/pauses.py)
            err = post_bounded(client, msg.contact, msg, names, now, s)
            b.requests += 1
        b.outcomes.append((msg, err))
        if err:
            b.first_error = err
            log.warning("notification to %s failed: %s", plan.label, err)
    return b


# Batches still running after their deliver_due call returned, per engine (so per daemon),
# per target: (label, future). Later calls skip those targets and report them once ended.
_Flight = tuple[str, Future[ContactResult]]
_IN_FLIGHT: weakref.WeakKeyDictionary[Engine, dict[str, _Flight]] = weakref.WeakKeyDictionary()
_IN_FLIGHT_LOCK = threading.Lock()


def _harvest(engine: Engine) -> tuple[list[_Flight], frozenset[str]]:
    """Batches that ended since the last call (taken out), and the targets still busy."""
    with _IN_FLIGHT_LOCK:
        mine = _IN_FLIGHT.get(engine, {})
        ended = [t for t, (_label, f) in mine.items() if f.done()]
        return [mine.pop(t) for t in ended], frozenset(mine)


def _ended(label: str, f: Future[ContactResult]) -> ContactResult:
    """A background batch's result; its failure (a database error) logged, not raised."""
    try:
        return f.result()
    except Exception as e:
        log.error("notification batch for %s failed: %s: %s", label, type(e).__name__, e)
        return ContactResult(contact=label, error=redact(f"{type(e).__name__}: {e}"))


def _still_flying(engine: Engine) -> tuple[str, ...]:
    with _IN_FLIGHT_LOCK:
        return tuple(sorted(label for label, _f in _IN_FLIGHT.get(engine, {}).values()))


def _run_batches(
    store: Store,
    active: list[Plan],
    names: Names,
    client: httpx.Client | None,
    now: datetime,
    s: NotifySettings,
    max_workers: int,
    gate: SweepGate,
) -> list[ContactResult]:
    """Start one batch per target, wait `return_after`; the late ones go on in flight."""
    pool = ThreadPoolExecutor(
        max_workers=max(1, min(max_workers, len(active))), thread_name_prefix="notify"
    )
    try:
        futures = {
            p.target: (
                p.label,
                pool.submit(_deliver_contact, store, p, names, client, now, s, gate),
            )
            for p in active
        }
    finally:
        pool.shutdown(wait=False)  # batches go on; the pool's threads end with them
    wait_futures([f for _label, f in futures.values()], timeout=s.return_after)
    late = {t: flight for t, flight in futures.items() if not flight[1].done()}
    if late:
        with _IN_FLIGHT_LOCK:
            _IN_FLIGHT.setdefault(store.engine, {}).update(late)
    return [f.result() for t, (_label, f) in futures.items() if t not in late]


def deliver_due(
    store: Store,
    deployment: Deployment,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    max_workers: int = 8,
    settings: NotifySettings | None = None,
    gate: SweepGate | None = None,
) -> DeliveryReport:
    """Deliver every due outbox row once (the daemon calls this about every second).

    Returns within about `settings.return_after` seconds: a target still sending then goes
    on in the background (listed in `in_flight`), and its result comes with the first call
    after it ends. Never raises for a failing endpoint; a database error of this call's
    claim or of a batch that ended in time propagates (the daemon logs it and tries again).
    `gate`: the daemon's (sla/pauses.py): each step waits while a sweep runs or is near.
    """
    s = settings or DEFAULT_SETTINGS
    now = now or datetime.now(UTC)
    gate = gate or SweepGate()  # none given: never closed
    earlier, busy = _harvest(store.engine)
    results = [_ended(label, f) for label, f in earlier]
    gate.wait()
    plans = claim(store, deployment, now, s, busy)
    results += [ContactResult(p.label, waiting=p.waiting) for p in plans.values() if not p.messages]
    active = [p for p in plans.values() if p.messages]
    if active:
        names = Names(deployment)
        results += _run_batches(store, active, names, client, now, s, max_workers, gate)
    report = sorted(results, key=lambda r: r.contact)
    return DeliveryReport(tuple(report), _still_flying(store.engine))
