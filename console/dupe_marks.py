"""The queue's duplicate marks: which open cases are probably another open case's event.

The matcher (`store/dupes.py`) is given each case as it arrives; its suggestions are kept per
case so the queue can mark the row (≈N) and `m` can show the candidates side by side. A case
that leaves the queue (merged, closed, void) leaves every list it was in.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from tafang.store.config import Deployment
from tafang.store.dupes import DupeIndex, Report, Suggestion, report_of
from tafang.store.views import CaseView

LOAD_MATCHES = 50
"""Arrivals matched when the terminal loads (a few ms each at worst: a fifth of a second)."""


def _newest_first(r: Report) -> tuple[float, int]:
    return (-r.received_at.timestamp(), -r.id)


class DupeMarks:
    """Suggestions for the open cases this terminal knows, kept as cases come and go."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.index = DupeIndex(d) if d.dupes.enabled else None
        self.suggested: dict[int, list[Suggestion]] = {}

    def count(self, case_id: int) -> int:
        return len(self.suggested.get(case_id, ()))

    def of(self, case_id: int) -> list[Suggestion]:
        return list(self.suggested.get(case_id, ()))

    def load(self, cases: Sequence[CaseView], now: datetime) -> None:
        """Start over, as if the cases had arrived one by one (a case is matched with the ones
        before it: the newer report is the one marked). Only the latest arrivals within the
        window are matched (at most LOAD_MATCHES): older ones have been on screen a while,
        and matching thousands would cost seconds; later arrivals are matched as they come."""
        self.suggested.clear()
        if self.index is None:
            return
        index = self.index = DupeIndex(self.d)
        reports = sorted((report_of(c) for c in cases), key=_newest_first, reverse=True)
        recent = now - timedelta(minutes=index.rules.window_minutes)
        latest = [r for r in reversed(reports) if r.received_at >= recent][:LOAD_MATCHES]
        chosen = {r.id for r in latest}
        for r in reports:  # oldest first, as they arrived: each is matched with earlier ones
            index.add(r)
            if r.id in chosen:
                self._suggest_for(r)

    def catch_up(self, cases: dict[int, CaseView]) -> None:
        """Made from an earlier read (the poll worker matches the first load after the first
        frame): cases that left since are dropped, cases that came since are matched."""
        if self.index is None:
            return
        for cid in self.index.ids():
            if cid not in cases:
                self.leave(cid)
        for cid, case in cases.items():
            if cid not in self.index:
                self.arrive(case)

    def arrive(self, case: CaseView) -> list[int]:
        """A case new to this terminal (or changed): match it; the ids whose mark changed."""
        if self.index is None:
            return []
        r = report_of(case)
        self.index.add(r)
        before = self.count(case.id)
        self._suggest_for(r)
        return [case.id] if self.count(case.id) != before else []

    def leave(self, case_id: int) -> list[int]:
        """A case left the queue; the ids of other cases whose mark changed."""
        if self.index is None:
            return []
        self.index.discard(case_id)
        self.suggested.pop(case_id, None)
        changed = []
        for cid, found in list(self.suggested.items()):
            kept = [s for s in found if s.case_id != case_id]
            if len(kept) != len(found):
                changed.append(cid)
                if kept:
                    self.suggested[cid] = kept
                else:
                    del self.suggested[cid]
        return changed

    def _suggest_for(self, r: Report) -> None:
        assert self.index is not None
        found = self.index.suggest(r)
        if found:
            self.suggested[r.id] = found
        else:
            self.suggested.pop(r.id, None)
