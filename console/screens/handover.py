"""`t`: today's roster and the handover (交接班) — open, held, breached and 督办 cases and the
notes for the next shift; `a` is the incoming 带班领导 taking it over, `n` a note.

The screen reads and writes through the store (store/handover.py) in thread workers; what it
shows is one Rich Text built by `handover_text`, a pure function tested without a screen.
Case titles and notes are untrusted and drawn literally.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, ClassVar

from rich.text import Text
from tafang.console.i18n import Strings
from tafang.console.shift import person
from tafang.store.config import Deployment
from tafang.store.handover import HandoverView
from tafang.store.roster import Slot
from tafang.store.views import OfficerView
from tafang.widgets.text import safe
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

LIST_MAX = 12
"""Cases listed per kind; more are counted."""


def _name(d: Deployment, t: Strings, code: str) -> str:
    op = next((o for o in d.operators if o.code == code), None)
    return f"{code} {person(t.pick(op.name, op.name_en))}" if op else (code or "—")


def roster_text(
    slots: Sequence[Slot], current: str, officers: Sequence[OfficerView], d: Deployment, t: Strings
) -> Text:
    """Today's shifts: hours, 带班领导, dispatchers, squads with who is on duty, on a break or
    off; the shift on now marked."""
    out = Text()
    out.append(t("handover.roster") + "\n", style="bold")
    for s in slots:
        sh = s.shift
        mark = "▶ " if s.key == current else "  "
        out.append(
            f"{mark}{t.pick(sh.name, sh.name_en)} {s.hours}", style="bold" if mark.strip() else ""
        )
        out.append(f"  {t('handover.leader')} {_name(d, t, sh.leader)}")
        if sh.dispatchers:
            out.append(
                f"  {t('handover.dispatchers')} "
                + ", ".join(_name(d, t, c) for c in sh.dispatchers)
            )
        out.append("\n")
        for q in sh.squads:
            squad = d.squads_by_code.get(q)
            if squad is None:
                continue
            mine = [o for o in officers if o.squad == q]
            counts = {
                k: sum(1 for o in mine if o.duty == k) for k in ("on_duty", "on_break", "off_duty")
            }
            parts = " · ".join(f"{t(f'officer.{k}')} {n}" for k, n in counts.items())
            out.append(
                f"     {t.pick(squad.name, squad.name_en)}  {parts}\n",
                style="dim" if not mark.strip() else "",
            )
    return out


def handover_text(v: HandoverView, d: Deployment, t: Strings, tz: tzinfo) -> Text:
    """The handover: its shifts and leader, acknowledged or not, the cases by kind, notes."""
    h = v.handover
    out = Text()
    out.append(
        t(
            "handover.title",
            outgoing=t.pick(h.outgoing.shift.name, h.outgoing.shift.name_en),
            incoming=t.pick(h.incoming.shift.name, h.incoming.shift.name_en),
            at=h.incoming.start.astimezone(tz).strftime("%m-%d %H:%M"),
        )
        + "\n",
        style="bold",
    )
    out.append(f"{t('handover.leader')} {_name(d, t, h.leader)}  ")
    if v.ack is None:
        out.append(t("handover.not_acked") + "\n", style="bold yellow")
    else:
        at = v.ack.at.astimezone(tz).strftime("%H:%M")
        out.append(t("handover.acked", by=_name(d, t, v.ack.by), at=at) + "\n", style="green")
    out.append(
        t(
            "handover.counts",
            open=len(v.open),
            held=len(v.held),
            breached=len(v.breached),
            supervised=len(v.supervised),
        )
        + "\n"
    )
    for key, cases, style in (
        ("breached", v.breached, "red"),
        ("held", v.held, "yellow"),
        ("supervised", v.supervised, "magenta"),
    ):
        out.append(f"\n{t(f'handover.{key}')} ({len(cases)})\n", style=f"bold {style}")
        for c in cases[:LIST_MAX]:
            out.append(_case_line(c, d, t) + "\n")
        if len(cases) > LIST_MAX:
            out.append(t("handover.more", n=len(cases) - LIST_MAX) + "\n", style="dim")
    out.append(f"\n{t('handover.notes')} ({len(v.notes)})\n", style="bold")
    for n in v.notes:
        out.append(f"  {n.at.astimezone(tz).strftime('%H:%M')} {safe(n.by)}: ", style="dim")
        out.append(safe(n.text) + "\n")
    if not v.notes:
        out.append(f"  {t('handover.no_notes')}\n", style="dim")
    return out


def _case_line(c: Any, d: Deployment, t: Strings) -> str:
    grid = d.grids_by_code.get(c.grid or "")
    cat = d.categories_by_code.get(c.category or "")
    return (
        f"  #{c.id:<6} {t(f'status.{c.status}'):<6} {grid.label if grid else '?':<6} "
        f"{t.pick(cat.name, cat.name_en) if cat else '?'}  {c.assignee or '—'}  "
        f"{safe(c.display_title)[:40]}"
    )


@dataclass
class HandoverRead(Message):
    """The worker read the handover (or a write answered: `said` is the toast)."""

    view: HandoverView | None
    officers: list[OfficerView]
    said: str = ""
    severity: str = "information"


class HandoverScreen(ModalScreen[None]):
    """The roster and the handover; reads and writes in workers, redraws on each answer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,t", "close", "Close", id="handover.close"),
        Binding("a", "ack", "Acknowledge", id="handover.ack"),
        Binding("n", "note", "Note", id="handover.note"),
    ]

    def __init__(self, store: Any, actor: Any, strings: Strings, tz: tzinfo, now: Any) -> None:
        super().__init__()
        self.store, self.actor, self.t, self.tz, self.now = store, actor, strings, tz, now
        self.view: HandoverView | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="handover-box", classes="modal-box"):
            yield Static(Text(self.t("handover.loading")), id="handover-roster")
            yield Static("", id="handover-body")
            yield Static(Text(self.t("handover.keys"), style="dim"), id="handover-keys")

    def on_mount(self) -> None:
        self._read()

    @work(thread=True, exclusive=True, group="handover", exit_on_error=False)
    def _read(self, said: str = "", severity: str = "information") -> None:
        from tafang.store import handover

        try:
            view = handover.read(self.store, self.now())
            officers = self.store.officers()
        except Exception as e:  # the store is away: say so, keep the screen
            self.post_message(HandoverRead(None, [], f"{type(e).__name__}: {e}", "error"))
            return
        self.post_message(HandoverRead(view, officers, said, severity))

    def on_handover_read(self, m: HandoverRead) -> None:
        if m.said:
            self.app.notify(safe(m.said), severity=m.severity, markup=False)  # type: ignore[arg-type]
        if m.view is None:
            return
        self.view = m.view
        from tafang.store.roster import day_slots, slot_at

        d = self.store.d
        now = m.view.at
        slots = day_slots(d, now.astimezone(self.tz).date())
        current = slot_at(d, now).key
        self.query_one("#handover-roster", Static).update(
            roster_text(slots, current, m.officers, d, self.t)
        )
        self.query_one("#handover-body", Static).update(handover_text(m.view, d, self.t, self.tz))

    def action_ack(self) -> None:
        self._write("ack")

    def action_note(self) -> None:
        from tafang.console.screens.ask import AskScreen

        def done(text: str | None) -> None:
            if text:
                self._write("note", text)

        self.app.push_screen(AskScreen(self.t("handover.note_prompt")), done)

    @work(thread=True, group="handover-write", exit_on_error=False)
    def _write(self, what: str, text: str = "") -> None:
        from tafang.store import handover
        from tafang.store.cases import Refused

        try:
            if what == "ack":
                handover.acknowledge(self.store, self.actor, self.now())
                said = self.t("handover.ack_done")
            else:
                handover.add_note(self.store, text, self.actor, self.now())
                said = self.t("handover.note_done")
        except Refused as e:
            self.post_message(HandoverRead(None, [], self.t.refusal(e, self.tz), "warning"))
            return
        except Exception as e:
            self.post_message(HandoverRead(None, [], f"{type(e).__name__}: {e}", "error"))
            return
        self.app.call_from_thread(self._read, said)

    def action_close(self) -> None:
        self.dismiss(None)
