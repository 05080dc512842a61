"""`j`: joint inspections (联合检查) — plan, track, and decide merge proposals by key.

The plans table shows every visit (planned, merged, inspected) with its departments and
enterprise; under it, the first pending merge proposal (a: accept, d: decline — both on the
record), and the checklist of the highlighted plan with keys for each item's result. Every
read and write runs in a thread worker; the store holds the rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from tafang.console.i18n import Strings
from tafang.console.keymap import GESTURES
from tafang.console.screens.confirm import relabel
from tafang.store import inspections as ins
from tafang.store.cases import Actor, Store
from tafang.widgets.text import safe
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static


@dataclass(frozen=True, slots=True)
class Board:
    """What the screen shows, read in one go by a worker."""

    plans: list[ins.PlanView]
    names: dict[int, tuple[str, str]]  # enterprise id -> (name, risk grade)
    proposals: list[ins.MergeView]
    rate: ins.JointRate
    items: list[ins.ItemView]


class BoardRead(Message):
    def __init__(self, board: Board) -> None:
        super().__init__()
        self.board = board


def _ordered(plans: list[ins.PlanView]) -> list[ins.PlanView]:
    """Open plans first, soonest first; then the rest, latest first."""
    open_ = sorted((p for p in plans if p.status == "planned"), key=lambda p: p.window_from)
    rest = sorted((p for p in plans if p.status != "planned"), key=lambda p: p.window_from)
    return open_ + rest[::-1]


def read_board(store: Store, plan_id: int | None, now: datetime) -> Board:
    """Plans, names, pending proposals, this year's rate, the chosen plan's items."""
    from tafang.store.enterprises import names_of

    year = datetime(now.year, 1, 1, tzinfo=UTC)
    plans = ins.plans(store)
    first = _ordered(plans)[:1]
    chosen = plan_id if plan_id is not None else (first[0].id if first else None)
    return Board(
        plans,
        names_of(store, {p.enterprise_id for p in plans}),
        ins.proposals(store),
        ins.joint_rate(store, year, now + timedelta(seconds=1)),
        ins.items(store, chosen) if chosen is not None else [],
    )


class InspectionScreen(Screen[None]):
    """Joint inspections: plans, merge proposals, checklist results."""

    CSS_PATH = "../inspections.tcss"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "close", "Back", id="inspection.back"),
        Binding("a", "decide(True)", "Accept merge", id="inspection.accept"),
        Binding("d", "decide(False)", "Decline merge", id="inspection.decline"),
        Binding("n", "new", "New plan", id="inspection.new"),
        Binding("1", "result('pass')", "Complies", id="inspection.pass"),
        Binding("2", "result('fail')", "Fails", id="inspection.fail"),
        Binding("3", "result('na')", "N/A", id="inspection.na"),
        Binding("c", "complete", "Visit done", id="inspection.complete"),
    ]
    # The dashboard's keys (moves, j, x, …) do nothing here: a case move from this screen
    # would act on a case nobody sees, and `j` would open the screen again.
    BINDINGS += [
        Binding(g.key, "nothing", show=False, id=f"inspection.shadow.{name}")
        for name, g in GESTURES.items()
        if g.key not in {"a", "d", "n", "c", "question_mark"}
    ]
    KEY_WORDS: ClassVar[dict[str, str]] = {
        "inspection.back": "inspection.key.back",
        "inspection.accept": "inspection.key.accept",
        "inspection.decline": "inspection.key.decline",
        "inspection.new": "inspection.key.new",
        "inspection.pass": "inspection.outcome.pass",
        "inspection.fail": "inspection.outcome.fail",
        "inspection.na": "inspection.outcome.na",
        "inspection.complete": "inspection.key.complete",
    }

    def __init__(self, store: Store, actor: Actor, strings: Strings, tz: str) -> None:
        super().__init__()
        self.store = store
        self.actor = actor
        self.t = strings
        self.tz = ZoneInfo(tz)
        self.board: Board | None = None
        self.plan_id: int | None = None
        relabel(self, {b: strings(k) for b, k in self.KEY_WORDS.items()})

    def compose(self) -> ComposeResult:
        yield Static(self.t("inspection.title"), id="inspection-title")
        yield Static("", id="inspection-rate")
        yield DataTable(id="inspection-plans", cursor_type="row", zebra_stripes=True)
        yield Static("", id="inspection-proposal")
        yield DataTable(id="inspection-items", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        t = self.t
        plans = self.query_one("#inspection-plans", DataTable)
        plans.add_columns(
            "#",
            t("inspection.status"),
            t("inspection.window"),
            t("inspection.departments"),
            t("inspection.risk_grade"),
            t("inspection.enterprise"),
        )
        items = self.query_one("#inspection-items", DataTable)
        words = ("inspection.department", "inspection.result", "inspection.item")
        items.add_columns("#", *(t(w) for w in words))
        self.refresh_board()

    @work(thread=True, exclusive=True, group="inspection-read", exit_on_error=False)
    def refresh_board(self) -> None:
        board = read_board(self.store, self.plan_id, datetime.now(UTC))
        self.post_message(BoardRead(board))

    def on_board_read(self, m: BoardRead) -> None:
        self.board = b = m.board
        r = b.rate
        rate = f"{r.rate:.0%}" if r.rate is not None else "–"
        line = self.t(
            "inspection.rate_line",
            rate=rate,
            joint=r.joint,
            visits=r.visits,
            target=f"{ins.TARGET:.0%}",
            xihu=f"{ins.XIHU_2024:.0%}",
        )
        self.query_one("#inspection-rate", Static).update(
            f"{self.t('inspection.rate')}: {line} · {self.t('inspection.saved', n=r.merged)}"
        )
        self._fill_plans(b)
        self._fill_items(b)
        prop = self.query_one("#inspection-proposal", Static)
        if b.proposals:
            p = b.proposals[0]
            text = self.t("inspection.merge_proposal", plan=p.plan_id, other=p.other_id)
            prop.update(f"{text}  [{self.t('inspection.merge_keys')}]")
            prop.set_class(True, "pending")
        else:
            prop.update(self.t("inspection.no_proposals"))
            prop.set_class(False, "pending")

    def _days(self, p: ins.PlanView) -> str:
        first = p.window_from.astimezone(self.tz).date()
        last = (p.window_to.astimezone(self.tz) - timedelta(days=1)).date()
        return f"{first:%m-%d}…{last:%m-%d}"

    def _fill_plans(self, b: Board) -> None:
        table = self.query_one("#inspection-plans", DataTable)
        table.clear()
        for p in _ordered(b.plans):
            state = self.t(f"inspection.state.{p.status}")
            if p.merged_into:
                state += f" → {p.merged_into}"
            depts = "、".join(self.t(f"agency.{d}") for d in p.departments)
            name, grade = b.names.get(p.enterprise_id, ("?", "?"))
            row = (str(p.id), state, self._days(p), depts, grade, safe(name))
            table.add_row(*row, key=str(p.id))
        if self.plan_id is not None and str(self.plan_id) in table.rows:
            table.move_cursor(row=table.get_row_index(str(self.plan_id)))

    def _fill_items(self, b: Board) -> None:
        table = self.query_one("#inspection-items", DataTable)
        table.clear()
        for it in b.items:
            table.add_row(
                str(it.id),
                self.t(f"agency.{it.department}"),
                self.t(f"inspection.outcome.{it.result}"),
                safe(it.text),
                key=str(it.id),
            )

    def on_data_table_row_highlighted(self, m: DataTable.RowHighlighted) -> None:
        if m.data_table.id != "inspection-plans" or m.row_key.value is None:
            return
        chosen = int(m.row_key.value)
        if chosen != self.plan_id:
            self.plan_id = chosen
            self.refresh_board()

    # ---- writes (each in a worker; a refusal is said, the board re-read) ---------------------
    @work(thread=True, group="inspection-act", exit_on_error=False)
    def _act(self, what: str, fn: Any) -> None:
        try:
            fn()
        except Exception as e:  # Refused, NotFound, the store down: say it
            self.app.call_from_thread(self.notify, f"{what}: {e}", severity="warning")
        self.refresh_board()

    def action_decide(self, accept: bool) -> None:
        if not self.board or not self.board.proposals:
            self.notify(self.t("inspection.no_proposals"))
            return
        p = self.board.proposals[0]
        self._act("merge", lambda: ins.decide(self.store, p.id, accept, self.actor))
        key = "inspection.accepted" if accept else "inspection.declined"
        self.notify(self.t(key, plan=p.plan_id, other=p.other_id))

    def action_result(self, result: str) -> None:
        table = self.query_one("#inspection-items", DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if key is not None:
            item = int(key)
            self._act("result", lambda: ins.record_result(self.store, item, result, self.actor))

    def action_complete(self) -> None:
        if self.plan_id is not None:
            pid = self.plan_id
            self._act("done", lambda: ins.complete(self.store, pid, self.actor))

    def action_new(self) -> None:
        from tafang.console.screens.inspection_form import PlanForm

        def done(form: dict[str, Any] | None) -> None:
            if form:
                self._act("plan", lambda: self._create(form))

        self.app.push_screen(PlanForm(self.t), done)

    def _create(self, form: dict[str, Any]) -> None:
        from tafang.store.cases import NotFound
        from tafang.store.enterprises import find

        e = find(self.store, form["enterprise"])
        if e is None:
            raise NotFound(f"no enterprise {form['enterprise']!r} in the register")
        ins.create_plan(
            self.store,
            e.id,
            departments=form["departments"],
            items=form["items"],
            first=form["first"],
            last=form["last"],
            actor=self.actor,
        )

    def action_nothing(self) -> None:
        """A dashboard key pressed here."""

    def action_close(self) -> None:
        self.app.pop_screen()
