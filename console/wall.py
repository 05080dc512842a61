"""The wall display (`tafang wall`): the command centre's big screen, read-only.

The grid map shaded by open cases and breaches, today's counts and 1-3-5 rates, the breached
list (most overdue first, with escalation level and 督办) and the squads. It has no action
keys at all, only quit. It is live the console's way: the console's poll worker
(`console.poller.poll`, on the store's change feed) posts what changed and the same
`LiveState` keeps every open case and its light; the day's counts are read by a second
thread worker whenever the store changes. Nothing here reads the store on the UI thread, and
nothing here writes to it (the CLI also opens the store read-only for the wall).
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from rich.text import Text
from tafang.console.i18n import Strings
from tafang.console.live_state import LiveState
from tafang.console.messages import (
    DaemonBeat,
    PartnersHandled,
    StoreChanged,
    StoreHealth,
    StoreLoaded,
)
from tafang.console.poller import poll_in_worker
from tafang.console.screens.dashboard import HeaderLine
from tafang.console.view_model import ViewModel, daemon_text
from tafang.store.cases import Store
from tafang.store.clocks import CLOCKS
from tafang.store.config import Deployment
from tafang.store.queries import compliance_by_stage, day_flow
from tafang.widgets.breach_list import BreachList, BreachRow
from tafang.widgets.counts import DayCounts, DayFigures, StageRow, StageTable
from tafang.widgets.still import StillMap, StillSquads
from tafang.widgets.text import safe
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

Clock = Callable[[], datetime]
FIGURES_EVERY = 15.0
"""Seconds between two reads of the day's counts when nothing changed (deadlines pass)."""
BREACH_ROWS = 120
"""Overdue cases listed at most (more than any screen shows; the title counts them all)."""
DAY_GAP = 1.0
"""At most one read of the day's counts a second while the store keeps changing."""


@dataclass
class DayRead(Message):
    """The day's flow and per-stage 1-3-5 figures, read by the figures worker."""

    received: int
    closed: int
    rates: dict[str, tuple[int, int]]


def day_start(now: datetime, tz: ZoneInfo) -> datetime:
    """Local midnight of `now`'s day, in UTC: where "today" starts for the counts."""
    local = now.astimezone(tz)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def stage_rows(state: LiveState, rates: dict[str, tuple[int, int]], t: Strings) -> list[StageRow]:
    """Open, at-risk and overdue cases by the clock that runs now, with today's 1-3-5 rates."""
    tally = {c: [0, 0, 0] for c in CLOCKS}
    for cid, row in state.rows.items():
        if row.clock not in tally:
            continue
        n = tally[row.clock]
        n[0] += 1
        light = state.light.get(cid)
        n[1] += light == "at_risk"
        n[2] += light == "breached"
    out = []
    for c in CLOCKS:
        met, due = rates.get(c, (None, None))
        out.append(StageRow(t.labels.clock(c), *tally[c], met=met, due=due))
    return out


def breach_rows(
    state: LiveState, t: Strings, limit: int = BREACH_ROWS
) -> tuple[list[BreachRow], int]:
    """The `limit` most overdue open cases as the wall lists them, and how many are overdue.

    A bad day has thousands: only the lines a screen can show are built, each second."""
    late = [
        (row.due, -row.escalation_level, cid)
        for cid, light in state.light.items()
        if light == "breached" and (row := state.rows[cid]).due is not None
    ]
    out = []
    for _, _, cid in heapq.nsmallest(limit, late):
        row = state.rows[cid]
        assert row.due is not None
        out.append(
            BreachRow(
                case_id=cid,
                due=row.due,
                stopped=row.held_at,
                clock=t.labels.clock(row.clock),
                grid_label=row.grid_label,
                category=row.category,
                title=row.title,
                level=row.escalation_level,
                level_name=t.labels.level(row.escalation_level),
                supervised=row.supervised,
            )
        )
    return out, len(late)


