"""The squad panel: who is free, who is on the way, who is on scene, and the partner teams.

A few dozen lines, rebuilt only when `set_data` brings new data (or the width changes), then
served per line (`render_line`), so a one-second refresh of the dashboard costs nothing here.
Names come from config and are drawn literally all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from tafang.widgets.picked import Picked
from tafang.widgets.rows import OfficerRow, PartnerRow
from tafang.widgets.text import fit, safe, width_of
from tafang.widgets.words import Words
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

STATUSES = ("available", "en_route", "on_scene", "off_duty", "on_break")
OPTIONAL = frozenset({"on_break"})
"""Counted in a squad's line only when someone is (a break is short and rare)."""


def since_text(since: datetime, now: datetime) -> str:
    """Time in status, short: "0m", "12m", "2h05", "3d"."""
    s = max(int((now - since).total_seconds()), 0)
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}"
    return f"{s // 86400}d"


@dataclass(frozen=True, slots=True)
class _Line:
    kind: str  # heading | squad | officer | chips | title | partner
    segments: tuple[tuple[str, str | None], ...]  # (text, component) pairs, text already fitted
    officer: str | None = None
    owners: tuple[str | None, ...] = ()  # chips: the officer each segment shows

    def owner(self, n: int) -> str | None:
        """The officer segment `n` belongs to (a whole officer line: its officer)."""
        return self.owners[n] if self.owners else self.officer


CHIP_NAME = 6
"""Cells for an officer's name in the compact layout."""


