"""The command palette (ctrl+p) in the UI language, and what it finds besides actions: case
numbers, officers and grid cells.

Textual's palette speaks English (`Search for commands…`, `No matches found`, its system
entries); here every word comes from the label catalogue. The providers build plain hits from
the app's state and deployment; choosing one runs an app method, nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from rich.align import Align
from rich.text import Text
from textual.command import CommandList, CommandPalette, Hit, Hits, Provider
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from tafang.console.app import TafangApp


class TafangPalette(CommandPalette):
    """Textual's palette with the placeholder and the no-match line in the UI language."""

    def __init__(self, placeholder: str, no_matches: str) -> None:
        super().__init__(placeholder=placeholder, id="--command-palette")
        self.no_matches = no_matches

    def _start_no_matches_countdown(self, search_value: str) -> None:
        self._stop_no_matches_countdown()

        def show() -> None:
            if search_value:  # searching for something, and nothing matched
                self.query_one(CommandList).add_option(
                    Option(
                        Align.center(Text(self.no_matches, style="not bold")),
                        disabled=True,
                        id=self._NO_MATCHES,
                    )
                )
                self._list_visible = True
            else:  # discover mode: nothing to discover is nothing to highlight
                self._list_visible = False

        self._no_matches_timer = self.set_timer(self._NO_MATCHES_COUNTDOWN, show)


def record_hits(app: TafangApp, query: str) -> Iterator[tuple[str, Callable[[], object]]]:
    """(text, run) for the case numbers, officers and cells a query names."""
    t, q = app.t, query.strip().lstrip("#")
    if q.isdigit():
        cid = int(q)
        known = app.state.cases.get(cid)
        title = f" {known.display_title}" if known is not None else ""
        yield f"{t('palette.case', id=cid)}{title}", partial(app.action_open, cid)
    if not q:
        return
    low = q.lower()
    for squad in app.d.squads:
        for o in squad.officers:
            if low in o.code.lower() or q in o.name:
                text = t("palette.officer", code=o.code, name=o.name)
                yield text, partial(app.show_officer, o.code)
    for g in app.d.tower.grids:
        if low in g.label.lower() or q in g.code:
            yield t("palette.cell", label=g.label), partial(app.show_cell, g.code)


class RecordCommands(Provider):
    """Case numbers, officers and cells, found by what the dispatcher types."""

    async def search(self, query: str) -> Hits:
        app: TafangApp = self.app  # type: ignore[assignment]
        matcher = self.matcher(query)
        for n, (text, run) in enumerate(_first(record_hits(app, query), 30)):
            score = max(matcher.match(text), 1.0 - n / 100)
            yield Hit(score, Text(text), run, text=text)


def _first(items: Iterable[tuple[str, Callable[[], object]]], n: int) -> list:  # type: ignore[type-arg]
    out = []
    for item in items:
        out.append(item)
        if len(out) >= n:
            break
    return out
