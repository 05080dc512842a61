"""Joint inspections on SQLite and PostgreSQL: plans, the merge proposal, results, the rate."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from tafang.store import inspections as ins
from tafang.store.cases import Actor, Refused, Store
from tafang.store.enterprises import import_csv

from tests.conftest import migrated_sqlite
from tests.test_pg_roles import logins  # noqa: F401  (the fixture: real login roles)

ME = Actor("d01")
CHECKER = Actor("c01")
REGISTER = """credit_code,name,grid,risk_grade
914403001922038216,华为技术有限公司,N3-07,B
9144030071526726XG,腾讯科技有限公司,N3-08,C
"""


@pytest.fixture
def ents(store: Store) -> Store:
    import_csv(store, REGISTER, origin="reg.csv", actor=ME)
    return store


def _plan(store: Store, ent: int, dept: str, first: date, last: date, n: int = 2) -> ins.PlanView:
    items = [(dept, f"{dept} item {i}") for i in range(n)]
    p, _ = ins.create_plan(
        store, ent, departments=[dept], items=items, first=first, last=last, actor=ME
    )
    return p


def test_a_second_plan_in_an_overlapping_window_proposes_a_merge(ents: Store) -> None:
    a = _plan(ents, 1, "market", date(2026, 3, 2), date(2026, 3, 6))
    b, props = ins.create_plan(
        ents,
        1,
        departments=["hr"],
        items=[("hr", "劳动合同签订"), ("hr", "工资支付台账")],
        first=date(2026, 3, 5),
        last=date(2026, 3, 12),
        officers=["1-01"],
        actor=ME,
    )
    assert [(m.plan_id, m.other_id, m.status) for m in props] == [(b.id, a.id, "proposed")]
    # Another enterprise, or a window that does not overlap, proposes nothing.
    _, none1 = ins.create_plan(
        ents,
        2,
        departments=["hr"],
        items=[],
        first=date(2026, 3, 5),
        last=date(2026, 3, 6),
        actor=ME,
    )
    _, none2 = ins.create_plan(
        ents,
        1,
        departments=["fire"],
        items=[],
        first=date(2026, 3, 13),
        last=date(2026, 3, 14),
        actor=ME,
    )
    assert none1 == [] and none2 == []

    merged = ins.decide(ents, props[0].id, True, ME, reason="一次上门")
    assert merged.status == "accepted" and merged.decided_by == "d01"
    kept = ins.plan(ents, a.id)
    assert kept.departments == ("hr", "market") and kept.joint
    assert kept.officers == ("1-01",)
    # The window narrowed to the overlap: 5 and 6 March, local days.
    assert ins.window(ents.d.timezone, date(2026, 3, 5), date(2026, 3, 6)) == (
        kept.window_from,
        kept.window_to,
    )
    assert ins.plan(ents, b.id).status == "merged" and ins.plan(ents, b.id).merged_into == a.id
    assert len(ins.items(ents, a.id)) == 4 and ins.items(ents, b.id) == []
    with pytest.raises(Refused, match="already accepted"):
        ins.decide(ents, props[0].id, False, ME)
    with ents.read_engine.connect() as c:
        rec = c.execute(
            text("SELECT operator, detail FROM audit WHERE action = 'inspection.merge.accepted'")
        ).one()
    assert rec.operator == "d01" and json.loads(rec.detail)["reason"] == "一次上门"


def test_declining_keeps_two_visits_on_the_record(ents: Store) -> None:
    a = _plan(ents, 1, "market", date(2026, 3, 2), date(2026, 3, 6))
    b, props = ins.create_plan(
        ents,
        1,
        departments=["fire"],
        items=[],
        first=date(2026, 3, 6),
        last=date(2026, 3, 6),
        actor=ME,
    )
    d = ins.decide(ents, props[0].id, False, ME, reason="消防需夜查")
    assert d.status == "declined"
    assert ins.plan(ents, a.id).departments == ("market",)
    assert ins.plan(ents, b.id).status == "planned"
    with ents.read_engine.connect() as c:
        assert (
            c.execute(
                text("SELECT count(*) FROM audit WHERE action = 'inspection.merge.declined'")
            ).scalar_one()
            == 1
        )


def test_results_per_item_then_done_and_the_rate(ents: Store) -> None:
    """Hand-computed: 5 visits made in March, 3 by two or more departments: 60 %."""
    at = datetime(2026, 3, 10, 2, tzinfo=UTC)
    firsts = [date(2026, 3, 2) + timedelta(days=10 * n) for n in range(5)]
    made = [
        _plan(ents, 1 + n % 2, "market", d, d + timedelta(days=6), n=1)
        for n, d in enumerate(firsts)
    ]
    # Plans 0 and 1 get a merged partner (an hr plan each); plan 2 is planned jointly.
    for p, first in zip(made[:2], firsts, strict=False):
        _, props = ins.create_plan(
            ents,
            p.enterprise_id,
            departments=["hr"],
            items=[("hr", "社保")],
            first=first,
            last=first,
            actor=ME,
        )
        ins.decide(ents, props[0].id, True, ME)
    joint, _ = ins.create_plan(
        ents,
        2,
        departments=["market", "fire"],
        items=[("fire", "灭火器")],
        first=date(2026, 5, 1),
        last=date(2026, 5, 2),
        actor=ME,
    )
    visits = [made[0], made[1], joint, made[3], made[4]]
    with pytest.raises(Refused, match="without a result"):
        ins.complete(ents, visits[0].id, CHECKER, at=at)
    for v in visits:
        for it in ins.items(ents, v.id):
            ins.record_result(
                ents, it.id, "pass" if it.department != "hr" else "fail", CHECKER, note="x"
            )
        ins.complete(ents, v.id, CHECKER, at=at)
    assert {i.result for i in ins.items(ents, made[0].id)} == {"pass", "fail"}
    with pytest.raises(Refused, match="result must be"):
        ins.record_result(ents, 1, "maybe", CHECKER)
    r = ins.joint_rate(ents, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC))
    assert (r.joint, r.visits, r.merged) == (3, 5, 2)
    assert r.rate == pytest.approx(0.6)
    # Made visits outside the period are not counted; an empty period has no rate.
    empty = ins.joint_rate(ents, datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC))
    assert empty.visits == 0 and empty.rate is None
    # made[2] was never visited: still planned.
    assert ins.plan(ents, made[2].id).status == "planned"


def test_refusals(ents: Store) -> None:
    with pytest.raises(Refused, match="unknown"):
        ins.create_plan(
            ents,
            1,
            departments=["army"],
            items=[],
            first=date(2026, 1, 1),
            last=date(2026, 1, 2),
            actor=ME,
        )
    with pytest.raises(Refused, match="not in the register"):
        ins.create_plan(
            ents,
            99,
            departments=["hr"],
            items=[],
            first=date(2026, 1, 1),
            last=date(2026, 1, 2),
            actor=ME,
        )
    with pytest.raises(Refused, match="before it starts"):
        ins.create_plan(
            ents,
            1,
            departments=["hr"],
            items=[],
            first=date(2026, 1, 3),
            last=date(2026, 1, 2),
            actor=ME,
        )
    with pytest.raises(Refused):  # a viewer may not plan
        ins.create_plan(
            ents,
            1,
            departments=["hr"],
            items=[],
            first=date(2026, 1, 1),
            last=date(2026, 1, 2),
            actor=Actor("nobody"),
        )


# ---- the console screen (Pilot) ----------------------------------------------------------------
@pytest.fixture
def sqlite_store(tmp_path, gudang):  # type: ignore[no-untyped-def]
    from tafang.store.db import make_engine

    engine = make_engine(migrated_sqlite(tmp_path / "console.db"))
    s = Store(engine, gudang)
    import_csv(s, REGISTER, origin="reg.csv", actor=ME)
    yield s
    engine.dispose()


async def _until(pilot, cond, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    import time

    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "condition not met"
        await pilot.pause(0.02)


@pytest.mark.anyio
async def test_the_screen_accepts_a_merge_by_key_and_records_results(sqlite_store, gudang) -> None:  # type: ignore[no-untyped-def]
    from tafang.console.app import TafangApp
    from tafang.console.screens.inspections import InspectionScreen
    from textual.widgets import DataTable, Static

    s = sqlite_store
    a = _plan(s, 1, "market", date(2026, 3, 2), date(2026, 3, 6), n=1)
    b = _plan(s, 1, "hr", date(2026, 3, 4), date(2026, 3, 9), n=1)
    app = TafangApp(s, gudang, operator="d01", terminal="t", lang="en")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("j")
        await _until(pilot, lambda: isinstance(app.screen, InspectionScreen))
        screen = app.screen
        await _until(pilot, lambda: screen.board is not None and screen.board.proposals)
        text = str(screen.query_one("#inspection-proposal", Static).render())
        assert f"plans {b.id} and {a.id}" in text
        await pilot.press("a")
        await _until(pilot, lambda: not ins.proposals(s))
        assert ins.plan(s, b.id).status == "merged"
        await _until(pilot, lambda: screen.board is not None and not screen.board.proposals)
        # The kept plan's checklist: both items; 1 = complies on the first, then 2 = fails.
        items = screen.query_one("#inspection-items", DataTable)
        await _until(pilot, lambda: items.row_count == 2)
        items.focus()
        await pilot.press("1")
        await _until(pilot, lambda: ins.items(s, a.id)[0].result == "pass")
        await pilot.press("down", "2")
        await _until(pilot, lambda: {i.result for i in ins.items(s, a.id)} == {"pass", "fail"})
        await pilot.press("c")
        await _until(pilot, lambda: ins.plan(s, a.id).status == "done")
        await pilot.press("escape")
        await _until(pilot, lambda: not isinstance(app.screen, InspectionScreen))


@pytest.mark.anyio
async def test_declining_by_key_keeps_both_plans(sqlite_store, gudang) -> None:  # type: ignore[no-untyped-def]
    from tafang.console.app import TafangApp
    from tafang.console.screens.inspections import InspectionScreen

    s = sqlite_store
    _plan(s, 1, "market", date(2026, 3, 2), date(2026, 3, 6))
    b = _plan(s, 1, "fire", date(2026, 3, 6), date(2026, 3, 6))
    app = TafangApp(s, gudang, operator="d01", terminal="t", lang="zh")
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("j")
        await _until(pilot, lambda: isinstance(app.screen, InspectionScreen))
        await _until(pilot, lambda: app.screen.board is not None and app.screen.board.proposals)
        await pilot.press("d")
        await _until(pilot, lambda: ins.proposals(s, None)[0].status == "declined")
        assert ins.plan(s, b.id).status == "planned"


# ---- the command line ----------------------------------------------------------------------------
def test_the_commands_end_to_end(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.test_scripting import tafang

    demo = Path(__file__).resolve().parent.parent / "store" / "demo"
    code, out, err = tafang(tmp_path, "enterprise", "import", str(demo / "enterprises.csv"))
    assert code == 0 and "40 added" in out, err
    bad = tmp_path / "bad.csv"
    bad.write_text("credit_code,name\n914403001922038217,错\n", encoding="utf-8")
    code, out, err = tafang(tmp_path, "enterprise", "import", str(bad), "--json")
    assert code == 1 and json.loads(out)["errors"][0]["line"] == 2
    assert "bad.csv:2: rejected: credit_code" in err
    code, _, err = tafang(tmp_path, "enterprise", "import", str(tmp_path / "none.csv"))
    assert code == 2 and "cannot read" in err
    hdr = tmp_path / "hdr.csv"
    hdr.write_text("name\nx\n", encoding="utf-8")
    code, _, err = tafang(tmp_path, "enterprise", "import", str(hdr))
    assert code == 2 and "line 1: header lacks credit_code" in err
    ent = "91330106MA2F8MGMBE"  # the demo register's first row
    plan = ["inspection", "plan", "-e", ent, "--from", "2026-12-07", "--to", "2026-12-11"]
    code, out, err = tafang(tmp_path, *plan, "--item", "market:价格公示", "--json")
    assert code == 0, err
    code, out, err = tafang(tmp_path, *plan, "--item", "hr:劳动合同", "--json")
    prop = json.loads(out)["proposals"][0]
    assert prop["plan_id"] == 2 and prop["other_id"] == 1
    code, out, _ = tafang(tmp_path, "inspection", "merge", str(prop["id"]), "--accept")
    assert code == 0
    code, out, _ = tafang(tmp_path, "inspection", "merge", str(prop["id"]), "--decline")
    assert code == 1
    code, out, _ = tafang(tmp_path, "inspection", "selfcheck", "1", "--format", "csv")
    assert code == 0 and out.count("\n") == 3 and "价格公示" in out
    code, _, err = tafang(tmp_path, "inspection", "done", "1")
    assert code == 1 and "without a result" in err
    for item in ("1", "2"):
        assert tafang(tmp_path, "inspection", "result", item, "pass")[0] == 0
    assert tafang(tmp_path, "inspection", "done", "1")[0] == 0
    code, out, _ = tafang(tmp_path, "inspection", "report", "--json")
    r = json.loads(out)
    assert (r["joint"], r["visits"], r["merged"], r["target"]) == (1, 1, 1, 0.8)
    code, out, _ = tafang(tmp_path, "risk", "import", str(demo / "risk_points.csv"))
    assert code == 0 and "260 added" in out
    code, out, _ = tafang(tmp_path, "risk", "report", "--json")
    assert json.loads(out)["points"] == 260


# ---- in the meeting reports (sla/meeting.py SECTIONS) ---------------------------------------
def test_meeting_reports_carry_the_rate_partners_and_risk_points(ents: Store) -> None:
    from tafang.sla import meeting
    from tafang.sla.meeting_render import render
    from tafang.store import risk

    at = datetime(2026, 3, 10, 2, tzinfo=UTC)
    p = _plan(ents, 1, "market", date(2026, 3, 2), date(2026, 3, 6), n=1)
    _, props = ins.create_plan(
        ents,
        1,
        departments=["hr"],
        items=[("hr", "社保")],
        first=date(2026, 3, 3),
        last=date(2026, 3, 3),
        actor=ME,
    )
    ins.decide(ents, props[0].id, True, ME)
    solo = _plan(ents, 2, "fire", date(2026, 3, 2), date(2026, 3, 6), n=1)
    for v in (p, solo):
        for it in ins.items(ents, v.id):
            ins.record_result(ents, it.id, "pass", CHECKER)
        ins.complete(ents, v.id, CHECKER, at=at)
    risk.import_csv(ents, "code,name,grid,class\nR1,工地,N3-07,muck\n", origin="r", actor=ME)
    i = meeting.inputs_for(
        ents,
        ents.d,
        "range",
        start=date(2026, 3, 1),
        end=date(2026, 3, 31),
        now=datetime(2026, 4, 1, tzinfo=UTC),
    )
    secs = {s.key: s for s in meeting.sections(i)}
    row = secs["joint_inspections"].tables[0].rows[0]
    assert (row[0].met, row[0].due, row[1]) == (1, 2, 1)  # 1 joint of 2 visits: 50 %
    assert "partners" not in secs  # no partner case in the period: left out
    assert dict((r[0], r[2]) for r in secs["risk_points"].tables[0].rows)["muck"] == 1
    md = render(i, "md")
    assert "综合查一次率" in md and "50.0% (1/2)" in md


def test_the_demo_register_has_a_year_at_xihus_rate_and_a_merge_to_decide(tmp_path, gudang) -> None:  # type: ignore[no-untyped-def]
    from tafang.store.db import make_engine
    from tafang.store.demo_register import seed_register
    from tafang.store.risk import counts_by_class

    engine = make_engine(migrated_sqlite(tmp_path / "demo.db"))
    s = Store(engine, gudang)
    now = datetime(2026, 12, 3, 6, tzinfo=UTC)
    seed_register(s, Actor("demo"), now=now)
    seed_register(s, Actor("demo"), now=now)  # a second start leaves it as it is
    r = ins.joint_rate(s, datetime(2026, 1, 1, tzinfo=UTC), now)
    assert (r.joint, r.visits) == (11, 18)
    assert len(ins.proposals(s)) == 1
    assert sum(counts_by_class(s).values()) == 260
    engine.dispose()


# ---- PostgreSQL group roles: the new tables' grants -----------------------------------------


def test_a_dispatcher_login_plans_and_a_viewer_login_may_not(logins: dict) -> None:  # noqa: F811
    from sqlalchemy.exc import DBAPIError
    from tafang.store import partners, risk

    dep = logins["dep"]
    d01 = Store(logins["as"]("d01"), dep)
    import_csv(d01, REGISTER, origin="reg.csv", actor=ME)
    risk.import_csv(d01, "code,name,grid,class\nR1,x,N3-07,fire\n", origin="r", actor=ME)
    a = _plan(d01, 1, "market", date(2026, 3, 2), date(2026, 3, 6))
    _, props = ins.create_plan(
        d01,
        1,
        departments=["hr"],
        items=[],
        first=date(2026, 3, 3),
        last=date(2026, 3, 3),
        actor=ME,
    )
    ins.decide(d01, props[0].id, True, ME)
    assert ins.plan(d01, a.id).departments == ("hr", "market")
    c = d01.create({"title": "单车", "category": "0590"}, ME)
    d01.act(c.id, "dispatch", ME, to="meituan")
    d01.act(c.id, "arrive", ME)
    d01.act(c.id, "handle", ME)
    partners.record_items(d01, c.id, 9, ME)
    viewer = logins["as"]("v01")
    for sql in (
        "INSERT INTO enterprises (credit_code, name, address, risk_grade, contact, updated_at)"
        " VALUES ('x', 'x', '', 'B', '', now())",
        "UPDATE inspection_plans SET status = 'done'",
        "UPDATE risk_points SET active = false",
        "UPDATE partner_items SET items = 0",
    ):
        with viewer.begin() as conn, pytest.raises(DBAPIError, match="permission denied"):
            conn.execute(text(sql))
    with viewer.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM inspection_merges")).scalar_one() == 1


def test_the_self_check_list_escapes_what_the_register_says(store: Store) -> None:
    from tafang.store.labels import labels
    from tafang.store.self_check import csv_text, markdown, sheet

    import_csv(
        store,
        'credit_code,name,risk_grade\n914403001922038216,"A|B <b>x</b> **y**",D\n',
        origin="r",
        actor=ME,
    )
    p, _ = ins.create_plan(
        store,
        1,
        departments=["fire"],
        items=[("fire", "=HYPERLINK(1)|灭火器")],
        first=date(2026, 3, 2),
        last=date(2026, 3, 2),
        actor=ME,
    )
    s = sheet(store, p.id)
    md = markdown(s, labels("zh"), store.d.timezone)
    assert "A\\|B \\<b\\>x\\</b\\> \\*\\*y\\*\\*" in md
    assert "| 1 | 消防 | =HYPERLINK\\(1\\)\\|灭火器 |  |  |" in md
    assert "- 风险等级: D" in md and "- 检查时段: 2026-03-02\n" in md
    rows = csv_text(s, labels("en")).splitlines()
    assert rows[1].split(",")[4] == "'=HYPERLINK(1)|灭火器"