class SquadPanel(ScrollView, can_focus=True):
    """Squads with their officers, then partner teams; a cursor over the officers.

    When one line per officer does not fit the panel's height, officers are packed as chips
    (code and name, coloured by status) beside their squad's name, so every squad shows."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "squad-panel--squad",
        "squad-panel--title",
        "squad-panel--cursor",
        "squad-panel--available",
        "squad-panel--en_route",
        "squad-panel--on_scene",
        "squad-panel--off_duty",
        "squad-panel--on_break",
        "squad-panel--muted",
        "squad-panel--heading",
    }

    DEFAULT_CSS = """
    SquadPanel { height: 1fr; background: $surface; }
    SquadPanel > .squad-panel--squad { color: $text; background: $panel; text-style: bold; }
    SquadPanel > .squad-panel--title { color: $text-accent; text-style: bold; }
    SquadPanel > .squad-panel--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    SquadPanel > .squad-panel--available { color: $text-success; }
    SquadPanel > .squad-panel--en_route { color: $text-warning; text-style: bold; }
    SquadPanel > .squad-panel--on_scene { color: $text-primary; text-style: bold; }
    SquadPanel > .squad-panel--off_duty { color: $text-disabled; }
    SquadPanel > .squad-panel--on_break { color: $text-muted; text-style: italic; }
    SquadPanel > .squad-panel--muted { color: $text-muted; }
    SquadPanel > .squad-panel--heading { color: $text-muted; text-style: bold; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False, id="squads.up"),
        Binding("down", "cursor(1)", "Down", show=False, id="squads.down"),
        Binding("home", "first", "First", show=False, id="squads.first"),
        Binding("end", "last", "Last", show=False, id="squads.last"),
        Binding("enter", "choose", "Choose", show=False, id="squads.choose"),
    ]

    class OfficerHighlighted(Picked[str]):
        """The cursor moved onto another officer (`code`)."""

        @property
        def code(self) -> str:
            return self.value

    class OfficerChosen(Picked[str]):
        """Enter on an officer (`code`)."""

        @property
        def code(self) -> str:
            return self.value

    def __init__(
        self,
        *,
        lang: str = "zh",
        words: Words | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.lang = lang  # column widths
        self.words = words or Words()
        self._officers: list[OfficerRow] = []
        self._partners: list[PartnerRow] = []
        self._now = datetime.now(UTC)
        self._lines: list[_Line] = []
        self._officer_lines: list[int] = []  # line index of each officer, in display order
        self._officer_codes: list[str] = []  # the officers, in display order
        self.compact = False  # officers packed as chips (the panel is too low for a line each)
        self._cursor_code: str | None = None
        self._data_key: tuple[object, ...] | None = None

    # Public API ------------------------------------------------------------------------
    @property
    def cursor_code(self) -> str | None:
        """The officer under the cursor."""
        return self._cursor_code

    @property
    def lines_text(self) -> list[str]:
        """The panel as plain text, one string a line (for tests and logs)."""
        return ["".join(t for t, _ in line.segments) for line in self._lines]

    def set_data(
        self, officers: Sequence[OfficerRow], partners: Sequence[PartnerRow], now: datetime
    ) -> None:
        """Show new data; a no-op when nothing visible changed (same rows, same minutes)."""
        key = (tuple(officers), tuple(partners), int(now.timestamp()) // 60)
        if key == self._data_key:
            return
        self._data_key = key
        self._officers, self._partners, self._now = list(officers), list(partners), now
        self._rebuild()

    def select_officer(self, code: str) -> bool:
        """Put the cursor on an officer; False if not shown."""
        if code not in self._officer_codes:
            return False
        self._move(self._officer_codes.index(code))
        return True

    # Building --------------------------------------------------------------------------
    def _squads(self) -> tuple[dict[str, list[OfficerRow]], dict[str, str]]:
        squads: dict[str, list[OfficerRow]] = {}
        names: dict[str, str] = {}
        for o in self._officers:
            squads.setdefault(o.squad, []).append(o)
            names.setdefault(o.squad, o.squad_name)
        return squads, names

    def _agency_width(self) -> int:
        """The agency column: as wide as its longest label in the UI language, or its title
        (`emergency` is 9 cells in English; a fixed 8 cut it to `emergen…`)."""
        labels = [safe(o.agency) for o in self._officers] + [self.words.column("agency")]
        return max(width_of(s) for s in labels)

    def _heading(self, width: int) -> _Line:
        """Column titles over the officer lines (the time column says what it counts)."""
        w = self.words
        text = " " + fit(w.column("officer"), 15)
        text += " " + fit(w.column("agency"), self._agency_width())
        text += " " + fit(w.column("status"), 8 if self.lang == "zh" else 9)
        text += " " + fit(w.column("on_case"), 7) + " " + fit(w.column("since"), 5, "right")
        return _Line("heading", ((fit(text, width, sanitize=False), "heading"),))

    def _full_lines(self, width: int) -> list[_Line]:
        """One line per officer under a squad line with its counts, then partner teams."""
        words = self.words
        squads, names = self._squads()
        lines: list[_Line] = [self._heading(width)] if squads else []
        agency_w = self._agency_width()
        for squad, members in squads.items():
            counts = {s: sum(1 for o in members if o.status == s) for s in STATUSES}
            summary = " · ".join(
                f"{words.officer_count(s)} {counts[s]}"
                for s in STATUSES
                if counts[s] or s not in OPTIONAL
            )
            text = fit(f"{safe(names[squad])}  {summary}", width, sanitize=False)
            lines.append(_Line("squad", ((text, "squad"),)))
            for o in members:
                case = f"#{o.case_id}" if o.case_id is not None else ""
                segs: list[tuple[str, str | None]] = [
                    (" " + fit(o.code, 6), "muted"),
                    (" " + fit(o.name, 8), None),
                    (" " + fit(o.agency, agency_w), "muted"),
                    (" " + fit(o.status_label, 8 if self.lang == "zh" else 9), o.status),
                    (" " + fit(case, 7), None),
                    (" " + fit(since_text(o.since, self._now), 5, "right"), "muted"),
                ]
                used = sum(width_of(t) for t, _ in segs)
                if used < width:
                    segs.append((" " * (width - used), None))
                lines.append(_Line("officer", tuple(segs), o.code))
        if self._partners:
            lines.append(_Line("title", ((fit(words.partners_title, width), "title"),)))
            for p in self._partners:
                detail = words.partner_detail.format(open=p.open_cases, handled=p.handled_today)
                text = " " + fit(p.name, 12) + " " + detail
                lines.append(_Line("partner", ((fit(text, width, sanitize=False), None),)))
        return lines

    def _compact_lines(self, width: int) -> list[_Line]:
        """Each squad's name, then its officers as chips ("1-06 杨帆"), coloured by status;
        the counts and partner teams are on the summary line."""
        squads, names = self._squads()
        head = max((width_of(safe(n)) for n in names.values()), default=0) + 1
        chip = max((width_of(o.code) for o in self._officers), default=4) + 1 + CHIP_NAME
        per_line = max((width - head) // (chip + 1), 1)
        lines: list[_Line] = []
        for squad, members in squads.items():
            for start in range(0, len(members), per_line):
                label = fit(safe(names[squad]), head - 1, sanitize=False) if start == 0 else ""
                segs: list[tuple[str, str | None]] = [(fit(label, head, sanitize=False), "squad")]
                owners: list[str | None] = [None]
                for o in members[start : start + per_line]:
                    text = fit(f"{o.code} {o.name}", chip)
                    segs += [(text, o.status), (" ", None)]
                    owners += [o.code, None]
                lines.append(_Line("chips", tuple(segs), owners=tuple(owners)))
        return lines

    def _rebuild(self) -> None:
        width = max(self.scrollable_content_region.width, 40)
        lines = self._full_lines(width)
        height = self.scrollable_content_region.height
        self.compact = bool(height) and len(lines) > height
        if self.compact:
            lines = self._compact_lines(width)
        self._lines = lines
        self._officer_lines, self._officer_codes = [], []
        for i, line in enumerate(lines):
            for n in range(len(line.segments)):
                code = line.owner(n)
                if code is not None and code not in self._officer_codes[-1:]:
                    self._officer_lines.append(i)
                    self._officer_codes.append(code)
        old = self._cursor_code
        if old not in self._officer_codes:
            self._cursor_code = self._officer_codes[0] if self._officer_codes else None
        line_width = max((sum(width_of(t) for t, _ in ln.segments) for ln in lines), default=0)
        self.virtual_size = Size(line_width, len(lines))
        self.refresh()
        if self._cursor_code is not None and self._cursor_code != old:
            self.post_message(self.OfficerHighlighted(self, self._cursor_code))

    def on_resize(self, event: events.Resize) -> None:
        if self._data_key is not None:
            self._rebuild()

    # Cursor ------------------------------------------------------------------------------
    def _cursor_pos(self) -> int:
        code = self._cursor_code
        return self._officer_codes.index(code) if code in self._officer_codes else 0

    def _move(self, pos: int) -> None:
        if not self._officer_lines:
            return
        pos = max(0, min(pos, len(self._officer_lines) - 1))
        line = self._officer_lines[pos]
        code = self._officer_codes[pos]
        # Show the squad header (and the column titles) above the first officer too.
        above = line - 1 if line and self._lines[line - 1].kind == "squad" else line
        top = 0 if pos == 0 else above
        if not self.is_mounted:
            pass
        elif top < self.scroll_offset.y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif line >= self.scroll_offset.y + self.scrollable_content_region.height:
            y = line - self.scrollable_content_region.height + 1
            self.scroll_to(y=y, animate=False, immediate=True)
        self.refresh()
        if code != self._cursor_code and code is not None:
            self._cursor_code = code
            self.post_message(self.OfficerHighlighted(self, code))

    def action_cursor(self, step: int) -> None:
        self._move(self._cursor_pos() + step)

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self._officer_lines) - 1)

    def action_choose(self) -> None:
        if self._cursor_code is not None:
            self.post_message(self.OfficerChosen(self, self._cursor_code))

    def on_click(self, event: events.Click) -> None:
        index = int(self.scroll_offset.y) + event.y
        if index in self._officer_lines and not self.compact:
            self._move(self._officer_lines.index(index))
            if event.chain >= 2:
                self.action_choose()

    # Rendering ---------------------------------------------------------------------------
    def _style(self, component: str) -> Style:
        return self.get_component_rich_style(f"squad-panel--{component}", partial=True)

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        base = self.rich_style
        index = scroll_y + y
        if index >= len(self._lines):
            return Strip.blank(width, base)
        line = self._lines[index]
        cursor = self._style("cursor") if self.has_focus else Style(reverse=True)
        segments = []
        for n, (text, component) in enumerate(line.segments):
            style = base + self._style(component) if component else base
            owner = line.owner(n)
            if owner is not None and owner == self._cursor_code:
                style += cursor
            segments.append(Segment(text, style))
        return Strip(segments).crop_extend(scroll_x, scroll_x + width, base)

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