class WallScreen(Screen[None]):
    """Header, the day's counts, then a grid: map | stages | squads over breaches."""

    class Ready(Message):
        """The widgets exist: the app may hand them what it loaded meanwhile."""

    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (180, "-wide")]  # noqa: RUF012

    def __init__(self, vm: ViewModel, t: Strings) -> None:
        super().__init__(id="wall")
        self.vm = vm
        self.t = t

    def compose(self) -> ComposeResult:
        t = self.t
        words = t.labels.section("wall")
        widget_words = t.words()
        yield HeaderLine(Text(t("wall.title")), id="wall-header")
        yield DayCounts(words, id="counts")
        with Grid(id="wall-body"):
            with Vertical(id="wall-map-box"):
                yield Static(t("wall.map_title"), classes="wall-title", markup=False)
                yield StillMap(self.vm.cell_specs(), words=widget_words, id="wall-map")
            with Vertical(id="wall-stage-box"):
                yield Static(t("wall.stages_title"), classes="wall-title", markup=False)
                yield StageTable(words, id="stages")
            with Vertical(id="wall-squad-box"):
                yield Static(t("wall.squads_title"), classes="wall-title", markup=False)
                yield StillSquads(lang=t.lang, words=widget_words, id="wall-squads")
            with Vertical(id="wall-breach-box"):
                yield Static(
                    t("wall.breached_title"), classes="wall-title", id="breach-title", markup=False
                )
                yield BreachList(words, id="breaches")

    def on_mount(self) -> None:
        self.post_message(self.Ready())


