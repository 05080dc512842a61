"""The case under the queue's cursor, beside the queue: clocks with their deadlines, the
latest record entries in plain words, reporter and place.

Plain data in (`CaseDetail`, built by the console), nothing out: the pane never reads the
store. Only the countdowns depend on the time; `tick` redraws when a clock runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from rich.cells import cell_len
from rich.style import Style
from rich.text import Text
from tafang.widgets.countdown import countdown
from tafang.widgets.rows import CaseDetail
from tafang.widgets.text import safe
from textual.widget import Widget


class DetailPane(Widget):
    """A few dozen words about one case; redrawn whole (it is small)."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "detail-pane--heading",
        "detail-pane--title",
        "detail-pane--label",
        "detail-pane--section",
        "detail-pane--ok",
        "detail-pane--at-risk",
        "detail-pane--breached",
        "detail-pane--none",
        "detail-pane--muted",
    }

    DEFAULT_CSS = """
    DetailPane { background: $surface; padding: 0 1; }
    DetailPane > .detail-pane--heading { text-style: bold; color: $text-accent; }
    DetailPane > .detail-pane--title { text-style: bold; }
    DetailPane > .detail-pane--label { color: $text-muted; }
    DetailPane > .detail-pane--section { text-style: bold underline; color: $text-primary; }
    DetailPane > .detail-pane--ok { color: $text-success; }
    DetailPane > .detail-pane--at-risk { color: $text-warning; text-style: bold; }
    DetailPane > .detail-pane--breached { color: $text-error; text-style: bold; }
    DetailPane > .detail-pane--none { color: $text-muted; }
    DetailPane > .detail-pane--muted { color: $text-muted; }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.detail: CaseDetail | None = None
        self.empty = ""
        self._now = datetime.now(UTC)

    def show(self, detail: CaseDetail | None, now: datetime) -> None:
        """Show a case (None: nothing under the cursor); a repeat of the same is free."""
        if detail == self.detail and now == self._now:
            return
        self.detail, self._now = detail, now
        self.refresh()

    def tick(self, now: datetime) -> None:
        """Advance the countdowns of running clocks (nothing to do when none runs)."""
        self._now = now
        d = self.detail
        if d is not None and d.held_at is None and any(c.due for c in d.clocks):
            self.refresh()

    def _style(self, component: str) -> Style:
        return self.get_component_rich_style(f"detail-pane--{component}", partial=True)

    def render(self) -> Text:
        """Heading, title, marks, clocks, the latest record, then the fields packed two or
        three to a line: what a dispatcher needs first stays in view on a small pane."""
        d = self.detail
        out = Text(no_wrap=False, overflow="fold")
        if d is None:
            out.append(self.empty, style=self._style("muted"))
            return out
        out.append(safe(d.heading) + "\n", style=self._style("heading"))
        out.append(safe(d.title) + "\n", style=self._style("title"))
        self._flags(out, d)
        at = d.held_at or self._now
        for c in sorted(d.clocks, key=lambda c: c.due is None):
            if c.due is None:
                out.append(safe(c.text) + "\n", style=self._style("none"))
                continue
            out.append(safe(c.text) + "  ")
            out.append(countdown(c.due, at) + "\n", style=self._style(c.light.replace("_", "-")))
        out.append(safe(d.timeline_title) + "\n", style=self._style("section"))
        for at_text, words in d.timeline:
            if at_text:
                out.append(at_text + " ", style=self._style("label"))
            out.append(safe(words) + "\n")
        self._fields(out, d)
        if d.hint:
            out.append(safe(d.hint), style=self._style("muted"))
        out.rstrip()
        return out

    def _flags(self, out: Text, d: CaseDetail) -> None:
        """The marks (督办, 待分拣, level, risk grid), each whole: folded, "风险点网格（3" and
        "个）" read as two marks."""
        marks = [[(safe(text), self._style(light.replace("_", "-")))] for text, light in d.flags]
        self._pack(out, marks)

    def _fields(self, out: Text, d: CaseDetail) -> None:
        """The (label, value) pairs."""
        label = self._style("label")
        self._pack(out, [[(safe(k) + " ", label), (safe(v), Style())] for k, v in d.fields])

    def _pack(self, out: Text, items: list[list[tuple[str, Style]]]) -> None:
        """Items two spaces apart, as many to a line as the width takes, none split."""
        width = max(self.content_region.width, 20)
        used = 0
        for parts in items:
            size = sum(cell_len(text) for text, _ in parts)
            if used and used + 2 + size > width:
                out.append("\n")
                used = 0
            if used:
                out.append("  ")
                used += 2
            for text, style in parts:
                out.append(text, style=style)
            used += size
        if used:
            out.append("\n")
