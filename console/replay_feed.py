"""`tafang replay --speed N`: a hard night played again on a scratch store, for training.

The period's real reports (store/arrivals.py `arrival_reports`) are copied into the demo's
scratch SQLite store (console/demo.py) one by one, each when its time comes at N× speed
(a report received 10 minutes into the period comes 1 minute in at --speed 10), through the
real intake path with the live receipt time, so every clock runs as it did. The trainee
acknowledges and dispatches; the officers' side (arrive, handle) and the checker's close
follow the demo's colleagues after delays shortened N times; the SLA sweep runs in-process.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from tafang.console.demo import CHECKER, COLLEAGUE, NEXT, DemoFeed, DemoOptions, post
from tafang.sla.escalate import sweep
from tafang.store.cases import Refused, Store

TRAINEE_MOVES = frozenset({"ack", "dispatch"})
"""The moves left to the person being trained."""


class ReplayFeed(DemoFeed):
    """Posts `reports` ((received_at, record), in order) at `speed`× from the start."""

    def __init__(
        self, store: Store, reports: Sequence[tuple[datetime, dict[str, Any]]], speed: float
    ) -> None:
        super().__init__(store, DemoOptions(speed=speed, backlog=0))
        self.reports = list(reports)
        self.origin = self.reports[0][0] if self.reports else datetime.now(UTC)
        self.speed = speed
        self.posted = 0

    def run(self) -> None:
        while not self._halt.wait(0.25):
            try:
                self.tick(datetime.now(UTC))
            except Exception:  # the replay must never take the console down
                continue

    def tick(self, now: datetime) -> None:
        """Post what is due by `now`, move the officers' side on, sweep."""
        played = (now - self.started_at) * self.speed
        while self.posted < len(self.reports):
            at, rec = self.reports[self.posted]
            if at - self.origin > played:
                break
            post(self.store, {**rec, "received_at": now.isoformat()}, self.feed_actor)
            self.posted += 1
        self.progress(now)
        if self.policy is not None:
            sweep(self.store, self.policy, now)
            self.heartbeat(now)

    def progress(self, now: datetime) -> None:
        """The officers' and checker's steps, N times quicker; never the trainee's."""
        for c in self.store.cases("open"):
            step = NEXT.get(c.status)
            if step is None or step[0] in TRAINEE_MOVES:
                continue
            move, since, (lo, hi) = step
            start = getattr(c, since) or c.received_at
            wait = self.delays.setdefault((c.id, move), self._delay(lo, hi) / self.speed)
            if (now - start).total_seconds() < wait:
                continue
            actor = CHECKER if move == "close" else COLLEAGUE
            try:
                self.store.act(c.id, move, actor, expected_version=c.version, now=now)
            except Refused:
                self.delays[(c.id, move)] = wait + 30 / self.speed
