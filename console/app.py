"""The dispatcher console: one keyboard-driven dashboard over the shared store.

Data flows one way. A thread worker polls the store (`console.poller.poll`) and posts plain
views; the app keeps them in `LiveState` and hands rows to the widgets. Every action is a
Binding with an id (remappable, shown in the footer), a command-palette entry and a word of
the `:` command line; each runs `Store.act` in a thread worker and reports the outcome (or
the store's refusal, word for word) as a notification.

Entry point for the CLI: `console/run.py` (`run_console`), which starts the first read of the
store before it imports this module.
"""

from __future__ import annotations

import os

# Textual paints at most TEXTUAL_FPS frames a second, read once when `textual` is first
# imported (textual/constants.py), and a change made less than one frame after the previous
# frame waits for the next slot of that clock. At 60 fps that wait alone reached 16–21 ms
# (p95) in bench/console.py; at 120 fps it stays under ~10 ms. This module is the console's
# first import of Textual (console/cli.py imports it lazily), so the default is set here; an
# explicit TEXTUAL_FPS in the environment still wins.
os.environ.setdefault("TEXTUAL_FPS", "120")

import gc
import socket
from collections.abc import Callable, Collection, Iterable
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from rich.text import Text
from tafang.console.collector import IdleCollector
from tafang.console.dupe_marks import DupeMarks
from tafang.console.i18n import Strings
from tafang.console.keymap import GESTURES, KEY_SHOWN, SHORTHAND, action_of, key_shown, usage
from tafang.console.live_state import Counts, LiveState
from tafang.console.messages import (
    ActionDone,
    ActionFailed,
    Compliance,
    DaemonBeat,
    DupesLoaded,
    NoticesBacklog,
    PartnersHandled,
    StoreChanged,
    StoreHealth,
    StoreLoaded,
)
from tafang.console.optimistic import provisional
from tafang.console.palette import RecordCommands, TafangPalette
from tafang.console.poller import poll_in_worker
from tafang.console.queue_filter import Filter
from tafang.console.ranking import rank
from tafang.console.screens.ask import AskScreen
from tafang.console.screens.case import CaseScreen
from tafang.console.screens.confirm import ConfirmScreen, relabel
from tafang.console.screens.dashboard import Dashboard
from tafang.console.screens.dupes import OTHER, DupesScreen
from tafang.console.screens.filter import FilterScreen
from tafang.console.screens.help import HelpScreen
from tafang.console.screens.new_case import NewCaseScreen
from tafang.console.shift import (
    DayFigures,
    bell_pattern,
    hour_starts,
    next_mute,
    overdue_by_stage,
    per_hour,
    person,
    rate,
    sparkline,
)
from tafang.console.shift_actions import ShiftActions
from tafang.console.view_model import ViewModel, daemon_text
from tafang.store.cases import Actor, Conflict, Refused, Store
from tafang.store.config import Deployment
from tafang.store.moves import MOVES, allowed, refusal_for
from tafang.store.queries import compliance_by_stage, day_flow, received_since
from tafang.store.roster import slot_at
from tafang.store.views import CaseView
from tafang.widgets.dispatch_panel import DispatchPanel
from tafang.widgets.event_queue import EventQueue
from tafang.widgets.grid_map import GridMap
from tafang.widgets.squad_panel import SquadPanel
from tafang.widgets.text import safe
from textual import events, on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.command import CommandPalette, DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.message import Message
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input

if TYPE_CHECKING:
    from threading import Event

    from tafang.console.first_read import FirstRead

Clock = Callable[[], datetime]

SCREEN_WORDS = {
    "case.back": "keys.back",
    "ask.cancel": "keys.cancel",
    "assign.cancel": "keys.cancel",
    "filter.cancel": "keys.cancel",
    "form.cancel": "keys.cancel",
    "form.save": "form.save",
    "help.close": "keys.close",
    "confirm.yes": "confirm.yes",
    "confirm.no": "confirm.no",
}
"""Binding id of a screen → its footer word in the catalogue."""

INCREMENTAL_MAX = 256
"""Up to this many changed cases are moved into place in the queue; more: rebuild it."""


@dataclass
class DayFiguresRead(Message):
    """The day's figures for the header, read by a worker."""

    figures: DayFigures


@dataclass(frozen=True, slots=True)
class Command:
    """One parsed command line."""

    action: str
    case_id: int | None = None
    to: str | None = None
    reason: str = ""
    into: int | None = None
    text: str = ""


def _usage_error(action: str, t: Strings | None) -> str:
    return t("command.usage", usage=usage(action)) if t else f"usage: {usage(action)}"


def parse_command(line: str, t: Strings | None = None) -> Command | str:
    """Dispatcher shorthand → a Command, or the reason it cannot be one (in `t`'s language).

    `a 1234`, `d 1234 2-03`, `m 1234 into 99` (or `m 1234 99`), `v 1234 reason …`, `f text`.
    """
    parts = line.strip().split(maxsplit=2)
    if not parts:
        return "empty"
    word = parts[0].lower()
    action = SHORTHAND.get(word)
    if action is None:
        return t("command.unknown", text=parts[0]) if t else f"unknown command {parts[0]!r}"
    if action == "filter":
        return Command("filter", text=line.strip()[len(parts[0]) :].strip())
    if len(parts) < 2 or not parts[1].lstrip("#").isdigit():
        return _usage_error(action, t)
    case_id = int(parts[1].lstrip("#"))
    rest = parts[2].strip() if len(parts) > 2 else ""
    arg = MOVES[action].arg if action in MOVES else ""
    if arg == "to":
        return Command(action, case_id, to=rest.split()[0] if rest else None)
    if arg == "into":
        bits = rest.split()
        if bits and bits[0].lower() == "into":
            bits = bits[1:]
        if not bits or not bits[0].lstrip("#").isdigit():
            return _usage_error(action, t)
        return Command(action, case_id, into=int(bits[0].lstrip("#")), reason=" ".join(bits[1:]))
    return Command(action, case_id, reason=rest)


