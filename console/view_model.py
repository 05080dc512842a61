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
from tafang.store.clocks import CLOCKS, RUNNING, light_at
from tafang.store.config import Deployment
from tafang.store.views import CaseView, OfficerView, TimelineEntry
from tafang.widgets.countdown import countdown
from tafang.widgets.rows import (
    CaseDetail,
    CellSpec,
    ClockLine,
    OfficerRow,
    PartnerRow,
    QueueRow,
    Summary,
    SummaryEntry,
)

DAEMON_STALE = timedelta(seconds=15)
RECENT = 5
"""Timeline entries the detail pane shows (the newest)."""
_MET_AT = {
    "respond": "acknowledged_at",
    "dispatch": "dispatched_at",
    "arrive": "arrived_at",
    "resolve": "handled_at",
}
_OUT = ("en_route",)
_BUSY = ("on_scene",)


class ViewModel:
    """Turns store views into widget rows in the UI language (pure: no I/O)."""

    def __init__(self, deployment: Deployment, strings: Strings) -> None:
        self.d = deployment
        self.t = strings
        self.tz = ZoneInfo(deployment.timezone)
        self.at_risk = deployment.sla.at_risk
        self.channels = {c.code: strings.pick(c.name, c.name_en) for c in deployment.channels}
        self.categories = {c.code: strings.pick(c.name, c.name_en) for c in deployment.categories}
        self.circle_names = {
            c.code: strings.pick(c.name, c.name_en) for c in deployment.tower.enforcement_circles
        }
        self.officer_names = {o.code: o.name for s in deployment.squads for o in s.officers}
        self.squad_names = {s.code: strings.pick(s.name, s.name_en) for s in deployment.squads}
        self.partner_names = {p.code: strings.pick(p.name, p.name_en) for p in deployment.partners}
        self.group_names = {g.code: strings.pick(g.name, g.name_en) for g in deployment.case_groups}
        self.rules = Policy(deployment)  # the store's light, over working-hour calendars
        self.risk_points: dict[str, int] = {}  # risk points per grid code (the app reads them)

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


def local(vm: ViewModel, at: datetime | None, fmt: str = "%H:%M:%S") -> str:
    """An instant in the deployment's time zone (the store keeps UTC)."""
    return at.astimezone(vm.tz).strftime(fmt) if at is not None else "—"


def timeline_words(vm: ViewModel, e: TimelineEntry) -> str:
    """A record entry in plain words: the action's label, then what it changed (status,
    assignee, level, clock, reason); technical keys (due_at, lateness_ms …) stay out."""
    t, d = vm.t, e.detail
    parts = [t.known(f"action.{e.action}", e.action)]
    if d.get("by_hand"):
        parts.append(t("timeline.by_hand"))
    if d.get("catch_up"):
        parts.append(t("timeline.catch_up"))
    if isinstance(d.get("clock"), str):
        late = d.get("lateness_ms")
        late_s = countdown(e.at, e.at - timedelta(milliseconds=float(late))) if late else ""
        clock = t.known(f"clock.{d['clock']}", d["clock"])
        parts.append(t("timeline.clock", clock=clock, late=late_s).strip())
    if isinstance(d.get("level"), int):
        parts.append(t("timeline.level", level=t(f"level.{d['level']}")))
    if isinstance(d.get("assignee"), str) and d["assignee"]:
        parts.append(t("timeline.assignee", name=_assignee_name(vm, d["assignee"])))
    if isinstance(d.get("into"), int):
        parts.append(t("timeline.into", id=d["into"]))
    if "from" in d and isinstance(d.get("to"), str) and d["to"] != d["from"]:
        parts.append(t("timeline.status", status=t.known(f"status.{d['to']}", d["to"])))
    if isinstance(d.get("reason"), str) and d["reason"]:
        parts.append(t("timeline.reason", reason=d["reason"]))
    return " ".join(parts)


def _assignee_name(vm: ViewModel, code: str) -> str:
    if code in vm.officer_names:
        return f"{code} {vm.officer_names[code]}"
    return vm.squad_names.get(code) or vm.partner_names.get(code, code)


def _when(vm: ViewModel, at: datetime, now: datetime) -> str:
    """A deadline in local time, with its date when it is not today (a resolve clock)."""
    same_day = at.astimezone(vm.tz).date() == now.astimezone(vm.tz).date()
    return local(vm, at, "%H:%M:%S" if same_day else "%m-%d %H:%M")


