"""The console's first read of the store, started before the app is built.

With 10k open cases the full read and its rows take over half a second of one core. Started in
a thread as soon as the store is open, it first reads the PAGE most urgent cases (tens of ms),
so the first frame shows the cases that need action while the rest is read; the poll worker
takes both answers instead of reading again. Nothing here imports Textual: the app module sets
TEXTUAL_FPS first.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from threading import Event, Thread

from tafang.console.view_model import ViewModel
from tafang.store.cases import Store
from tafang.store.queries import open_cases
from tafang.store.views import CaseView, OfficerView
from tafang.widgets.rows import QueueRow


@dataclass(frozen=True)
class FirstLoad:
    """Every open case and its queue row, the roster, and the change number read before them."""

    seq: int
    cases: Sequence[CaseView]
    officers: Sequence[OfficerView]
    rows: Sequence[QueueRow] | None
    at: datetime
    complete: bool = True  # False: only the most urgent cases (`PAGE`), the rest to follow


PAGE = 200
"""Cases in the first frame: more than any terminal shows at once, most urgent first."""
SHOWN_WAIT = 2.0
"""Seconds the full read waits for the page to be painted, at most."""


@dataclass(frozen=True)
class FirstRead:
    """The two answers of `start`: the most urgent page, then every open case."""

    page: Future[FirstLoad]
    full: Future[FirstLoad]
    shown: Event = field(default_factory=Event)  # set by the app once the page is painted


def read_all(
    store: Store, vm: ViewModel | None, now: datetime, most_urgent: int | None = None
) -> FirstLoad:
    """A full read (or the `most_urgent` page). The change number is taken first, so a change
    made during the read is read again by the next poll, never missed."""
    seq = store.change_seq()
    cases = open_cases(store, most_urgent)
    rows = [vm.queue_row(c, now) for c in cases] if vm is not None else None
    return FirstLoad(seq, cases, store.officers(), rows, now, most_urgent is None)


def start(store: Store, vm: ViewModel) -> FirstRead:
    """The page, then (once the app has painted it) the full read, in a daemon thread;
    answers (or errors) in futures."""
    read = FirstRead(Future(), Future())

    def run() -> None:
        for done, n in ((read.page, PAGE), (read.full, None)):
            if n is None:  # the full read would hold the GIL while the page is painted
                read.shown.wait(SHOWN_WAIT)
            try:
                done.set_result(read_all(store, vm, datetime.now(UTC), n))
            except BaseException as e:  # the poll worker sees the outage and retries
                done.set_exception(e)

    Thread(target=run, name="tafang-first-read", daemon=True).start()
    return read