class TafangCommands(Provider):
    """Every console action the operator's role may take, in the command palette (ctrl+p),
    in the UI language."""

    def _items(self) -> Iterable[tuple[str, str, str]]:
        app = self.app
        assert isinstance(app, TafangApp)
        for name, g in GESTURES.items():
            if app.may(f"tafang.{name}"):  # a move the role may not make is not offered
                yield f"{app.t(f'action.{name}')} ({key_shown(g.key)})", name, action_of(name)

    async def discover(self) -> Hits:
        app = self.app
        assert isinstance(app, TafangApp)
        for text, _, action in self._items():
            yield DiscoveryHit(text, partial(app.run_action, action), text=text)

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, TafangApp)
        matcher = self.matcher(query)
        for text, name, action in self._items():
            score = max(matcher.match(text), matcher.match(name))
            if score > 0:
                run = partial(app.run_action, action)
                yield Hit(score, matcher.highlight(text), run, text=text)


def _bindings() -> list[Binding]:
    """One binding per console action, with the id (`tafang.<name>`) a keymap names."""
    out = [
        Binding(
            g.key,
            action_of(name),
            f"action.{name}",
            id=f"tafang.{name}",
            key_display=KEY_SHOWN.get(g.key),
            show=g.show,
        )
        for name, g in GESTURES.items()
    ]
    out.append(Binding("escape", "clear", "action.clear", id="tafang.clear", show=False))
    return out


