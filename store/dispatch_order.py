"""Who should take a case, as an order: the one dispatch-ranking rule.

The console's dispatch panel (console/ranking.py `rank`) shows this order with the
reasons a dispatcher reads; the what-if replay (sla/whatif.py) follows the same order to pick
its officer. Competence first: free officers before busy ones, then the category's case
group, then the case's enforcement circle, then the fewest open cases in hand, then the
shortest grid distance. Only officers who take cases (store/duty.py `takes_cases`) are
candidates. Partner teams that take the category lead; squads follow (the panel adds them).
Pure code over the deployment: officers are read by attribute (`OfficerView` or any object
with code, group, circle, grid, status, load and duty).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tafang.store.config import Deployment, Partner
from tafang.store.duty import takes_cases

FAR = 999
STATUS_ORDER = {"available": 0, "en_route": 1, "on_scene": 2}
"""Free officers first; busy ones follow (shown with their status). Officers off duty or on a
break are not candidates at all (store/duty.py `takes_cases`)."""


class Candidate(Protocol):
    """What the order reads of an officer."""

    @property
    def code(self) -> str: ...
    @property
    def group(self) -> str: ...
    @property
    def circle(self) -> str: ...
    @property
    def grid(self) -> str | None: ...
    @property
    def status(self) -> str: ...
    @property
    def load(self) -> int: ...
    @property
    def duty(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Fit:
    """How one officer fits one case: the facts the reasons show, and the sort key."""

    same_group: bool
    same_circle: bool
    distance: int
    order: tuple[int, ...]


def grid_distance(d: Deployment, case_grid: str | None, officer: Candidate) -> int:
    """Cells between the case and the officer: from the officer's current cell when known,
    else from the nearest cell of the officer's home circle (Manhattan on the map)."""
    g = d.grids_by_code.get(case_grid or "")
    if g is None:
        return FAR
    here = d.grids_by_code.get(officer.grid or "")
    cells = [here] if here is not None else [c for c in d.tower.grids if c.circle == officer.circle]
    if not cells:
        return FAR
    return min(abs(c.row - g.row) + abs(c.col - g.col) for c in cells)


def is_candidate(o: Candidate) -> bool:
    """May the officer be offered at all: on duty, and in a status the order knows."""
    return takes_cases(o.duty) and o.status in STATUS_ORDER


def fit(o: Candidate, category: str | None, grid: str | None, d: Deployment) -> Fit:
    """The officer's place in the order for a case of `category` in `grid`."""
    cell = d.grids_by_code.get(grid or "")
    circle = cell.circle if cell is not None else None
    cat = d.categories_by_code.get(category or "")
    group = cat.group if cat is not None else None
    same_group = group is not None and o.group == group
    same_circle = circle is not None and o.circle == circle
    dist = grid_distance(d, grid, o)
    order = (1, STATUS_ORDER[o.status], -int(same_group), -int(same_circle), o.load, dist)
    return Fit(same_group, same_circle, dist, order)


def partners_for(d: Deployment, category: str | None) -> list[Partner]:
    """The partner teams that take the category (they lead the order)."""
    return [p for p in d.partners if category and category in p.categories]
