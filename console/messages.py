"""Messages the store-polling worker and the action workers post to the app.

Workers run in threads; `post_message` is the only thread-safe way back to the UI, so every
result travels as one of these, carrying plain frozen views (never sessions or rows).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from tafang.store.views import CaseView, OfficerView
from tafang.widgets.rows import QueueRow
from textual.message import Message


class StoreLoaded(Message):
    """The first full load: every open case, its queue row (built off the UI thread), the roster."""

    def __init__(
        self,
        seq: int,
        cases: Sequence[CaseView],
        officers: Sequence[OfficerView],
        rows: Sequence[QueueRow] | None = None,
    ):
        super().__init__()
        self.seq = seq
        self.cases = cases
        self.officers = officers
        self.rows = rows


class StoreChanged(Message):
    """Cases that changed since the last poll (open or not) and the roster as it is now."""

    def __init__(self, seq: int, cases: Sequence[CaseView], officers: Sequence[OfficerView]):
        super().__init__()
        self.seq = seq
        self.cases = cases
        self.officers = officers


class StoreHealth(Message):
    """The store answered again (`down_since` None) or stopped answering."""

    def __init__(self, down_since: datetime | None, error: str = "") -> None:
        super().__init__()
        self.down_since = down_since
        self.error = error


class DaemonBeat(Message):
    """The daemon's last heartbeat (None when it never wrote one)."""

    def __init__(self, at: datetime | None) -> None:
        super().__init__()
        self.at = at


class Compliance(Message):
    """Today's 1-3-5 compliance: met / due over the three stages (None when nothing was due)."""

    def __init__(self, met: int, due: int) -> None:
        super().__init__()
        self.met = met
        self.due = due

    @property
    def percent(self) -> float | None:
        return 100.0 * self.met / self.due if self.due else None


class ActionDone(Message):
    """A move went through: the case as the store now has it."""

    def __init__(self, action: str, case: CaseView) -> None:
        super().__init__()
        self.action = action
        self.case = case


class ActionFailed(Message):
    """A move was refused (or lost a race): the store's reason, to show as typed."""

    def __init__(self, action: str, case_id: int, reason: str, conflict: bool = False) -> None:
        super().__init__()
        self.action = action
        self.case_id = case_id
        self.reason = reason
        self.conflict = conflict