def clock_lines(vm: ViewModel, case: CaseView, now: datetime) -> tuple[ClockLine, ...]:
    """Every clock of a case that has a deadline: running ones with their light (the store's
    `light_at`), met ones with the time they were met."""
    t = vm.t
    status = case.hold_from or "acknowledged" if case.status == "held" else case.status
    at = case.held_at or now if case.status == "held" else now
    budgets = vm.rules.budgets(case.category, case.priority or "normal")
    out = []
    for c in CLOCKS:
        due = getattr(case, f"{c}_due")
        name = t(f"clock.{c}")
        met = getattr(case, _MET_AT[c])
        if due is not None and c in RUNNING.get(status, ()):
            light = light_at(due, float(budgets.get(c, 0)) or None, vm.at_risk, at)
            text = t("case.clock_due", clock=name, at=_when(vm, due, now))
            out.append(ClockLine(name, text, due, light))
        elif met is not None:
            out.append(
                ClockLine(
                    name, t("case.clock_met", clock=name) + " " + local(vm, met), None, "none"
                )
            )
    return tuple(out)


def case_detail(
    vm: ViewModel, case: CaseView, now: datetime, timeline: list[TimelineEntry] | None
) -> CaseDetail:
    """The detail pane's data for a case; `timeline` None while the record is being read."""
    t = vm.t
    heading = " · ".join(
        [t("case.title", id=case.id), t(f"status.{case.status}"), t(f"priority.{case.priority}")]
    )
    fields = (
        (t("field.category"), vm.category_name(case)),
        (t("field.grid"), _place(vm, case)),
        (t("field.location"), case.location or "—"),
        (t("field.reporter"), case.reporter or "—"),
        (t("field.source"), vm.channels.get(case.source, case.source)),
        (t("field.received_at"), local(vm, case.received_at, "%m-%d %H:%M:%S")),
        (t("field.assignee"), vm.assignee(case) or "—"),
    )
    flags = []  # only what is set: a mark that says "not supervised" is noise beside a queue
    if case.supervised:
        flags.append((t("case.supervised_yes"), "breached"))
    if case.triage:
        flags.append((t("case.triage_yes", reason=case.triage_reason or "?"), "at_risk"))
    if case.escalation_level:
        level = t(f"level.{case.escalation_level}")
        flags.append((f"{t('field.escalation')} {level}", "breached"))
    if case.grid and vm.risk_points.get(case.grid):  # 风险化解前置: the grid has risk points
        flags.append((t("risk.case_flag", n=vm.risk_points[case.grid]), "at_risk"))
    recent: tuple[tuple[str, str], ...] = (("", t("case.loading")),)
    if timeline is not None:
        recent = tuple((local(vm, e.at), timeline_words(vm, e)) for e in timeline[-RECENT:])
    return CaseDetail(
        case_id=case.id,
        version=case.version,
        heading=heading,
        title=case.display_title,
        fields=fields,
        clocks_title=t("case.clocks"),
        clocks=clock_lines(vm, case, now),
        timeline_title=t("case.recent"),
        timeline=recent,
        hint=t("case.hint"),
        held_at=case.held_at if case.status == "held" else None,
        flags=tuple(flags),
    )


def _place(vm: ViewModel, case: CaseView) -> str:
    g = vm.d.grids_by_code.get(case.grid or "")
    label = vm.grid_label(case)
    return f"{label} {vm.circle_names.get(g.circle, '')}".strip() if g else label


def summary(
    vm: ViewModel, officers: Iterable[OfficerRow], partners: Iterable[PartnerRow]
) -> Summary:
    """Free / out / on scene per squad and per case group, and the partner teams."""
    squads: dict[str, list[int]] = {}
    groups: dict[str, list[int]] = {}
    for o in officers:
        for key, table in ((o.squad_name, squads), (vm.group_names.get(o.group, o.group), groups)):
            n = table.setdefault(key, [0, 0, 0])
            if o.status == "available":
                n[0] += 1
            elif o.status in _OUT:
                n[1] += 1
            elif o.status in _BUSY:
                n[2] += 1
    return Summary(
        squads=tuple(SummaryEntry(k, *v) for k, v in squads.items()),
        groups=tuple(SummaryEntry(k, *v) for k, v in groups.items()),
        partners=tuple(partners),
    )
