"""The view-model: store views turned into the plain rows and words the widgets draw.

Pure (no I/O): the poll thread builds the first load's rows with it, the UI thread the rest.
The SLA clock of a row comes from the store's one rule (`ClockRules.clock_state`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tafang.console.i18n import Strings
from tafang.console.queue_filter import Filter
from tafang.sla.policy import Policy
from tafang.store.config import Deployment
from tafang.store.views import CaseView, OfficerView
from tafang.widgets.rows import CellSpec, OfficerRow, QueueRow

DAEMON_STALE = timedelta(seconds=15)


class ViewModel:
    """Turns store views into widget rows in the UI language (pure: no I/O)."""

    def __init__(self, deployment: Deployment, strings: Strings) -> None:
        self.d = deployment
        self.t = strings
        self.tz = ZoneInfo(deployment.timezone)
        self.at_risk = deployment.sla.at_risk
        self.channels = {c.code: strings.pick(c.name, c.name_en) for c in deployment.channels}
        self.categories = {c.code: strings.pick(c.name, c.name_en) for c in deployment.categories}
        self.circle_names = {c.code: c.name for c in deployment.tower.enforcement_circles}
        self.officer_names = {o.code: o.name for s in deployment.squads for o in s.officers}
        self.squad_names = {s.code: strings.pick(s.name, s.name_en) for s in deployment.squads}
        self.partner_names = {p.code: strings.pick(p.name, p.name_en) for p in deployment.partners}
        self.rules = Policy(deployment)  # the store's light, over working-hour calendars

    def assignee(self, case: CaseView) -> str:
        code = case.assignee
        if not code:
            return ""
        if case.assignee_kind == "officer":
            return f"{code} {self.officer_names.get(code, '')}".strip()
        if case.assignee_kind == "squad":
            return self.squad_names.get(code, code)
        return self.partner_names.get(code, code)

    def describe(self, f: Filter) -> str:
        """A filter in words for the header: names and labels, not codes."""
        cell = self.d.grids_by_code.get(f.cell)
        parts = [
            self.t(f"status.{f.status}") if f.status else "",
            self.channels.get(f.channel, f.channel),
            self.circle_names.get(f.circle, f.circle),
            cell.label if cell else f.cell,
            f.text,
        ]
        return " ".join(p for p in parts if p)

    def grid_label(self, case: CaseView) -> str:
        g = self.d.grids_by_code.get(case.grid or "")
        if g is not None:
            return g.label
        raw = case.raw_fields.get("grid")
        return "?" + (str(raw) if raw not in (None, "") else "")

    def category_name(self, case: CaseView) -> str:
        if case.category and case.category in self.categories:
            return self.categories[case.category]
        raw = case.raw_fields.get("category")
        return "?" + (str(raw) if raw not in (None, "") else "")

    def queue_row(self, case: CaseView, now: datetime) -> QueueRow:
        """The queue's row of a case; its clock as the store's rule reads it (`clock_state`):
        a held case keeps the clock it had at the hold, still (`held_at`)."""
        c = self.rules.clock_state(case, now)
        return QueueRow(
            case_id=case.id,
            version=case.version,
            status=case.status,
            status_label=self.t(f"status.{case.status}"),
            channel=self.channels.get(case.source, case.source),
            category=self.category_name(case),
            grid_label=self.grid_label(case),
            grid_code=case.grid,
            title=case.display_title,
            assignee=self.assignee(case),
            clock=c.clock,
            due=c.due,
            budget_seconds=c.budget_seconds or None,
            held_at=c.at if c.paused and c.clock else None,
            escalation_level=case.escalation_level,
            triage=case.triage,
            supervised=case.supervised,
            priority=case.priority,
        )

    def cell_specs(self) -> list[CellSpec]:
        return [
            CellSpec(
                g.code,
                g.label,
                g.circle,
                self.circle_names.get(g.circle, g.circle),
                g.half,
                g.row,
                g.col,
            )
            for g in self.d.tower.grids
        ]

    def officer_rows(self, officers: Iterable[OfficerView]) -> list[OfficerRow]:
        return [
            OfficerRow(
                code=o.code,
                name=o.name,
                squad=o.squad,
                squad_name=self.squad_names.get(o.squad, o.squad),
                agency=self.t.known(f"agency.{o.agency}", o.agency),
                group=o.group,
                status=o.status,
                status_label=self.t(f"officer.{o.status}"),
                case_id=o.case_id,
                since=o.status_since,
                load=o.load,
            )
            for o in officers
        ]


def daemon_text(t: Strings, beat: datetime | None, now: datetime, tz: ZoneInfo) -> tuple[str, bool]:
    """Header words for the daemon and whether it is healthy."""
    if beat is not None and now - beat <= DAEMON_STALE:
        return t("header.daemon_ok"), True
    if beat is None:
        return t("header.daemon_down"), False
    return t("header.daemon_down_since", since=beat.astimezone(tz).strftime("%H:%M")), False
