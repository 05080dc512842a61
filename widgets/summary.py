"""The summary line: officers free / out / on scene per squad and per case group, and the
partner teams, always on screen whatever the terminal size.

Entries never split across lines: they are packed to the width there is, one line on a wall,
two or three on an 80-column terminal (the widget is as high as its packing).
"""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from tafang.widgets.rows import Summary, SummaryEntry
from tafang.widgets.text import safe
from tafang.widgets.words import Words
from textual import events
from textual.widget import Widget

_Piece = list[tuple[str, str | None]]  # (text, component) runs that stay on one line


class SummaryLine(Widget):
    """Plain `Summary` data in; nothing out."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "summary-line--section",
        "summary-line--free",
        "summary-line--out",
        "summary-line--busy",
        "summary-line--muted",
    }

    DEFAULT_CSS = """
    SummaryLine { height: 1; background: $boost; padding: 0 1; }
    SummaryLine > .summary-line--section { text-style: bold; color: $text-accent; }
    SummaryLine > .summary-line--free { color: $text-success; text-style: bold; }
    SummaryLine > .summary-line--out { color: $text-warning; text-style: bold; }
    SummaryLine > .summary-line--busy { color: $text-primary; text-style: bold; }
    SummaryLine > .summary-line--muted { color: $text-muted; }
    """

    def __init__(
        self,
        *,
        words: Words | None = None,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.words = words or Words()
        self.summary: Summary | None = None

    def set_summary(self, summary: Summary) -> None:
        """New counts; a repeat is free (a change may change the packing: relayout)."""
        if summary == self.summary:
            return
        self.summary = summary
        self._fit_height()
        self.refresh()

    def on_resize(self, event: events.Resize) -> None:
        self._fit_height()

    def _fit_height(self) -> None:
        """As many lines as the packing needs at this width (set, not `auto`: an auto height
        measured before the first data arrived could stay behind the content)."""
        width = self.content_size.width
        if width <= 0:
            return
        lines = max(len(self.packed(width)), 1)
        if self.styles.height is None or self.styles.height.value != lines:
            self.styles.height = lines

    # Building ------------------------------------------------------------------------------
    def _entry(self, e: SummaryEntry) -> _Piece:
        return [
            (safe(e.name) + " ", None),
            (str(e.free), "free"),
            ("·", "muted"),
            (str(e.out), "out"),
            ("·", "muted"),
            (str(e.busy), "busy"),
        ]

    def pieces(self) -> list[_Piece]:
        """Every unit of the line, in order: section titles, entries, the legend."""
        s, w = self.summary, self.words
        if s is None:
            return []
        legend = w.summary_word("legend").split("·")
        out: list[_Piece] = []
        if len(legend) == 3:  # "闲·出·处" in the counts' own colours: the key to the digits
            out.append(
                [
                    (legend[0], "free"),
                    ("·", "muted"),
                    (legend[1], "out"),
                    ("·", "muted"),
                    (legend[2], "busy"),
                    (" │", "muted"),
                ]
            )
        out += [self._entry(e) for e in s.squads]
        out.append([("│ " + w.summary_word("groups"), "section")])
        out += [self._entry(e) for e in s.groups]
        if s.partners:
            out.append([("│ " + w.summary_word("partners"), "section")])
            out += [
                [(f"{safe(p.name)} {p.open_cases}/{p.handled_today}", None)] for p in s.partners
            ]
        return out

    def packed(self, width: int) -> list[_Piece]:
        """The pieces packed into lines of `width` cells, a space between two pieces."""
        lines: list[_Piece] = []
        line: _Piece = []
        used = 0
        for piece in self.pieces():
            size = sum(cell_len(t) for t, _ in piece)
            if line and used + 1 + size > width:
                lines.append(line)
                line, used = [], 0
            if line:
                line.append((" ", None))
                used += 1
            line.extend(piece)
            used += size
        if line:
            lines.append(line)
        return lines

    def render(self) -> Text:
        out = Text(no_wrap=True, overflow="ellipsis")
        for n, line in enumerate(self.packed(max(self.content_region.width, 1))):
            if n:
                out.append("\n")
            for text, component in line:
                style = (
                    self.get_component_rich_style(f"summary-line--{component}", partial=True)
                    if component
                    else Style()
                )
                out.append(text, style=style)
        return out
