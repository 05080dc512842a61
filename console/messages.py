"""Messages the store-polling worker and the action workers post to the app.

Workers run in threads; `post_message` is the only thread-safe way back to the UI, so every
result travels as one of these, carrying plain frozen views (never sessions or rows).
Declared as dataclasses (Textual's `Message.__post_init__` does the set-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from tafang.store.views import CaseView, OfficerView
from tafang.widgets.rows import QueueRow
from textual.message import Message

if TYPE_CHECKING:
    from tafang.console.dupe_marks import DupeMarks


@dataclass
class StoreLoaded(Message):
    """The first full load: every open case, its queue row (built off the UI thread), the roster."""

    cases: Sequence[CaseView]
    officers: Sequence[OfficerView]
    rows: Sequence[QueueRow] | None = None
    complete: bool = True  # False: only the most urgent cases, shown while the rest is read


@dataclass
class DupesLoaded(Message):
    """The first load's duplicate marks, matched in the poll worker after the first frame."""

    marks: DupeMarks


@dataclass
class StoreChanged(Message):
    """Cases that changed since the last poll (open or not) and the roster as it is now."""

    cases: Sequence[CaseView]
    officers: Sequence[OfficerView]


@dataclass
class StoreHealth(Message):
    """The store answered again (`down_since` None) or stopped answering."""

    down_since: datetime | None
    error: str = ""


@dataclass
class DaemonBeat(Message):
    """The daemon's last heartbeat (None when it never wrote one)."""

    at: datetime | None


@dataclass
class NoticesBacklog(Message):
    """Escalation notices not yet delivered: how many, and the oldest's queue time."""

    count: int
    oldest: datetime | None


@dataclass
class Compliance(Message):
    """Today's 1-3-5 compliance: met / due over the three stages (None when nothing was due)."""

    met: int
    due: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.met / self.due if self.due else None


@dataclass
class PartnersHandled(Message):
    """Items each partner team handled today, by partner code."""

    counts: dict[str, int]


@dataclass
class ActionDone(Message):
    """A move went through: the case as the store now has it."""

    action: str
    case: CaseView


@dataclass
class ActionFailed(Message):
    """A move was refused (or lost a race): the store's reason, to show as typed."""

    action: str
    case_id: int
    reason: str
    conflict: bool = False
