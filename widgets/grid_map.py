"""The grid map: every cell of the deployment where the config places it, lit by its cases.

Each cell is one short line segment ("N3-07 2": the label, then the open-case count in its
own colour, a space between them when the cell is wide enough, `•` when officers are in the
cell), shaded by the worst SLA state of its open cases; circles alternate background so their
borders show; an empty row between the north and south halves is drawn as the road that
splits them (文三西路 in Gudang). Below the map: the cell under the cursor with its circle,
then the legend. Positions, labels and names are all data (`CellSpec`), never code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from tafang.widgets.picked import Picked
from tafang.widgets.rows import CellSpec, CellState
from tafang.widgets.text import fit, safe, width_of
from tafang.widgets.words import Words
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size, Spacing
from textual.scroll_view import ScrollView
from textual.strip import Strip

MIN_CELL_WIDTH = 6
MAX_CELL_WIDTH = 9
_FOOTER = 2  # the cursor cell's line and the legend
_PALETTE = 3  # alternating circle backgrounds


def _circle_colours(cells: Sequence[CellSpec]) -> dict[str, int]:
    """Greedy colouring of the circle adjacency graph, so neighbouring circles differ."""
    at = {(c.row, c.col): c.circle for c in cells}
    neighbours: dict[str, set[str]] = {c.circle: set() for c in cells}
    for (r, c), circle in at.items():
        for dr, dc in ((0, 1), (1, 0), (0, -1), (-1, 0)):
            other = at.get((r + dr, c + dc))
            if other is not None and other != circle:
                neighbours[circle].add(other)
    colours: dict[str, int] = {}
    for circle in neighbours:  # config order
        used = {colours[n] for n in neighbours[circle] if n in colours}
        colours[circle] = next((i for i in range(_PALETTE) if i not in used), 0)
    return colours


class GridMap(ScrollView, can_focus=True):
    """Map of grid cells with a keyboard cursor; `CellSpec`s and `CellState`s in, messages out."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "grid-map--circle-0",
        "grid-map--circle-1",
        "grid-map--circle-2",
        "grid-map--none",
        "grid-map--ok",
        "grid-map--at-risk",
        "grid-map--breached",
        "grid-map--officers",
        "grid-map--marked",
        "grid-map--cursor",
        "grid-map--road",
        "grid-map--info",
        "grid-map--count",
        "grid-map--marker",
    }

    DEFAULT_CSS = """
    GridMap {
        height: auto;
        max-height: 100%;
        background: $surface;
    }
    GridMap > .grid-map--circle-0 { background: $surface-lighten-1; }
    GridMap > .grid-map--circle-1 { background: $panel; }
    GridMap > .grid-map--circle-2 { background: $boost; }
    GridMap > .grid-map--none { color: $text-disabled; }
    GridMap > .grid-map--ok { color: $text; background: $success-muted; text-style: bold; }
    GridMap > .grid-map--at-risk { color: $text; background: $warning-muted; text-style: bold; }
    GridMap > .grid-map--breached { color: $text; background: $error; text-style: bold; }
    GridMap > .grid-map--officers { text-style: underline; }
    GridMap > .grid-map--marked { text-style: bold reverse; }
    GridMap > .grid-map--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    GridMap > .grid-map--road { color: $text-muted; }
    GridMap > .grid-map--info { color: $text-muted; }
    GridMap > .grid-map--count { text-style: bold reverse; }
    GridMap > .grid-map--marker { color: $warning; text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move(-1, 0)", "Up", show=False, id="map.up"),
        Binding("down", "move(1, 0)", "Down", show=False, id="map.down"),
        Binding("left", "move(0, -1)", "Left", show=False, id="map.left"),
        Binding("right", "move(0, 1)", "Right", show=False, id="map.right"),
        Binding("enter", "choose", "Choose", show=False, id="map.choose"),
    ]

    class CellHighlighted(Picked[str]):
        """The cursor moved onto another cell (`grid_code`)."""

        @property
        def grid_code(self) -> str:
            return self.value

    class CellChosen(Picked[str]):
        """Enter on a cell (`grid_code`), e.g. to filter the queue to it."""

        @property
        def grid_code(self) -> str:
            return self.value

    def __init__(
        self,
        cells: Sequence[CellSpec],
        *,
        divider_label: str = "",
        words: Words | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.cells: tuple[CellSpec, ...] = tuple(cells)
        self.divider_label = divider_label
        self.words = words or Words()
        self._by_code = {c.code: c for c in self.cells}
        self._at = {(c.row, c.col): c for c in self.cells}
        self._rows = max((c.row for c in self.cells), default=-1) + 1
        self._cols = max((c.col for c in self.cells), default=-1) + 1
        self._colour = _circle_colours(self.cells)
        self._roads = self._road_rows()
        self._states: dict[str, CellState] = {}
        self._marked: str | None = None
        self._markers: dict[str, str] | None = None  # a layer: per-cell marker text
        self._layer_legend = ""
        first = min(self.cells, key=lambda c: (c.row, c.col), default=None)
        self._cursor: str | None = first.code if first else None

    # Public API ------------------------------------------------------------------------
    @property
    def cursor_code(self) -> str | None:
        """The grid cell under the keyboard cursor."""
        return self._cursor

    @property
    def marked(self) -> str | None:
        """The cell of the selected case, if any."""
        return self._marked

    def set_state(self, states: Mapping[str, CellState]) -> None:
        """Replace the live state of the cells (cells not named show as empty)."""
        self._states = dict(states)
        self.refresh()

    def set_markers(self, markers: Mapping[str, str] | None, legend: str = "") -> None:
        """Show a layer: each named cell's marker (e.g. "3") in place of its case count,
        `legend` in place of the map's; None hides the layer (the counts show again)."""
        self._markers = dict(markers) if markers is not None else None
        self._layer_legend = legend if markers is not None else ""
        self.refresh()

    @property
    def markers_shown(self) -> bool:
        return self._markers is not None

    def mark(self, grid_code: str | None) -> None:
        """Mark the selected case's cell (None: no mark)."""
        if grid_code != self._marked:
            self._marked = grid_code if grid_code in self._by_code else None
            self.refresh()

    def move_cursor(self, grid_code: str) -> bool:
        """Put the keyboard cursor on a cell; False for an unknown code."""
        if grid_code not in self._by_code:
            return False
        self._set_cursor(grid_code)
        return True

    # Geometry --------------------------------------------------------------------------
    def _road_rows(self) -> set[int]:
        """Empty rows with north cells above and south cells below: the dividing road."""
        north = [c.row for c in self.cells if c.half == "north"]
        south = [c.row for c in self.cells if c.half == "south"]
        if not north or not south:
            return set()
        used = {c.row for c in self.cells}
        return {r for r in range(max(north) + 1, min(south)) if r not in used}

    @property
    def cell_width(self) -> int:
        """Cells grow from 6 to 8 terminal cells wide when there is room."""
        if not self._cols:
            return MIN_CELL_WIDTH
        avail = self.scrollable_content_region.width or self.size.width
        return max(MIN_CELL_WIDTH, min(MAX_CELL_WIDTH, avail // self._cols))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return self._rows + _FOOTER

    def on_mount(self) -> None:
        self._update_virtual_size()

    def on_resize(self, event: events.Resize) -> None:
        self._update_virtual_size()

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self._cols * self.cell_width, self._rows + _FOOTER)

    def _cell_region(self, spec: CellSpec) -> Region:
        w = self.cell_width
        return Region(spec.col * w, spec.row, w, 1)

    # Cursor ------------------------------------------------------------------------------
    def _set_cursor(self, code: str) -> None:
        if code == self._cursor:
            return
        self._cursor = code
        if self.is_mounted:
            self.scroll_to_region(
                self._cell_region(self._by_code[code]),
                animate=False,
                force=True,
                immediate=True,
                spacing=Spacing(bottom=_FOOTER),  # the info line and the legend
            )
        self.refresh()
        self.post_message(self.CellHighlighted(self, code))

    def nearest(self, code: str, drow: int, dcol: int) -> str | None:
        """The nearest cell from `code` in a direction: along it first, then least sideways."""
        here = self._by_code[code]
        best: tuple[int, int, int, int] | None = None
        found: str | None = None
        for c in self.cells:
            along = (c.row - here.row) * drow + (c.col - here.col) * dcol
            if along <= 0:
                continue
            side = abs((c.row - here.row) * dcol) + abs((c.col - here.col) * drow)
            score = (along + 2 * side, side, c.row, c.col)
            if best is None or score < best:
                best, found = score, c.code
        return found

    def action_move(self, drow: int, dcol: int) -> None:
        if self._cursor is None:
            return
        target = self.nearest(self._cursor, drow, dcol)
        if target is not None:
            self._set_cursor(target)

    def action_choose(self) -> None:
        if self._cursor is not None:
            self.post_message(self.CellChosen(self, self._cursor))

    def on_click(self, event: events.Click) -> None:
        x = int(self.scroll_offset.x) + event.x
        y = int(self.scroll_offset.y) + event.y
        spec = self._at.get((y, x // self.cell_width))
        if spec is not None:
            self._set_cursor(spec.code)
            if event.chain >= 2:
                self.action_choose()

    # Rendering ---------------------------------------------------------------------------
    def _style(self, component: str) -> Style:
        return self.get_component_rich_style(f"grid-map--{component}", partial=True)

    def _cell_text(self, spec: CellSpec, state: CellState | None, w: int) -> tuple[str, str, str]:
        """(label, mark, pad): the mark is the count (`+` from ten) and `•` for officers,
        after a space when the cell has room, so `N2-01 1` never reads as another code;
        where no space fits, the mark's own colour sets it apart."""
        count = state.open_cases if state else 0
        officers = state.officers if state else 0
        digit = "" if count <= 0 else (str(count) if count < 10 else "+")
        if self._markers is not None:  # a layer replaces the counts
            digit, officers = safe(self._markers.get(spec.code, "")), 0
        label = safe(spec.label)
        mark = digit + ("•" if officers else "")
        if width_of(label) + 1 + len(mark) > w and digit:
            mark = digit  # officers still show, underlined
        gap = " " if mark and width_of(label) + 1 + len(mark) <= w else ""
        room = max(w - len(mark) - len(gap), 1)
        if width_of(label) > room:
            label = fit(label, room, sanitize=False)
        pad = " " * max(w - width_of(label) - len(gap) - len(mark), 0)
        return label + gap, mark, pad

    def _cell_segments(self, spec: CellSpec, w: int, base: Style) -> list[Segment]:
        state = self._states.get(spec.code)
        worst = state.worst if state and state.open_cases > 0 else "none"
        style = base + self._style(f"circle-{self._colour.get(spec.circle, 0)}")
        style += self._style(worst.replace("_", "-"))
        if state and state.officers > 0:
            style += self._style("officers")
        if spec.code == self._marked:
            style += self._style("marked")
        if spec.code == self._cursor and self.has_focus:
            style += self._style("cursor")
        elif spec.code == self._cursor:
            style += Style(underline=True)
        label, mark, pad = self._cell_text(spec, state, w)
        segments = [Segment(label, style)]
        if mark:
            kind = "count" if self._markers is None else "marker"
            segments.append(Segment(mark, style + self._style(kind)))
        if pad:
            segments.append(Segment(pad, style))
        return segments

    def _map_line(self, row: int, base: Style) -> Strip:
        w = self.cell_width
        total = w * self._cols
        if row in self._roads:
            label = f" {safe(self.divider_label)} " if self.divider_label else ""
            side = max(total - width_of(label), 0)
            text = "━" * (side // 2) + label + "━" * (side - side // 2)
            return Strip([Segment(fit(text, total, sanitize=False), base + self._style("road"))])
        segments: list[Segment] = []
        blank = Segment(" " * w, base)
        for col in range(self._cols):
            spec = self._at.get((row, col))
            if spec is None:
                segments.append(blank)
            else:
                segments.extend(self._cell_segments(spec, w, base))
        return Strip(segments)

    def _info_line(self, base: Style) -> Strip:
        spec = self._by_code.get(self._cursor or "")
        if spec is None:
            return Strip([])
        state = self._states.get(spec.code)
        worst = state.worst if state and state.open_cases > 0 else "none"
        count = state.open_cases if state else 0
        officers = state.officers if state else 0
        detail = self.words.cell_detail.format(
            count=count, state=self.words.sla_state(worst), officers=officers
        )
        text = f"{safe(spec.label)} {safe(spec.circle_name)} · {detail}"
        return Strip([Segment(text, base + self._style("info"))])

    def _legend_line(self, base: Style) -> Strip:
        """What the digits, `•` and the colours mean (colours named by the SLA words)."""
        legend = self._layer_legend or self.words.map_legend
        segments = [Segment(safe(legend) + "  ", base + self._style("info"))]
        for state in ("ok", "at_risk", "breached"):
            segments.append(
                Segment(
                    f" {safe(self.words.sla_state(state))} ",
                    base + self._style(state.replace("_", "-")),
                )
            )
            segments.append(Segment(" ", base))
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        row = scroll_y + y
        last = min(self.scrollable_content_region.height, self._rows + _FOOTER) - 1
        if y == last:
            return self._legend_line(base).crop_extend(0, width, base)
        if y == last - 1:
            return self._info_line(base).crop_extend(0, width, base)
        if row >= self._rows:
            return Strip.blank(width, base)
        return self._map_line(row, base).crop_extend(scroll_x, scroll_x + width, base)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
