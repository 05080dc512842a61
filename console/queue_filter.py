"""The queue filter: what the dispatcher narrowed the queue to, and whether a case passes."""

from __future__ import annotations

from dataclasses import dataclass

from tafang.store.config import Deployment
from tafang.store.views import CaseView
from tafang.widgets.rows import QueueRow


@dataclass(frozen=True, slots=True)
class Filter:
    """What the queue shows; empty fields match everything."""

    status: str = ""
    channel: str = ""
    circle: str = ""
    text: str = ""
    cell: str = ""

    @property
    def active(self) -> bool:
        return bool(self.status or self.channel or self.circle or self.text or self.cell)


def matches(f: Filter, case: CaseView, row: QueueRow, d: Deployment) -> bool:
    """Does a case pass the queue filter? (status, channel, circle, cell, free text)."""
    if f.status and case.status != f.status:
        return False
    if f.channel and case.source != f.channel:
        return False
    if f.cell and case.grid != f.cell:
        return False
    if f.circle:
        g = d.grids_by_code.get(case.grid or "")
        if g is None or g.circle != f.circle:
            return False
    if f.text:
        needle = f.text.lower()
        hay = " ".join(
            (
                str(case.id),
                case.title,
                case.description,
                case.location,
                row.grid_label,
                row.category,
                row.channel,
                row.assignee,
            )
        ).lower()
        if needle not in hay:
            return False
    return True
