"""The console's shift actions, mixed into `TafangApp`: the squad panel's duty keys, the
roster and handover screen, and the spoken alarm (灵活语音).

Writes run in thread workers (the store's rules decide, store/duty.py and store/moves.py);
the spoken alarm runs its command in its own thread (console/voice.py) and obeys the alert
mute (`z`); without the command it says so once and rings the bell instead.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Any

from textual import work

if TYPE_CHECKING:
    from tafang.console.voice import Announcer
    from tafang.store.views import CaseView

PRIORITY_FIRST = {"critical": 0, "urgent": 1}


class ShiftActions:
    """Mixin for TafangApp (it supplies store, d, t, tz, actor, state, dash, now, notify…)."""

    voice: Announcer | None = None
    voice_missing: bool = False

    # ---- duty ------------------------------------------------------------------------------
    def action_duty(self) -> None:
        """`b` on the squad panel: the officer under the cursor on a break, or back."""
        from tafang.store.duty import PANEL_CYCLE

        self._duty_key(lambda duty: PANEL_CYCLE[duty])

    def action_duty_off(self) -> None:
        """`B` on the squad panel: the officer off duty, or on duty again."""
        self._duty_key(lambda duty: "on_duty" if duty == "off_duty" else "off_duty")

    def _duty_key(self, next_duty: Any) -> None:
        app: Any = self
        panel = app.dash.squads if app.dash.ready else None
        code = panel.cursor_code if panel is not None and app.focused is panel else None
        if code is None:
            app.notify(app.t("duty.focus"), severity="warning", markup=False)
            return
        officer = next((o for o in app.state.officers if o.code == code), None)
        if officer is None:
            return
        self._duty_worker(code, next_duty(officer.duty))

    @work(thread=True, group="duty", exit_on_error=False)
    def _duty_worker(self, code: str, duty: str) -> None:
        from tafang.console.messages import StoreChanged
        from tafang.store.cases import Refused

        app: Any = self
        try:
            app.store.set_officer_status(code, duty, app.actor)
            officers = app.store.officers()
        except Refused as e:
            app.call_from_thread(self._say, app.t.refusal(e, app.tz), "warning")
            return
        except Exception as e:  # the store is away: say so, never crash
            app.call_from_thread(self._say, f"{type(e).__name__}: {e}", "error")
            return
        words = app.t("duty.done", officer=code, duty=app.t(f"officer.{duty}"))
        app.call_from_thread(self._say, words, "information")
        app.post_message(StoreChanged([], officers))

    def _say(self, text: str, severity: str) -> None:
        from tafang.widgets.text import safe

        app: Any = self
        app.notify(safe(text), severity=severity, markup=False, timeout=4)

    # ---- roster and handover -----------------------------------------------------------------
    def action_handover(self) -> None:
        """`t`: today's roster and the handover (交接班)."""
        from tafang.console.screens.handover import HandoverScreen

        app: Any = self
        app.push_screen(HandoverScreen(app.store, app.actor, app.t, app.tz, app.now))

    # ---- the spoken alarm --------------------------------------------------------------------
    def voice_start(self) -> None:
        """On mount: the announcer when `[voice] enabled`; a missing command said once."""
        from tafang.console.voice import Announcer

        app: Any = self
        v = app.d.voice
        if not v.enabled:
            return
        self.voice = Announcer(list(v.command), v.min_interval)
        if not self.voice.available:
            self.voice_missing = True
            app.notify(
                app.t("voice.missing", command=v.command[0]), severity="warning", markup=False
            )

    def announce_new(self, cases: Iterable[CaseView]) -> None:
        """New critical cases, said (call before the state takes them: new = unknown yet)."""
        app: Any = self
        if self.voice is None or not app.d.voice.critical:
            return
        known = app.state.cases
        fresh = [c for c in cases if c.id not in known and c.priority == "critical" and c.is_open]
        if fresh:
            self._speak("critical", fresh)

    def announce_breaches(self, newly: Collection[int]) -> None:
        """Newly breached cases, said: critical first, the first named, the rest counted."""
        app: Any = self
        if self.voice is None or not app.d.voice.breaches or not newly:
            return
        found = (app.state.cases.get(cid) for cid in newly)
        cases = sorted(
            (c for c in found if c is not None), key=lambda c: PRIORITY_FIRST.get(c.priority, 2)
        )
        if cases:
            self._speak("breach", cases)

    def _speak(self, kind: str, cases: list[CaseView]) -> None:
        from tafang.console.voice import sentence

        app: Any = self
        now = app.now()
        if app.muted_until is not None and now < app.muted_until:
            return
        if self.voice is None:
            return
        if not self.voice.available:
            app.bell()  # absent the command: the bell
            return
        late = -app.store.clocks.clock_state(cases[0], now).remaining_seconds
        self.voice.say(sentence(kind, cases, app.d, app.t, late))
