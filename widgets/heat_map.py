"""The grid as a heat map: each cell where the map puts it, shaded by its count of cases over
a period (five shades from the busiest cell down), its label and count inside.

Plain data in (`CellSpec` list, then `set_counts`), `CellChosen` out when a cell is picked
with the cursor (arrows) and enter, or clicked. Knows nothing of the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from tafang.widgets.picked import Picked
from tafang.widgets.rows import CellSpec
from textual import events
from textual.binding import Binding, BindingType
from textual.widget import Widget

SHADES = ("#1f2a36", "#24476b", "#2b6cb0", "#d69e2e", "#e53e3e")
"""No cases, then four shades by the share of the busiest cell's count."""
CELL_W = 9


class HeatMap(Widget, can_focus=True):
    """Cells in their rows and columns; the cursor's cell is underlined."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1, 0)", show=False),
        Binding("down", "move(1, 0)", show=False),
        Binding("left", "move(0, -1)", show=False),
        Binding("right", "move(0, 1)", show=False),
        Binding("enter", "choose", show=False),
    ]

    class CellChosen(Picked[str]):
        """A cell was picked: `value` is its grid code."""

    def __init__(self, cells: Sequence[CellSpec], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.cells = list(cells)
        self.at = {(c.row, c.col): c for c in self.cells}
        self.counts: dict[str, int] = {}
        first = min(self.cells, key=lambda c: (c.row, c.col)) if self.cells else None
        self.cursor: tuple[int, int] | None = (first.row, first.col) if first else None

    def set_counts(self, counts: Mapping[str, int]) -> None:
        self.counts = dict(counts)
        self.refresh()

    def shade(self, n: int, top: int) -> str:
        if n <= 0 or top <= 0:
            return SHADES[0]
        return SHADES[min(4, 1 + (4 * n - 1) // top)]

    def render(self) -> Text:
        out = Text()
        if not self.cells:
            return out
        rows = max(c.row for c in self.cells) + 1
        cols = max(c.col for c in self.cells) + 1
        top = max(self.counts.values(), default=0)
        for r in range(rows):
            for col in range(cols):
                spec = self.at.get((r, col))
                if spec is None:
                    out.append(" " * CELL_W)
                    continue
                n = self.counts.get(spec.code, 0)
                style = Style(bgcolor=self.shade(n, top), color="white")
                if (r, col) == self.cursor:
                    style += Style(underline=True, bold=True)
                out.append(f"{spec.label:<5}{n:>3}"[: CELL_W - 1].ljust(CELL_W - 1), style)
                out.append(" ")
            out.append("\n")
        return out

    def get_content_width(self, container: object, viewport: object) -> int:
        return (max((c.col for c in self.cells), default=0) + 1) * CELL_W

    def get_content_height(self, container: object, viewport: object, width: int) -> int:
        return max((c.row for c in self.cells), default=0) + 1

    def action_move(self, drow: int, dcol: int) -> None:
        if self.cursor is None:
            return
        r, c = self.cursor
        for step in range(1, 20):
            nxt = (r + drow * step, c + dcol * step)
            if nxt in self.at:
                self.cursor = nxt
                self.refresh()
                return

    def action_choose(self) -> None:
        if self.cursor is not None and self.cursor in self.at:
            self.post_message(self.CellChosen(self, self.at[self.cursor].code))

    def on_click(self, event: events.Click) -> None:
        key = (event.y, event.x // CELL_W)
        if key in self.at:
            self.cursor = key
            self.refresh()
            self.action_choose()


def counts_text(counts: Mapping[str, int], labels: Mapping[str, str]) -> str:
    """The busiest cells as one line ("N3-11 261 · S2-07 256 …"), for a narrow terminal."""
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:5]
    return " · ".join(f"{labels.get(k, k)} {v}" for k, v in top)
