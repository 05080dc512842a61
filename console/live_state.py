"""What the terminal knows live: every open case, its row and its light, kept incrementally.

The UI thread owns a `LiveState`; the poll's messages feed it (`load`, `apply`) and the
once-a-second tick moves its clock (`advance`). Lights come from the store's one rule
(`store.clocks.light_at`); the widgets are handed the rows and the lights as plain data.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tafang.console.dupe_marks import DupeMarks
from tafang.console.queue_filter import Filter, matches
from tafang.console.view_model import ViewModel
from tafang.store.clocks import Light, at_risk_from, light_at
from tafang.store.views import CaseView, OfficerView
from tafang.widgets.rows import CellState, PartnerRow, QueueRow


@dataclass
class Counts:
    open: int = 0
    at_risk: int = 0
    breached: int = 0


class LiveState:
    """Every open case the terminal knows, its row and its light, kept incrementally.

    Lights change only at known instants (the at-risk point and the deadline of each row), so
    they sit in a heap: a tick pops what came due instead of re-reading 10k rows a second,
    and the header counts and the map's per-cell tallies are updated, not recomputed.
    """

    def __init__(self, vm: ViewModel) -> None:
        self.vm = vm
        self.cases: dict[int, CaseView] = {}
        self.rows: dict[int, QueueRow] = {}
        self.officers: list[OfficerView] = []
        self.light: dict[int, str] = {}
        self.tally: dict[str, int] = {"none": 0, "ok": 0, "at_risk": 0, "breached": 0}
        self.cells: dict[str, dict[str, int]] = {}
        self._heap: list[tuple[datetime, int, int]] = []
        self.now = datetime.now(UTC)
        self.dirty = False  # some light changed since the map was last given its state
        self.dupes = DupeMarks(vm.d)  # probable duplicates, marked ≈N in the queue

    # -- rows in and out
    def load(
        self, cases: Sequence[CaseView], now: datetime, rows: Sequence[QueueRow] | None = None
    ) -> None:
        """Start over from a full read (`rows`, when given, are the cases' rows in order)."""
        self.__init__(self.vm)  # type: ignore[misc]
        self.now = now
        made = rows if rows is not None else [self.vm.queue_row(c, now) for c in cases]
        for c, row in zip(cases, made, strict=True):
            if c.is_open:
                self.cases[c.id] = c
                self._put(row)

    def adopt_dupes(self, marks: DupeMarks) -> list[int]:
        """Take the first load's duplicate marks; the ids whose mark changed."""
        marks.catch_up(self.cases)
        self.dupes = marks
        changed = [cid for cid, row in self.rows.items() if row.dupes != marks.count(cid)]
        self._remark(changed)
        return changed

    def apply(self, cases: Sequence[CaseView], now: datetime) -> bool:
        """Take changed cases in; True if anything on screen changes."""
        changed = False
        for c in cases:
            known = self.cases.get(c.id)
            if known is not None and known.version >= c.version and c.is_open:
                continue  # already shown (an action's answer came before the poll)
            if c.is_open:
                self.cases[c.id] = c
                if known is None or _matched_fields(known) != _matched_fields(c):
                    self.dupes.arrive(c)
                self._put(self.vm.queue_row(c, now))
                changed = True
            elif known is not None:
                self.cases.pop(c.id, None)
                self._drop(c.id)
                self._remark(self.dupes.leave(c.id))
                changed = True
        return changed

    def _remark(self, ids: Iterable[int]) -> None:
        """Rows whose duplicate mark changed, put again."""
        for cid in ids:
            row = self.rows.get(cid)
            if row is not None:
                self._put(row)

    def _put(self, row: QueueRow) -> None:
        n = self.dupes.count(row.case_id)
        if row.dupes != n:
            row = replace(row, dupes=n)
        self._drop(row.case_id)
        self.rows[row.case_id] = row
        self._set_light(row, self._light(row, self.now))
        self._schedule(row)

    def _drop(self, case_id: int) -> None:
        row = self.rows.pop(case_id, None)
        old = self.light.pop(case_id, None)
        if row is None or old is None:
            return
        self.tally[old] -= 1
        self.dirty = True
        if row.grid_code:
            cell = self.cells[row.grid_code]
            cell[old] -= 1
            cell["n"] -= 1

    def _set_light(self, row: QueueRow, light: str) -> None:
        old = self.light.get(row.case_id)
        if old == light:
            return
        cell = self.cells.setdefault(row.grid_code, _empty_cell()) if row.grid_code else None
        if old is not None:
            self.tally[old] -= 1
            if cell is not None:
                cell[old] -= 1
        elif cell is not None:
            cell["n"] += 1
        self.tally[light] += 1
        if cell is not None:
            cell[light] += 1
        self.light[row.case_id] = light
        self.dirty = True

    def _light(self, row: QueueRow, now: datetime) -> Light:
        """The store's rule on the row's clock; a held row's reads at the hold, still."""
        return light_at(row.due, row.budget_seconds, self.vm.at_risk, row.held_at or now)

    def _schedule(self, row: QueueRow) -> None:
        """Push the row's next change of light: its at-risk point, then its deadline."""
        if row.due is None or row.held_at is not None:
            return  # no clock, or one that stands still: its light never changes
        light = self.light[row.case_id]
        if light == "ok" and row.budget_seconds:
            when = at_risk_from(row.due, row.budget_seconds, self.vm.at_risk)
        elif light in ("ok", "at_risk"):
            when = row.due
        else:
            return
        heapq.heappush(self._heap, (when, row.case_id, row.version))

    # -- time passing
    def advance(self, now: datetime) -> list[int]:
        """Move the clock to `now`; the ids that breached since the last call."""
        self.now = now
        newly: list[int] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, cid, version = heapq.heappop(heap)
            row = self.rows.get(cid)
            if row is None or row.version != version:
                continue  # the case changed or left since this was scheduled
            before = self.light.get(cid)
            light = self._light(row, now)
            self._set_light(row, light)
            if light == "breached" and before != "breached":
                newly.append(cid)
            self._schedule(row)
        return newly

    def tick(self, now: datetime) -> tuple[Counts, list[int]]:
        """Counts for the header and the ids that breached since the last tick."""
        newly = self.advance(now)
        return self.counts(), newly

    def counts(self) -> Counts:
        return Counts(len(self.rows), self.tally["at_risk"], self.tally["breached"])

    # -- what the widgets get
    def sorted_rows(self, f: Filter) -> list[QueueRow]:
        """The rows that pass the filter (the queue widget orders them by urgency)."""
        if not f.active:
            return list(self.rows.values())
        d = self.vm.d
        return [r for i, r in self.rows.items() if matches(f, self.cases[i], r, d)]

    def rows_for(self, ids: Iterable[int], f: Filter) -> tuple[list[QueueRow], list[int]]:
        """What a few changed cases mean for the queue: the rows of `ids` it now shows (they
        pass the filter) and the ids it no longer shows, so it need not be rebuilt."""
        shown: list[QueueRow] = []
        gone: list[int] = []
        d = self.vm.d
        for i in ids:
            row = self.rows.get(i)
            if row is not None and (not f.active or matches(f, self.cases[i], row, d)):
                shown.append(row)
            else:
                gone.append(i)
        return shown, gone

    def cell_states(self, now: datetime | None = None) -> list[CellState]:
        there: dict[str, int] = {}
        for o in self.officers:
            if o.grid and o.status in ("en_route", "on_scene"):
                there[o.grid] = there.get(o.grid, 0) + 1
        out = []
        for g in self.vm.d.tower.grids:
            c = self.cells.get(g.code)
            n = c["n"] if c else 0
            worst = "none"
            if c and n:
                worst = "ok"
                for light in ("breached", "at_risk"):
                    if c[light]:
                        worst = light
                        break
            out.append(CellState(g.code, n, worst, there.get(g.code, 0)))
        return out

    def partner_rows(self, handled_today: dict[str, int]) -> list[PartnerRow]:
        open_by: dict[str, int] = {}
        for c in self.cases.values():
            if c.assignee_kind == "partner" and c.assignee:
                open_by[c.assignee] = open_by.get(c.assignee, 0) + 1
        return [
            PartnerRow(
                p.code,
                self.vm.partner_names[p.code],
                open_by.get(p.code, 0),
                handled_today.get(p.code, 0),
            )
            for p in self.vm.d.partners
        ]


def _empty_cell() -> dict[str, int]:
    return {"n": 0, "none": 0, "ok": 0, "at_risk": 0, "breached": 0}


def _matched_fields(c: CaseView) -> tuple[object, ...]:
    """What the duplicate matcher reads of a case: when none of it changed, no new match."""
    return (c.title, c.location, c.grid, c.category, c.lat, c.lon, c.received_at)