class WallApp(App[None]):
    """The wall. `now` is injectable so tests and snapshots see a frozen clock."""

    CSS_PATH = "wall.tcss"
    TITLE = "Tafang"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [Binding("ctrl+q", "quit", "quit", id="wall.quit", show=False)]  # noqa: RUF012

    def __init__(
        self,
        store: Store,
        deployment: Deployment,
        *,
        lang: str | None = None,
        now: Clock | None = None,
        tick_seconds: float = 1.0,
        figures_every: float = FIGURES_EVERY,
    ) -> None:
        super().__init__()
        self.store = store
        self.d = deployment
        self.t = Strings(lang or deployment.ui.lang)
        self.now: Clock = now or (lambda: datetime.now(UTC))
        self.tz = ZoneInfo(deployment.timezone)
        self.vm = ViewModel(deployment, self.t)
        self.state = LiveState(self.vm)
        self.tick_seconds = tick_seconds
        self.figures_every = figures_every
        self.loaded = False
        self.day: DayRead | None = None
        self.handled_today: dict[str, int] = {}
        self.daemon_at: datetime | None = None
        self.daemon_seen = False
        self.store_down: datetime | None = None
        self._map_given = False  # the map has had its cells at least once
        self._breach_title = ""
        self._day_last = -DAY_GAP  # when the day's counts were last asked for (monotonic)
        self._day_timer: Timer | None = None
        self.wall = WallScreen(self.vm, self.t)

    def get_default_screen(self) -> WallScreen:
        return self.wall

    def on_mount(self) -> None:
        self.title = self.t("wall.title")
        self._poll()
        self._read_day_now()
        self.set_interval(self.tick_seconds, self._tick)
        self.set_interval(self.figures_every, self._read_day_now)

    # ---- workers: every read of the store happens off the UI thread ----------------------
    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll(self) -> None:
        poll_in_worker(self, slow_every=self.figures_every)

    def _day_soon(self) -> None:
        """Read the day's counts now, or when the last read is DAY_GAP old: changes come in
        bursts, and the counts are two aggregate queries over the day's cases."""
        if self._day_timer is not None:
            return
        wait = self._day_last + DAY_GAP - time.monotonic()
        if wait <= 0:
            self._read_day_now()
        else:
            self._day_timer = self.set_timer(wait, self._day_due)

    def _day_due(self) -> None:
        self._day_timer = None
        self._read_day_now()

    def _read_day_now(self) -> None:
        self._day_last = time.monotonic()
        self._read_day()

    @work(thread=True, exclusive=True, group="day", exit_on_error=False)
    def _read_day(self) -> None:
        now = self.now()
        since = day_start(now, self.tz)
        try:
            received, closed = day_flow(self.store, since)
            rates = compliance_by_stage(self.store, since, now)
        except Exception:  # the store is down: the poll says so in the header
            return
        self.post_message(DayRead(received, closed, rates))

    # ---- what the workers bring -----------------------------------------------------------
    def on_store_loaded(self, m: StoreLoaded) -> None:
        now = self.now()
        self.state.load(m.cases, now, m.rows)
        self.state.officers = list(m.officers)
        self.loaded = True
        self._repaint(now)

    def on_store_changed(self, m: StoreChanged) -> None:
        now = self.now()
        self.state.advance(now)
        self.state.apply(m.cases, now)
        self.state.officers = list(m.officers)
        self._repaint(now)
        self._day_soon()  # received / closed today may have moved

    def on_wall_screen_ready(self, _m: WallScreen.Ready) -> None:
        self._repaint(self.now())

    def on_day_read(self, m: DayRead) -> None:
        self.day = m
        self._repaint(self.now())

    def on_partners_handled(self, m: PartnersHandled) -> None:
        self.handled_today = m.counts
        self._repaint_squads(self.now())

    def on_daemon_beat(self, m: DaemonBeat) -> None:
        self.daemon_at, self.daemon_seen = m.at, True
        self._header()

    def on_store_health(self, m: StoreHealth) -> None:
        self.store_down = m.down_since
        self._header()

    # ---- painting ---------------------------------------------------------------------------
    def _tick(self) -> None:
        now = self.now()
        self.state.advance(now)
        self._repaint(now)

    def figures(self) -> DayFigures:
        """The counts row as of the last tick."""
        c = self.state.counts()
        day = self.day
        rates = day.rates.values() if day else ()
        return DayFigures(
            received=day.received if day else 0,
            closed=day.closed if day else 0,
            open=c.open,
            at_risk=c.at_risk,
            overdue=c.breached,
            met=sum(m for m, _ in rates),
            due=sum(d for _, d in rates),
        )

    def _repaint(self, now: datetime) -> None:
        if not self.wall.is_mounted:
            return
        self._header()
        if not self.loaded:
            return
        w = self.wall
        w.query_one(DayCounts).set_figures(self.figures())
        w.query_one(StageTable).set_rows(
            stage_rows(self.state, self.day.rates if self.day else {}, self.t)
        )
        breaches, total = breach_rows(self.state, self.t)
        w.query_one(BreachList).set_rows(breaches, now)
        title = f"{self.t('wall.breached_title')} · {total}"
        if title != self._breach_title:  # a relayout only when the number changes
            self._breach_title = title
            w.query_one("#breach-title", Static).update(title)
        if self.state.dirty or not self._map_given:
            w.query_one(StillMap).set_state({s.code: s for s in self.state.cell_states(now)})
            self.state.dirty = False
            self._map_given = True
        self._repaint_squads(now)

    def _repaint_squads(self, now: datetime) -> None:
        if self.loaded and self.wall.is_mounted:
            self.wall.query_one(StillSquads).set_data(
                self.vm.officer_rows(self.state.officers),
                self.state.partner_rows(self.handled_today),
                now,
            )

    def header_text(self) -> Text:
        """Title, local date and time, daemon, store, and that this screen is read-only."""
        now = self.now()
        t = self.t
        h = Text(no_wrap=True, overflow="ellipsis")
        h.append(t("wall.title"), style="bold")
        h.append("  " + now.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S"), style="bold")
        h.append("  " + safe(self.d.name))
        if self.daemon_seen:
            words, ok = daemon_text(t, self.daemon_at, now, self.tz)
            h.append("  ")
            h.append(words, style="green" if ok else "bold red")
        if self.store_down is not None:
            since = self.store_down.astimezone(self.tz).strftime("%H:%M:%S")
            h.append("  ")
            h.append(t("header.store_down", since=since), style="bold white on red")
        if not self.loaded:
            h.append(f"  {t('header.loading')}")
        h.append(f"  {t('wall.read_only')}", style="dim")
        return h

    def _header(self) -> None:
        if self.wall.is_mounted:
            self.wall.query_one(HeaderLine).update(self.header_text())


def run_wall(store: Store, deployment: Deployment, *, lang: str | None = None) -> int:
    """Run the wall until someone quits it (ctrl+q); the process exit code (0)."""
    WallApp(store, deployment, lang=lang).run()
    return 0