class TafangApp(ShiftActions, App[None]):
    """The console. `now` is injectable so tests and snapshots see a frozen clock."""

    CSS_PATH = "tafang.tcss"
    TITLE = "Tafang"
    COMMANDS = App.COMMANDS | {TafangCommands, RecordCommands}
    BINDINGS = _bindings()

    _page_shown: Event | None = None  # the first read waits until its page is painted
    _dispatching: CaseView | None = None  # the case the dispatch panel is open for

    def __init__(
        self,
        store: Store,
        deployment: Deployment,
        *,
        operator: str = "demo",
        terminal: str | None = None,
        lang: str | None = None,
        now: Clock | None = None,
        poll_interval: float = 0.3,
        tick_seconds: float = 1.0,
        figures_after: float = 1.5,
        first_read: FirstRead | None = None,
    ) -> None:
        super().__init__()
        self.store = store
        self.first_read = first_read  # started before the app was built (console/first_read.py)
        self.collector = IdleCollector()  # full GC passes when the keys stop
        self.d = deployment
        self.role: str | None = deployment.role_of(operator)  # None: not on the roster
        self.t = Strings(lang or deployment.ui.lang)
        self._localise_bindings()
        self.actor = Actor(operator, terminal or socket.gethostname())
        self.now: Clock = now or (lambda: datetime.now(UTC))
        self.tz = ZoneInfo(deployment.timezone)
        self.vm = ViewModel(deployment, self.t)
        self.state = LiveState(self.vm)
        self.filter = Filter()
        self.poll_interval = poll_interval
        self.tick_seconds = tick_seconds
        self.figures_after = figures_after  # the day's compliance waits for the first frame
        self.loaded = False
        self.counts = Counts()
        self.compliance: float | None = None
        self.daemon_at: datetime | None = None
        self.daemon_seen = False
        self.notices = NoticesBacklog(0, None)  # undelivered escalation notices (issue 13)
        self.store_down: datetime | None = None
        self.handled_today: dict[str, int] = {}
        self._mark_timer: Timer | None = None
        # case id -> (the case as the store last said, the pending view shown instead)
        self.pending: dict[int, tuple[CaseView, CaseView]] = {}
        self._waiting: dict[int, list[tuple[str, str | None, str, int | None]]] = {}
        self._queue_filled = False  # the queue holds a full, filtered set of rows
        self._frozen = False
        self.operator_name = self._person(operator)
        self.day = DayFigures()
        self._overdue_by: dict[str, int] = {}
        self.muted_until: datetime | None = None
        self.mute_minutes = 0
        self.dash = Dashboard(
            self.vm.cell_specs(),
            self.t,
            self.t.lang,
            [f"{word} " for word in SHORTHAND],  # the command line completes its words
            state=self.state,
            vm=self.vm,
            timeline=self.store.timeline,
            now=self.now,
        )

    def _localise_bindings(self) -> None:
        """Footer words in the UI language (class bindings carry i18n keys); moves this
        operator's role may not make leave the footer (the key still says why)."""
        keys = self._bindings.key_to_bindings
        for k, bs in keys.items():
            keys[k] = [
                replace(b, description=self.t(b.description), show=b.show and self.may(b.id))
                if b.description.startswith("action.")
                else replace(b, description=self.t("palette.name"))
                if b.action == "command_palette"
                else b
                for b in bs
            ]

    def push_screen(self, screen: Any, *args: Any, **kwargs: Any) -> Any:
        """Every screen's footer words in the UI language (their bindings carry English)."""
        if isinstance(screen, Screen):
            relabel(screen, {k: self.t(v) for k, v in SCREEN_WORDS.items()})
        return super().push_screen(screen, *args, **kwargs)

    def action_command_palette(self) -> None:
        """Textual's palette, in the UI language."""
        if self.use_command_palette and not CommandPalette.is_open(self):
            self.push_screen(TafangPalette(self.t("palette.placeholder"), self.t("palette.none")))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's own palette entries, in the UI language."""
        t = self.t
        yield SystemCommand(t("palette.theme"), t("palette.theme_help"), self.action_change_theme)
        shoot = partial(self.set_timer, 0.1, self.deliver_screenshot)
        yield SystemCommand(t("palette.screenshot"), t("palette.screenshot_help"), shoot)
        yield SystemCommand(t("action.quit"), t("palette.quit_help"), self.exit)

    def show_officer(self, code: str) -> None:
        """The palette found an officer: the cases in their hands."""
        self.set_filter(Filter(text=code))

    def show_cell(self, code: str) -> None:
        """The palette found a cell: its cases."""
        self.set_filter(Filter(cell=code))

    def may(self, binding_id: str | None) -> bool:
        """May this operator's role make the move of a binding (`tafang.<move>`) at all?"""
        name = (binding_id or "").removeprefix("tafang.")
        return name not in MOVES or allowed(MOVES[name], self.role)

    def _refuse_early(self, name: str) -> bool:
        """Say at once, before asking for anything, why this role may not make `name`."""
        r = refusal_for(MOVES[name], self.role, self.actor.operator)
        if r is None or r.code not in ("role", "not_on_roster"):
            return False
        e = Refused(r.message, r.code, **r.params)
        label = self.t(f"action.{_ui_action(name)}")
        self.notify(
            self.t.refusal(e, self.tz) or str(e),
            title=self.t("refused", id="—", action=label),
            severity="warning",
            markup=False,
        )
        return True

    # ---- life cycle ---------------------------------------------------------------------
    def get_default_screen(self) -> Dashboard:
        return self.dash

    def on_mount(self) -> None:
        self.title = self.t("app.title")
        if self.d.ui.keymap:  # a deployment's own keys, by binding id (tafang.ack …)
            self.set_keymap(dict(self.d.ui.keymap))
        self._refresh_header()
        self.voice_start()
        self._poll()
        self.set_interval(self.tick_seconds, self._tick)
        self.set_timer(self.figures_after, self._day_figures)
        self.set_interval(30.0, self._day_figures)
        self._read_risk_points()  # a thread: the first frame does not wait for it

    def get_key_display(self, binding: Binding) -> str:
        return KEY_SHOWN.get(binding.key, super().get_key_display(binding))

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll(self) -> None:
        first, self.first_read = self.first_read, None
        self._page_shown = first.shown if first is not None else None
        poll_in_worker(
            self, interval=self.poll_interval, first_slow=self.figures_after, first=first
        )

    # ---- live data ----------------------------------------------------------------------
    def on_store_loaded(self, m: StoreLoaded) -> None:
        now = self.now()
        self.state.load(m.cases, now, m.rows)
        self.state.advance(now)
        self.state.officers = list(m.officers)
        self.loaded = m.complete  # until then the header says 'loading' and the map waits
        self._repaint(now)
        if not m.complete:
            return
        self.call_after_refresh(self._match_dupes, list(m.cases), now)
        if not self._frozen:
            # The 10k cases and rows just loaded live as long as the app: out of the
            # collector's sight, its full passes no longer walk them (~45 ms pauses that
            # landed on key presses).
            gc.freeze()
            self._frozen = True
            self.collector.start()

    @work(thread=True, exclusive=True, group="dupes", exit_on_error=False)
    def _match_dupes(self, cases: list[CaseView], now: datetime) -> None:
        """The first load's duplicate marks, matched after the first frame is painted."""
        marks = DupeMarks(self.d)
        marks.load([c for c in cases if c.is_open], now)
        self.post_message(DupesLoaded(marks))

    def on_dupes_loaded(self, m: DupesLoaded) -> None:
        changed = self.state.adopt_dupes(m.marks)
        if changed:
            self._repaint(self.now(), changed)
        if self._frozen:
            # The duplicate index (10k cases' bigrams) lives as long as the app too: left in
            # the collector's sight, every full pass walked it (60–100 ms pauses that held
            # the frame after a modal's Enter).
            gc.freeze()

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key):
            self.collector.pressed()
        await super().on_event(event)

    def on_unmount(self) -> None:
        self.collector.stop()
        if self._frozen:
            gc.unfreeze()  # tests run many apps in one process: let the old ones go
            self._frozen = False

    @property
    def _top(self) -> Screen[object] | None:
        """The current screen, or None while the app shuts down: worker answers land then."""
        return self.screen_stack[-1] if self.screen_stack else None

    def on_store_changed(self, m: StoreChanged) -> None:
        now = self.now()
        self.announce_new(m.cases)  # before the state knows them: new critical cases
        self.state.advance(now)
        changed = self.state.apply(m.cases, now)
        officers = list(m.officers)
        roster = officers != self.state.officers
        self.state.officers = officers
        if changed:
            self._repaint(now, [c.id for c in m.cases])
        elif roster:
            self._repaint_squads()
            self.dash.set_map(self.state.cell_states(now))
        screen = self._top
        if isinstance(screen, CaseScreen):
            for c in m.cases:
                if c.id == screen.case_id and c.version > screen.case.version:
                    screen.show(c)

    def on_store_health(self, m: StoreHealth) -> None:
        self.store_down = m.down_since
        self._refresh_header()

    def on_daemon_beat(self, m: DaemonBeat) -> None:
        self.daemon_at = m.at
        self.daemon_seen = True
        self._refresh_header()

    def on_notices_backlog(self, m: NoticesBacklog) -> None:
        self.notices = m
        self._refresh_header()

    def on_compliance(self, m: Compliance) -> None:
        self.compliance = m.percent
        self._refresh_header()

    def on_partners_handled(self, m: PartnersHandled) -> None:
        self.handled_today = m.counts
        self._repaint_squads()

    def on_dashboard_ready(self, _m: Dashboard.Ready) -> None:
        if self.loaded or self.state.rows:  # the full load, or the most urgent page
            self._repaint(self.now())
        self._refresh_header()

    def _repaint(self, now: datetime, changed: Collection[int] | None = None) -> None:
        """Hand the widgets the state; with `changed` (case ids), the queue takes only those
        rows instead of re-sorting every open case (an action must repaint within 50 ms)."""
        self.counts = self.state.counts()
        if changed is None:
            self._count_overdue()
        if not self.dash.ready:
            return
        self.dash.queue.lights = self.state.light  # the store's rule, as of `now`
        if changed is not None and self._queue_filled and len(changed) <= INCREMENTAL_MAX:
            shown, gone = self.state.rows_for(changed, self.filter)
            self.dash.queue.update_rows(shown, gone, now)
        else:
            self.dash.set_rows(self.state.sorted_rows(self.filter), now)
            self._queue_filled = True
            if self._page_shown is not None:  # the first read's page: now read the rest
                self.call_after_refresh(self._page_shown.set)
                self._page_shown = None
        if self.loaded:
            self.dash.set_map(self.state.cell_states(now))
            self.state.dirty = False
        self._repaint_squads()
        self._refresh_header()

    def _repaint_squads(self) -> None:
        if not self.dash.ready:
            return
        self.dash.set_squads(
            self.vm.officer_rows(self.state.officers),
            self.state.partner_rows(self.handled_today),
            self.now(),
        )

    def _tick(self) -> None:
        self.collector.tick()
        now = self.now()
        self.counts, newly = self.state.tick(now)
        self._count_overdue()
        if not self.dash.ready:
            return
        queue = self.dash.queue
        queue.lights = self.state.light
        queue.tick(now)
        if self.loaded and self.state.dirty:
            self.dash.set_map(self.state.cell_states(now))
            self.state.dirty = False
        if newly:
            for cid in newly:
                queue.flash(cid)
            self._ring(newly)
        self._refresh_header()

    def header_text(self) -> Text:
        """The header line, most needed first (a narrow terminal cuts from the end): time, an
        outage, the overdue and at-risk counts, a muted bell, the daemon, the filter; then the
        shift and operator, compliance and the day's flow."""
        now = self.now()
        t = self.t
        h = Text(no_wrap=True, overflow="ellipsis")
        h.append(now.astimezone(self.tz).strftime("%H:%M:%S"), style="bold")
        if self.store_down is not None:
            h.append("  ")
            since = self.store_down.astimezone(self.tz).strftime("%H:%M:%S")
            h.append(t("header.store_down", since=since), style="bold white on red")
        self._header_counts(h)
        self._header_muted(h, now)
        if self.daemon_seen:
            words, ok = daemon_text(t, self.daemon_at, now, self.tz)
            h.append("  ")
            h.append(words, style="green" if ok else "bold red")
        self._header_notices(h, now)
        if self.filter.active:
            h.append(f"  {t('header.filter')}: ", style="bold")
            h.append(safe(self.vm.describe(self.filter)), style="reverse")
        self._header_shift(h, now)
        if self.compliance is not None:
            h.append(f"  {t('header.compliance')} {self.compliance:.0f}%")
        self._header_day(h)
        return h

    def _header_counts(self, h: Text) -> None:
        """Overdue (by stage), at risk and open; 'loading' until the first load."""
        t = self.t
        if not self.loaded:
            h.append(f"  {t('header.loading')}")
            return
        c = self.counts
        h.append(f"  {t('header.breached')} {c.breached}", style="bold red" if c.breached else "")
        self._header_overdue(h)
        h.append(f"  {t('header.at_risk')} {c.at_risk}", style="yellow" if c.at_risk else "")
        h.append(f"  {t('header.open')} {c.open}")

    def _person(self, operator: str) -> str:
        """The operator's own name (in English its `name_en`), without a role title."""
        op = next((o for o in self.d.operators if o.code == operator), None)
        if op is None:
            return operator
        if self.t.lang == "en" and op.name_en:
            return op.name_en  # configured as the person's name alone
        return person(op.name)

    def _header_shift(self, h: Text, now: datetime) -> None:
        """Shift and its hours, then the role from the roster and the operator's name."""
        t = self.t
        slot = slot_at(self.d, now)  # the roster's shift ([[shifts]] in config)
        name = t.known(f"shift.{slot.shift.code}", t.pick(slot.shift.name, slot.shift.name_en))
        h.append(f"  {name} {slot.hours}")
        role = t(f"role.{self.role}") if self.role else t("shift.off_roster")
        h.append(f"  {role} ", style="bold")
        h.append(safe(self.operator_name))

    def _count_overdue(self) -> None:
        """Overdue per stage for the header: on the tick and after a full repaint only."""
        rows, light = self.state.rows, self.state.light
        clocks = {cid: rows[cid].clock for cid, v in light.items() if v == "breached"}
        self._overdue_by = overdue_by_stage(light, clocks) if clocks else {}

    def _header_overdue(self, h: Text) -> None:
        """Overdue cases per stage, beside the overdue count (counted on the tick: a walk
        over every row is too dear for each repaint an action makes)."""
        if self.counts.breached and self._overdue_by:
            by = self._overdue_by
            parts = " ".join(f"{self.t(f'clock.{k}')}{n}" for k, n in sorted(by.items()))
            h.append(f" ({parts})", style="red")

    def _header_day(self, h: Text) -> None:
        """Today's flow and 1-3-5 rates with the hours' sparkline."""
        t = self.t
        d = self.day
        if d.per_hour:
            h.append(f"  {t('shift.received')} {d.received} {t('shift.closed')} {d.closed}")
            rates = " ".join(
                f"{t(f'clock.{k}')}{rate(*d.rates.get(k, (0, 0)))}"
                for k in ("respond", "dispatch", "arrive")
            )
            h.append(f"  1-3-5 {rates} ")
            h.append(sparkline(d.per_hour), style="cyan")

    def _header_notices(self, h: Text, now: datetime) -> None:
        """Escalation notices waiting undelivered for a minute or more: a leader may not
        have heard of a breach (red once the daemon alarms the centre about them)."""
        n = self.notices
        if not n.count or n.oldest is None or now - n.oldest < timedelta(minutes=1):
            return
        minutes = int((now - n.oldest).total_seconds() // 60)
        alarm = minutes >= self.d.notices.alarm_after_minutes
        h.append("  ")
        words = self.t("header.notices_stuck", n=n.count, minutes=minutes)
        h.append(words, style="bold white on red" if alarm else "bold yellow")

    def _header_muted(self, h: Text, now: datetime) -> None:
        """A muted breach bell is said early: a dispatcher must know the bell is off."""
        if self.muted_until is not None and now < self.muted_until:
            until = self.muted_until.astimezone(self.tz).strftime("%H:%M")
            h.append(f"  {self.t('shift.muted', until=until)}", style="bold yellow")

    @work(thread=True, exclusive=True, group="day", exit_on_error=False)
    def _day_figures(self) -> None:
        """Today's flow, per-stage rates and received per hour (read in this worker)."""
        now = self.now()
        local = now.astimezone(self.tz)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        try:
            received, closed = day_flow(self.store, midnight.astimezone(UTC))
            rates = compliance_by_stage(self.store, midnight.astimezone(UTC), now)
            since = received_since(self.store, [h.astimezone(UTC) for h in hour_starts(local)])
        except Exception:  # the store is away: the header says so elsewhere
            return
        self.post_message(DayFiguresRead(DayFigures(received, closed, rates, per_hour(since))))

    def on_day_figures_read(self, m: DayFiguresRead) -> None:
        self.day = m.figures
        self._refresh_header()

    def _ring(self, newly: Collection[int]) -> None:
        """Bell on breach per config, unless muted; three rings when a critical case is among
        the newly breached. The spoken alarm says them too (same mute)."""
        self.announce_breaches(newly)
        now = self.now()
        if not self.d.ui.bell_on_breach or (self.muted_until and now < self.muted_until):
            return
        cases = (self.state.cases.get(cid) for cid in newly)
        rings = bell_pattern(c.priority for c in cases if c is not None)
        for i in range(rings):
            self.set_timer(0.25 * i, self.bell) if i else self.bell()

    def action_mute(self) -> None:
        """Mute the bell for 15, 30, 60 minutes (each press the next), then on again."""
        self.mute_minutes = next_mute(self.mute_minutes)
        now = self.now()
        self.muted_until = now + timedelta(minutes=self.mute_minutes) if self.mute_minutes else None
        words = (
            self.t("shift.muted_for", n=self.mute_minutes)
            if self.mute_minutes
            else self.t("shift.unmuted")
        )
        self.notify(words, markup=False, timeout=3)
        self._refresh_header()

    def _refresh_header(self) -> None:
        if self.dash.ready:
            self.dash.header.update(self.header_text())

    # ---- which case --------------------------------------------------------------------------
    def current_case(self) -> CaseView | None:
        screen = self._top
        if isinstance(screen, CaseScreen):
            return self.state.cases.get(screen.case_id, screen.case)
        if screen is self.dash:
            cid = self.dash.queue.cursor_case_id
            return self.state.cases.get(cid) if cid is not None else None
        return None

    def _need_case(self) -> CaseView | None:
        case = self.current_case()
        if case is None:
            self.notify(self.t("no_case"), severity="warning", markup=False)
        return case

    # ---- actions ---------------------------------------------------------------------------
    def act(
        self,
        case_id: int,
        action: str,
        *,
        version: int | None = None,
        to: str | None = None,
        reason: str = "",
        into: int | None = None,
    ) -> None:
        """Run one store move in a worker; the answer comes back as ActionDone / ActionFailed.

        The row shows the expected state at once, marked pending (`console.optimistic`); a
        second move on a case whose first is still pending waits for that answer, then goes
        with the version the store gave."""
        waiting = case_id in self.pending
        on_it = self.dash.ready and self.dash.queue.cursor_case_id == case_id
        shown = self._show_pending(case_id, action, to, follow=not on_it)
        if shown and self.dash.ready:  # the cursor goes on to the case needing action most
            self.dash.queue.advance_from(case_id)  # (a move its state refuses: it stays)
        if waiting:
            self._waiting.setdefault(case_id, []).append((action, to, reason, into))
            return
        # The store's write starts once the frame showing the pending row is painted: begun
        # at once, its thread took the GIL from that frame (a full repaint after a modal
        # closes: 100–250 ms instead of ~40).
        self.call_after_refresh(self._act_worker, case_id, action, version, to, reason, into)

    def _show_pending(
        self, case_id: int, action: str, to: str | None, *, follow: bool = True
    ) -> bool:
        """Show the move's expected state, marked pending; False when it cannot be told
        (the case's state does not allow the move: the store will say why)."""
        known = self.state.cases.get(case_id)
        if known is None:
            return False
        now = self.now()
        shown = provisional(known, action, now, self.d, to)
        if shown is None:
            return False
        before = self.pending[case_id][0] if case_id in self.pending else known
        self.pending[case_id] = (before, shown)
        self._put_case(shown, now, pending=True, follow=follow)
        return True

    def _put_case(
        self, case: CaseView, now: datetime, *, pending: bool = False, follow: bool = True
    ) -> None:
        """Show `case` as given, even at an older version than the one shown (a roll-back);
        `follow=False`: the queue's view stays put (the cursor moves on from this case)."""
        known = self.state.cases.get(case.id)
        if known is not None:
            self.state.cases[case.id] = replace(known, version=-1)
        self.state.advance(now)
        self.state.apply([case], now)
        row = self.state.rows.get(case.id)
        if pending and row is not None:
            label = self.t("queue.pending", status=row.status_label)
            self.state.rows[case.id] = replace(row, status_label=label)
        if pending and self.dash.ready and self._queue_filled:
            # The row is the answer the eye waits for: only it (and the header) now; the
            # map and squads follow with the store's answer a few ms later.
            self.counts = self.state.counts()
            shown, gone = self.state.rows_for([case.id], self.filter)
            self.dash.queue.update_rows(shown, gone, now, follow=follow)
            self._refresh_header()
            return
        self._repaint(now, [case.id])

    def _settle(self, case_id: int, answer: CaseView | None) -> bool:
        """The store answered a pending move: show its case (or, refused, the case as it
        was), unless a poll has already shown something newer. True if there was one."""
        before, shown = self.pending.pop(case_id, (None, None))
        waiting = self._waiting.pop(case_id, [])
        if before is None:
            return False
        if answer is not None and waiting:  # the next move goes now, still shown pending
            self.pending[case_id] = (answer, shown)  # type: ignore[assignment]
            if waiting[1:]:
                self._waiting[case_id] = waiting[1:]
            action, to, reason, into = waiting[0]
            self._act_worker(case_id, action, answer.version, to, reason, into)
        elif self.state.cases.get(case_id) is shown:
            self._put_case(answer or before, self.now())
        return True

    @work(thread=True, group="act", exit_on_error=False)
    def _act_worker(
        self,
        case_id: int,
        action: str,
        version: int | None,
        to: str | None,
        reason: str,
        into: int | None,
    ) -> None:
        try:
            case = self.store.act(
                case_id,
                action,
                self.actor,
                to=to,
                reason=reason,
                into=into,
                expected_version=version,
            )
        except Conflict as e:
            text = self.t.refusal(e, self.tz)
            self.post_message(ActionFailed(action, case_id, text, conflict=True))
            self._reread(case_id)
        except Refused as e:
            self.post_message(ActionFailed(action, case_id, self.t.refusal(e, self.tz)))
            self._reread(case_id)
        except Exception as e:  # the store is down, or worse: say so, never crash
            self.post_message(ActionFailed(action, case_id, f"{type(e).__name__}: {e}"))
        else:
            self.post_message(ActionDone(action, case))

    def _reread(self, case_id: int) -> None:
        """After a refusal, the case as the store has it now (in the worker's thread): the
        rolled-back row must not stay behind another terminal's change."""
        with suppress(Exception):
            self.post_message(StoreChanged([self.store.get(case_id)], list(self.state.officers)))

    def on_action_done(self, m: ActionDone) -> None:
        now = self.now()
        self.state.advance(now)
        if not self._settle(m.case.id, m.case) and self.state.apply([m.case], now):
            self._repaint(now, [m.case.id])
        label = self.t(f"action.{_ui_action(m.action)}")
        # The row is the answer the dispatcher looks at: it goes out in the next frame, the
        # toast (a mount and a relayout of the screen) in the frame after.
        self.call_after_refresh(
            self.notify,
            self.t("done", id=m.case.id, action=label, status=self.t(f"status.{m.case.status}")),
            markup=False,
            timeout=3,
        )
        screen = self._top
        if isinstance(screen, CaseScreen) and screen.case_id == m.case.id:
            screen.show(m.case)

    def on_action_failed(self, m: ActionFailed) -> None:
        self._settle(m.case_id, None)
        label = self.t(f"action.{_ui_action(m.action)}")
        key = "conflict" if m.conflict else "refused"
        self.notify(
            safe(m.reason),
            title=self.t(key, id=m.case_id, action=label),
            severity="error" if m.conflict else "warning",
            markup=False,
            timeout=8,
        )

    def action_move(self, name: str, case: CaseView | None = None, confirmed: bool = False) -> None:
        """Any move of the store's registry on the current case (or `case`): asks for what
        the move needs (an officer, a target case, a reason), then runs it."""
        if self._refuse_early(name):
            return
        case = case or self._need_case()
        if case is None:
            return
        move = MOVES[name]
        if name == "void" and case.status in ("dispatched", "on_scene") and not confirmed:
            self._confirm_void(case)
        elif move.arg == "to":
            self._choose_assignee(case)
        elif move.arg == "into":
            self._ask_target(case)
        elif move.reason:
            self._ask_reason(name, case)
        elif name == "handle" and case.assignee_kind == "partner":
            self._ask_items(case)  # 政企共管: how many bikes the partner's team moved
        else:
            self.act(case.id, name, version=case.version)

    def _ask_items(self, case: CaseView) -> None:
        def done(n: str | None) -> None:
            if n is not None and str(n).strip().isdigit():
                self._record_items(case, int(str(n).strip()))

        self.push_screen(AskScreen(self.t("partner.ask", id=case.id), integer=True), done)

    @work(thread=True, group="act", exit_on_error=False)
    def _record_items(self, case: CaseView, items: int) -> None:
        """The count first (the case is on scene), then the handling itself."""
        from tafang.store.partners import record_items

        try:
            record_items(self.store, case.id, items, self.actor)
        except Refused as e:
            self.call_from_thread(self.notify, str(e), severity="warning")
            return
        self.call_from_thread(self.act, case.id, "handle", version=case.version)

    def _confirm_void(self, case: CaseView) -> None:
        """Voiding a case an officer is already out on throws their trip away: ask first."""
        who = self.vm.assignee(case) or "—"
        question = self.t("confirm.void", id=case.id, who=who)
        words = (self.t("confirm.hint"), self.t("confirm.yes"), self.t("confirm.no"))

        def answer(yes: bool | None) -> None:
            if yes:
                self.action_move("void", case, confirmed=True)

        self.push_screen(ConfirmScreen(question, *words), answer)

    def _ask_reason(self, name: str, case: CaseView) -> None:
        prompt = self.t("reason.prompt", action=self.t(f"action.{name}"), id=case.id)

        def done(reason: str | None) -> None:
            if reason:
                self.act(case.id, name, version=case.version, reason=reason)

        self.push_screen(AskScreen(prompt), done)

    def _choose_assignee(self, case: CaseView) -> None:
        """The dispatch panel of the screen in front (dashboard or case screen), ranked."""
        try:
            panel = self.screen.query_one(DispatchPanel)
        except NoMatches:
            return
        choices = rank(case, self.state.officers, self.d, self.t)
        self._dispatching = case
        panel.open(
            case.id,
            Text(self.t("assign.title", id=case.id, title=safe(case.display_title))),
            choices,
        )

    def on_dispatch_panel_picked(self, m: DispatchPanel.Picked) -> None:
        case, self._dispatching = self._dispatching, None
        self._unfocus_panel()
        if case is not None and case.id == m.case_id:
            self.act(case.id, _dispatch_move(case.status), version=case.version, to=m.code)

    def on_dispatch_panel_closed(self, _m: DispatchPanel.Closed) -> None:
        self._dispatching = None
        self._unfocus_panel()

    def _unfocus_panel(self) -> None:
        """Focus back where the dispatcher works: the queue, or the case screen itself."""
        if self.screen is self.dash:
            self.dash.queue.focus()
        else:
            self.screen.set_focus(None)

    def _ask_target(self, case: CaseView) -> None:
        """`m`: a case marked ≈N shows its probable duplicates side by side first."""
        found = [
            (self.state.cases[s.case_id], s)
            for s in self.state.dupes.of(case.id)
            if s.case_id in self.state.cases
        ]
        if not found:
            self._type_target(case)
            return

        def chosen(into: int | None) -> None:
            if into == OTHER:
                self._type_target(case)
            elif into is not None:
                self.act(case.id, "merge", version=case.version, into=into, reason=_dup(into))

        self.push_screen(DupesScreen(case, found, self.vm, self.tz, self.t), chosen)

    def _type_target(self, case: CaseView) -> None:
        def done(target: str | None) -> None:
            if target and target.isdigit():
                into = int(target)
                self.act(case.id, "merge", version=case.version, into=into, reason=_dup(into))

        self.push_screen(AskScreen(self.t("merge.prompt", id=case.id), integer=True), done)

    def action_open(self, case_id: int | None = None) -> None:
        if case_id is None:
            case = self._need_case()
            if case is None:
                return
            case_id = case.id
        known = self.state.cases.get(case_id)
        if known is not None:
            self._show_case(known)
        else:
            self._fetch_and_open(case_id)

    @work(thread=True, group="fetch", exit_on_error=False)
    def _fetch_and_open(self, case_id: int) -> None:
        try:
            case = self.store.get(case_id)
        except Exception as e:
            self.post_message(ActionFailed("open", case_id, str(e)))
            return
        self.call_from_thread(self._show_case, case)

    def _show_case(self, case: CaseView) -> None:
        screen = self._top
        if isinstance(screen, CaseScreen):
            screen.show(case)
            return
        self.push_screen(CaseScreen(case, self.vm, self.t, self.store.timeline))

    def on_event_queue_case_chosen(self, m: EventQueue.CaseChosen) -> None:
        self.action_open(m.case_id)

    def action_new(self) -> None:
        def done(fields: dict[str, Any] | None) -> None:
            if fields:
                self._create(fields)

        self.push_screen(NewCaseScreen(self.d, self.t), done)

    @work(thread=True, group="act", exit_on_error=False)
    def _create(self, fields: dict[str, Any]) -> None:
        try:
            case = self.store.create(fields, self.actor)
        except Exception as e:
            self.post_message(ActionFailed("new", 0, f"{type(e).__name__}: {e}"))
            return
        self.post_message(ActionDone("create", case))

    def action_filter(self) -> None:
        def done(f: Filter | None) -> None:
            if f is not None:
                self.set_filter(f)

        self.push_screen(FilterScreen(self.filter, self.d, self.t), done)

    def set_filter(self, f: Filter) -> None:
        self.filter = f
        self._repaint(self.now())

    def action_clear(self) -> None:
        if self.screen is not self.dash:
            return
        if self.dash.command.has_focus:
            self.dash.command.value = ""
            self.dash.queue.focus()
            return
        if self.filter.active:
            self.set_filter(Filter())

    def action_map(self) -> None:
        if self.screen is not self.dash:
            return
        if self.dash.queue.has_focus:
            self.dash.query_one("#map").focus()
        else:
            self.dash.queue.focus()

    def action_command(self) -> None:
        if self.screen is self.dash:
            self.dash.command.focus()

    def action_stats(self) -> None:
        """`k`: statistics and assessment: heat map, trend, league table, their cases."""
        from tafang.console.screens.stats import StatsScreen

        self.push_screen(StatsScreen(self.store, self.d, self.t, self.now, self.vm.cell_specs()))

    # ---- joint inspections and risk points (issue 12) ------------------------------------------
    def action_inspections(self) -> None:
        """`j`: plan and track joint inspections; decide merge proposals by key."""
        from tafang.console.screens.inspections import InspectionScreen

        self.push_screen(InspectionScreen(self.store, self.actor, self.t, self.d.timezone))

    def action_risk_layer(self) -> None:
        """`x`: the map shows risk points per cell instead of case counts, and back."""
        grid = self.dash.query_one("#map", GridMap)
        if grid.markers_shown:
            grid.set_markers(None)
            self.notify(self.t("risk.layer_off"))
        else:
            self._read_risk_layer()

    @work(thread=True, group="risk", exit_on_error=False)
    def _read_risk_layer(self) -> None:
        from tafang.store.risk import counts_by_grid

        counts = counts_by_grid(self.store)
        self.vm.risk_points = counts
        markers = {g: str(n) if n < 10 else "+" for g, n in counts.items()}
        self.call_from_thread(self._show_risk_layer, markers)

    @work(thread=True, group="risk", exit_on_error=False)
    def _read_risk_points(self) -> None:
        """Risk points per grid, for the detail pane's mark (a case in such a grid)."""
        from tafang.store.risk import counts_by_grid

        self.vm.risk_points = counts_by_grid(self.store)

    def _show_risk_layer(self, markers: dict[str, str]) -> None:
        self.dash.query_one("#map", GridMap).set_markers(markers, self.t("risk.layer_on"))
        self.notify(self.t("risk.layer_on"))

    def action_help(self) -> None:
        remapped = self.d.ui.keymap  # a deployment's own keys win, as in the footer
        keys: list[tuple[str, str] | tuple[str, str, bool]] = [
            (
                remapped.get(f"tafang.{name}") or key_shown(g.key),
                self.t(f"action.{name}")
                + ("" if self.may(f"tafang.{name}") else f" ({self.t('keys.unavailable')})"),
                self.may(f"tafang.{name}"),
            )
            for name, g in GESTURES.items()
        ]
        keys += [
            ("esc", self.t("action.clear")),
            ("tab", self.t("keys.tab")),
            ("ctrl+p", self.t("palette.name")),
            ("ctrl+q", self.t("action.quit")),
        ]
        self.push_screen(HelpScreen(keys, self.t))

    # ---- map -----------------------------------------------------------------------------------
    def on_grid_map_cell_chosen(self, m: GridMap.CellChosen) -> None:
        """Picking a cell shows only its cases; esc clears."""
        self.set_filter(Filter(cell=m.grid_code))
        self.dash.queue.focus()

    def on_squad_panel_officer_chosen(self, m: SquadPanel.OfficerChosen) -> None:
        """Enter on an officer shows the cases in their hands."""
        self.set_filter(Filter(text=m.code))
        self.dash.queue.focus()

    def on_event_queue_cursor_moved(self, m: EventQueue.CursorMoved) -> None:
        """Mark the case's cell on the map once the cursor rests (not on every key repeat:
        repainting the map with each step would double the cost of navigation)."""
        if self._mark_timer is not None:
            self._mark_timer.stop()
        self._mark_timer = self.set_timer(0.15, partial(self._mark_cell, m.case_id))

    def _mark_cell(self, case_id: int | None) -> None:
        self._mark_timer = None
        case = self.state.cases.get(case_id) if case_id is not None else None
        if self.dash.ready and self.dash.is_attached:
            with suppress(NoMatches):  # the app may be closing
                self.dash.map.mark(case.grid if case is not None else None)

    # ---- the command line --------------------------------------------------------------------
    @on(Input.Submitted, "#command")
    def _command(self, event: Input.Submitted) -> None:
        line = event.value
        event.input.value = ""
        self.dash.queue.focus()
        if line.strip():
            self.run_command(line)

    def run_command(self, line: str) -> None:
        """Execute one line of dispatcher shorthand (see `parse_command`)."""
        cmd = parse_command(line, self.t)
        if isinstance(cmd, str):
            self.notify(safe(cmd), severity="warning", markup=False)
            return
        if cmd.action == "filter":
            self.set_filter(Filter(text=cmd.text))
            return
        if cmd.action == "open":
            self.action_open(cmd.case_id)
            return
        assert cmd.case_id is not None
        if self._refuse_early(cmd.action):
            return
        known = self.state.cases.get(cmd.case_id)
        move = MOVES[cmd.action]
        if (move.arg == "to" and cmd.to is None) or (move.reason and not cmd.reason):
            if known is not None:  # ask for what the line left out
                self.action_move(cmd.action, known)
            else:
                self.notify(self.t("command.usage", usage=usage(cmd.action)), markup=False)
            return
        name = cmd.action
        if name == "dispatch":
            name = _dispatch_move(known.status if known is not None else None)
        reason = cmd.reason or (_dup(cmd.into) if cmd.into is not None else "")
        version = known.version if known is not None else None
        self.act(cmd.case_id, name, version=version, to=cmd.to, into=cmd.into, reason=reason)


def _dispatch_move(status: str | None) -> str:
    """The dispatch key sends a case out, or elsewhere when it is out already."""
    return "reassign" if status in MOVES["reassign"].starts else "dispatch"


def _dup(target: int) -> str:
    return f"duplicate of {target}"


def _ui_action(store_action: str) -> str:
    return {"reassign": "dispatch", "create": "new"}.get(store_action, store_action)
