"""The grid map and the squad panel as a wall display shows them: no cursor, no keys.

Same widgets, same data and drawing as the console's; only the parts a dispatcher drives are
taken away (focus, the cursor and its mark).
"""

from __future__ import annotations

from collections.abc import Sequence

from tafang.widgets.grid_map import GridMap
from tafang.widgets.rows import CellSpec
from tafang.widgets.squad_panel import SquadPanel
from tafang.widgets.words import Words


class StillMap(GridMap, can_focus=False):
    """The grid map without a cursor: every cell shaded by its open cases' worst light."""

    def __init__(self, cells: Sequence[CellSpec], *, words: Words | None = None, **kw: str) -> None:
        super().__init__(cells, words=words, **kw)
        self._cursor = None  # nothing to point at: no underline, no cursor line


class StillSquads(SquadPanel, can_focus=False):
    """The squad panel without a highlighted officer (the panel always picks one to point at)."""

    def _rebuild(self) -> None:
        super()._rebuild()
        self._cursor_code = None
