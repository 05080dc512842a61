"""`k`: statistics and assessment (数据决策 · 人员考核) over the last 7, 30 or 365 days.

The grid as a heat map of cases, the daily trend as a Sparkline, the squads and officers as a
league table with their rates and denominators; enter on a cell or a row lists its cases,
enter on one of those opens it. Everything is read by a thread worker (sla/meeting.py and
store/assessment.py hold the figures and their definitions); the screen only shows them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from tafang.console.i18n import Strings
from tafang.sla.meeting import Inputs, inputs_for, trend
from tafang.store.assessment import CaseLine, Rate, cases_behind
from tafang.store.cases import Store
from tafang.store.config import Deployment
from tafang.widgets.heat_map import HeatMap
from tafang.widgets.rows import CellSpec
from tafang.widgets.text import safe
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Sparkline, Static

PERIODS = (30, 7, 365)
RATES_SHOWN = ("respond", "dispatch", "arrive", "handled_on_time", "closed", "reworked")


@dataclass(frozen=True, slots=True)
class LeagueRow:
    kind: str  # squad | officer
    code: str
    name: str
    cases: int
    rates: dict[str, Rate]
    assignees: tuple[str, ...]  # whose cases these are (a squad: itself and its officers)


@dataclass(frozen=True, slots=True)
class Stats:
    """What the screen shows, read in one go by a worker."""

    days: int
    start: datetime
    end: datetime
    cases: int
    rates: dict[str, Rate]
    by_grid: dict[str, int]
    daily: list[float]
    league: list[LeagueRow]


def read_stats(store: Store, d: Deployment, now: datetime, days: int) -> Stats:
    tz = ZoneInfo(d.timezone)
    today = now.astimezone(tz).date()
    i = inputs_for(store, d, "range", start=today - timedelta(days=days - 1), end=today, now=now)
    a = i.assessment
    return Stats(
        days,
        i.start,
        i.end,
        a.total.cases,
        a.total.rates,
        dict(a.overview.by_grid),
        _daily(i),
        _league(i, d),
    )


def _daily(i: Inputs) -> list[float]:
    section = trend(i)
    return [] if section is None else [float(r[1] or 0) for r in section.tables[0].rows]  # type: ignore[arg-type]


def _league(i: Inputs, d: Deployment) -> list[LeagueRow]:
    by = i.assessment.by
    out: list[LeagueRow] = []
    for s in d.squads:
        t = by["squad"].get(s.code)
        if t is not None:
            who = (s.code, *(o.code for o in s.officers))
            out.append(LeagueRow("squad", s.code, s.name, t.cases, t.rates, who))
    officers = sorted(by["officer"].items(), key=lambda kv: (-kv[1].cases, kv[0]))
    for code, t in officers:
        so = d.officers_by_code.get(code)
        name = so[1].name if so else code
        out.append(LeagueRow("officer", code, name, t.cases, t.rates, (code,)))
    return out


def pct(r: Rate) -> str:
    return f"{100 * r.met / r.due:.1f}% {r.met}/{r.due}" if r.due else "-"


class StatsScreen(Screen[None]):
    """Heat map, trend, league table; drill down to cases."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="stats.back"),
        Binding("p", "period", "Period", id="stats.period"),
    ]
    DEFAULT_CSS = """
    StatsScreen { layout: vertical; }
    #stats-head { height: auto; padding: 0 1; background: $panel; }
    #stats-top { height: auto; }
    #stats-heatbox { width: auto; height: auto; }
    #stats-heat { width: auto; height: auto; margin: 0 1; }
    #stats-side { width: 1fr; height: auto; }
    #stats-spark { height: 4; margin: 0 1; }
    #stats-league { height: 1fr; }
    .stats-label { padding: 0 1; color: $text-muted; }
    """

    def __init__(
        self, store: Store, d: Deployment, t: Strings, now: Any, cells: list[CellSpec]
    ) -> None:
        super().__init__()
        self.store, self.d, self.t, self.now = store, d, t, now
        self.cells = cells
        self.days = PERIODS[0]
        self.stats: Stats | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.t("assess.loading"), id="stats-head")
        with Horizontal(id="stats-top"):
            with Vertical(id="stats-heatbox", classes="stats-box"):
                yield Static(self.t("assess.heat"), classes="stats-label")
                yield HeatMap(self.cells, id="stats-heat")
            with Vertical(id="stats-side"):
                yield Static(self.t("assess.trend"), classes="stats-label")
                yield Sparkline([], id="stats-spark")
                yield Static(self.t("assess.hint"), classes="stats-label", id="stats-hint")
        yield Static(self.t("assess.league"), classes="stats-label")
        yield DataTable(id="stats-league", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#stats-league", DataTable)
        table.add_columns("", self.t("assess.cases"), *(self.t(f"assess.{r}") for r in RATES_SHOWN))
        self.load()
        table.focus()

    @work(thread=True, exclusive=True, group="stats", exit_on_error=False)
    def load(self) -> None:
        stats = read_stats(self.store, self.d, self.now(), self.days)
        self.app.call_from_thread(self.show, stats)

    def show(self, s: Stats) -> None:
        self.stats = s
        tz = ZoneInfo(self.d.timezone)
        last = (s.end - timedelta(seconds=1)).astimezone(tz)
        head = (
            f"{self.t('assess.stats_title')} · {self.t('assess.period', n=s.days)} "
            f"({s.start.astimezone(tz):%Y-%m-%d} – {last:%Y-%m-%d}) · "
            f"{self.t('assess.cases')} {s.cases} · "
            + " · ".join(f"{self.t(f'assess.{r}')} {pct(s.rates[r])}" for r in RATES_SHOWN[:5])
        )
        self.query_one("#stats-head", Static).update(head)
        self.query_one("#stats-heat", HeatMap).set_counts(s.by_grid)
        self.query_one("#stats-spark", Sparkline).data = s.daily
        table = self.query_one("#stats-league", DataTable)
        table.clear()
        for n, row in enumerate(s.league):
            kind = self.t(f"assess.kind_{row.kind}")
            label = f"{kind} {row.code} {safe(row.name)}"
            cells = [pct(row.rates[r]) for r in RATES_SHOWN]
            table.add_row(label, str(row.cases), *cells, key=str(n))

    def action_period(self) -> None:
        self.days = PERIODS[(PERIODS.index(self.days) + 1) % len(PERIODS)]
        self.query_one("#stats-head", Static).update(self.t("assess.loading"))
        self.load()

    def action_close(self) -> None:
        self.dismiss()

    @on(DataTable.RowSelected, "#stats-league")
    def _row(self, event: DataTable.RowSelected) -> None:
        if self.stats is None or event.row_key.value is None:
            return
        row = self.stats.league[int(event.row_key.value)]
        self.drill(f"{row.code} {safe(row.name)}", assignees=row.assignees)

    @on(HeatMap.CellChosen)
    def _cell(self, event: HeatMap.CellChosen) -> None:
        g = self.d.grids_by_code.get(event.value)
        self.drill(g.label if g else event.value, grids=(event.value,))

    @work(thread=True, group="drill", exit_on_error=False)
    def drill(
        self, what: str, assignees: tuple[str, ...] = (), grids: tuple[str, ...] = ()
    ) -> None:
        if self.stats is None:
            return
        s = self.stats
        lines = cases_behind(self.store, s.start, s.end, assignees=assignees, grids=grids)
        self.app.call_from_thread(
            self.app.push_screen,
            CasesScreen(self.t("assess.drill", what=what, n=len(lines)), lines, self.d, self.t),
        )


class CasesScreen(Screen[None]):
    """The cases behind a figure; enter opens one (the console's own case screen)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="stats.cases.back")
    ]
    DEFAULT_CSS = """
    CasesScreen #cases-head { height: auto; padding: 0 1; background: $panel; }
    CasesScreen DataTable { height: 1fr; }
    """

    def __init__(self, title: str, lines: list[CaseLine], d: Deployment, t: Strings) -> None:
        super().__init__()
        self.title_text, self.lines, self.d, self.t = title, lines, d, t

    def compose(self) -> ComposeResult:
        yield Static(self.title_text, id="cases-head")
        yield DataTable(id="cases", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        tz = ZoneInfo(self.d.timezone)
        table = self.query_one(DataTable)
        table.add_columns("#", "", "", "", "", "")
        for c in self.lines:
            cat = self.d.categories_by_code.get(c.category or "")
            grid = self.d.grids_by_code.get(c.grid or "")
            table.add_row(
                str(c.id),
                self.t(f"status.{c.status}"),
                f"{c.received_at.astimezone(tz):%m-%d %H:%M}",
                cat.name if cat else "?",
                grid.label if grid else "?",
                safe(c.title)[:40],
                key=str(c.id),
            )
        table.focus()

    def action_close(self) -> None:
        self.dismiss()

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        opener = getattr(self.app, "action_open", None)
        if opener is not None and event.row_key.value is not None:
            opener(int(event.row_key.value))
