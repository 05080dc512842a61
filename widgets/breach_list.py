"""The wall's breached list: every case past its deadline, the most overdue first.

Plain data in (`BreachRow`s and the time), words handed in; no cursor, no keys. Titles come
from feeds and are drawn literally (sanitised, never parsed as markup). Time overdue grows by
the second, so the lines are rebuilt on each `set_rows` (a few dozen at most on a bad day).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from tafang.widgets.text import fit, safe, width_of
from textual.widget import Widget


@dataclass(frozen=True, slots=True)
class BreachRow:
    """One breached case. Text fields are untrusted: rendered literally."""

    case_id: int
    due: datetime  # the deadline it missed (aware UTC)
    stopped: datetime | None  # held: the clock stands still at this instant
    clock: str  # the stage's name, shown
    grid_label: str
    category: str
    title: str
    level: int  # escalation level, 0 grid … 4 centre
    level_name: str
    supervised: bool  # 督办


def overdue_text(seconds: float) -> str:
    """How long past the deadline: "0:42", "12:05", "3h07"."""
    s = max(int(seconds), 0)
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}h{s % 3600 // 60:02d}"


def most_overdue_first(rows: Sequence[BreachRow]) -> list[BreachRow]:
    """Earliest missed deadline first; on a tie the higher escalation, then the older case."""
    return sorted(rows, key=lambda r: (r.due, -r.level, r.case_id))


class BreachList(Widget):
    """The breached cases as lines: overdue by, stage, #id, cell, level, 督办, category, title."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "breach-list--overdue",
        "breach-list--level",
        "breach-list--supervised",
        "breach-list--muted",
        "breach-list--empty",
    }
    DEFAULT_CSS = """
    BreachList { height: 1fr; text-wrap: nowrap; text-overflow: ellipsis; }
    BreachList > .breach-list--overdue { color: $text-error; text-style: bold; }
    BreachList > .breach-list--level { color: $text-warning; }
    BreachList > .breach-list--supervised { color: $text; background: $error; text-style: bold; }
    BreachList > .breach-list--muted { color: $text-muted; }
    BreachList > .breach-list--empty { color: $text-success; }
    """

    def __init__(self, words: Mapping[str, str], **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.words = words
        self.rows: list[BreachRow] = []
        self.now: datetime | None = None

    def set_rows(self, rows: Sequence[BreachRow], now: datetime) -> None:
        """Show these breached cases as of `now` (sorted here: most overdue first)."""
        ordered = most_overdue_first(rows)
        if ordered == self.rows and now == self.now:
            return
        self.rows, self.now = ordered, now
        self.refresh()

    @property
    def lines_text(self) -> list[str]:
        """The list as plain text, one string a line (for tests and logs)."""
        return self._text(self.size.width or 120).plain.splitlines()

    def render(self) -> Text:
        return self._text(self.content_size.width)

    def _text(self, width: int) -> Text:
        style = self.get_component_rich_style
        out = Text(no_wrap=True, overflow="ellipsis")
        if not self.rows or self.now is None:
            out.append(self.words.get("none", ""), style=style("breach-list--empty"))
            return out
        shown = self.rows[: max(self.content_size.height, 1)] if self.is_mounted else self.rows
        clock_w = max(width_of(r.clock) for r in shown)  # stage names differ by language
        for n, r in enumerate(shown):
            if n:
                out.append("\n")
            self._line(out, r, width, clock_w)
        return out

    def _line(self, out: Text, r: BreachRow, width: int, clock_w: int) -> None:
        """One case: +overdue, stage, #id, cell, level, 督办, category (when wide), title."""
        style = self.get_component_rich_style
        flag = self.words.get("supervised", "S")
        flag_w = width_of(flag)
        late = ((r.stopped or self.now or r.due) - r.due).total_seconds()
        out.append(fit("+" + overdue_text(late), 7, "right") + " ", style("breach-list--overdue"))
        out.append(fit(r.clock, clock_w) + " " + fit(f"#{r.case_id}", 8) + fit(r.grid_label, 7))
        wide = width >= 80  # the level's name too, and the category when there is room
        level = f"L{r.level} {safe(r.level_name)}" if wide else f"L{r.level}"
        level_w = 14 if wide else 3
        out.append(fit(level, level_w - 1) + " ", style("breach-list--level") if r.level else "")
        if r.supervised:
            out.append(fit(flag, flag_w, sanitize=False), style("breach-list--supervised"))
        else:
            out.append(" " * flag_w)
        used = 8 + clock_w + 1 + 8 + 7 + level_w + flag_w + 1
        out.append(" ")
        if width - used >= 60:  # room for the category as well as a readable title
            out.append(fit(r.category, 12) + " ", style("breach-list--muted"))
            used += 13
        out.append(fit(r.title, max(width - used, 8)))
