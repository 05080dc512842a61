"""Risk points and partner items on SQLite and PostgreSQL; the map layer; the demo data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from tafang.store import partners, risk
from tafang.store.cases import Actor, Refused, Store
from tafang.store.enterprises import import_csv as import_enterprises

from tests.conftest import migrated_sqlite

ME = Actor("d01")
DEMO = Path(__file__).resolve().parent.parent / "store" / "demo"
CSV = """code,name,grid,class,address,credit_code,every_days,next_check
RP-1,文三西路工地渣土出入口,N3-07,muck,文三西路,,7,2026-03-02
RP-2,天目里地下车库,N3-07,fire,天目山路,914403001922038216,,2026-03-20
RP-3,益乐路餐饮油烟,S1-01,environment,,,,
RP-4,坏类别,N3-07,volcano,,,,
RP-5,坏网格,Q9-99,fire,,,,
RP-6,坏周期,N3-07,fire,,,0,
RP-7,坏企业,N3-07,fire,,91330100799655058B,,
RP-8,坏日期,N3-07,fire,,,,2026-13-01
"""


@pytest.fixture
def points(store: Store) -> Store:
    import_enterprises(
        store, "credit_code,name\n914403001922038216,华为\n", origin="e.csv", actor=ME
    )
    now = datetime(2026, 3, 1, 4, tzinfo=UTC)
    r = risk.import_csv(store, CSV, origin="rp.csv", actor=ME, now=now)
    assert (r.added, [n for n, _ in r.errors]) == (3, [5, 6, 7, 8, 9])
    return store


def test_register_by_grid_and_class(points: Store) -> None:
    n37 = points.d.grids_by_label["N3-07"].code
    assert risk.counts_by_grid(points) == {n37: 2, points.d.grids_by_label["S1-01"].code: 1}
    assert risk.counts_by_class(points) == {"muck": 1, "fire": 1, "environment": 1}
    assert [p.code for p in risk.in_grid(points, n37)] == ["RP-1", "RP-2"]
    assert risk.in_grid(points, None) == []
    rp3 = risk.points(points, points.d.grids_by_label["S1-01"].code)[0]
    # No next_check: the class's interval from the import (environment: 30 days).
    assert rp3.every_days == 30
    assert rp3.next_check_at == datetime(2026, 3, 31, 4, tzinfo=UTC)


def test_due_checks_become_cases_once(points: Store) -> None:
    # RP-1 is due from local midnight 2 March (16:00 UTC on the 1st).
    assert risk.file_due_checks(points, datetime(2026, 3, 1, 15, 59, tzinfo=UTC)) == 0
    now = datetime(2026, 3, 2, 1, tzinfo=UTC)
    assert risk.file_due_checks(points, now) == 1
    assert risk.file_due_checks(points, now) == 0  # a second sweep files nothing
    case = next(c for c in points.cases("open") if c.source == "patrol")
    assert case.category == "0303" and case.grid == points.d.grids_by_label["N3-07"].code
    assert json.loads(case.raw)["extra"]["risk_point"] == "RP-1"
    rp1 = next(p for p in risk.points(points) if p.code == "RP-1")
    assert rp1.last_case_id == case.id
    assert rp1.next_check_at == datetime(2026, 3, 8, 16, tzinfo=UTC)  # 7 days on
    # After a long outage: one check now, the next one ahead of now.
    later = datetime(2026, 4, 1, tzinfo=UTC)
    assert risk.file_due_checks(points, later) == 3  # RP-1 again, RP-2, RP-3
    rp1 = next(p for p in risk.points(points) if p.code == "RP-1")
    assert later < rp1.next_check_at <= later + timedelta(days=7)
    # Each case is received at its due time: four in March, one of them on the 1st (UTC).
    assert risk.checks_filed(points, datetime(2026, 3, 1, tzinfo=UTC), later) == 4
    assert risk.checks_filed(points, datetime(2026, 3, 1, tzinfo=UTC), now) == 1


def test_demo_data_is_the_seeds_260_points_in_6_classes(store: Store) -> None:
    r = import_enterprises(store, (DEMO / "enterprises.csv").read_bytes(), origin="e", actor=ME)
    assert r.rejected == 0 and r.added >= 30
    r = risk.import_csv(store, (DEMO / "risk_points.csv").read_bytes(), origin="r", actor=ME)
    assert r.rejected == 0
    by_class = risk.counts_by_class(store)
    assert sum(by_class.values()) == 260 and set(by_class) == set(risk.CLASSES)


def test_partner_items_and_savings(store: Store) -> None:
    """Hand-computed: meituan moves 12 + 30 bikes (a recount replaces 20); 3 min and 5 yuan a
    bike: 2.1 hours and 210 yuan; hellobike one case without a count."""
    t0 = datetime(2026, 3, 2, 1, tzinfo=UTC)
    ids = []
    for n, who in enumerate(("meituan", "meituan", "hellobike", "sq1")):
        c = store.create({"title": f"单车 {n}", "category": "0590"}, ME, now=t0)
        store.act(c.id, "dispatch", ME, to=who, now=t0)
        ids.append(c.id)
    with pytest.raises(Refused, match="when it is handled"):
        partners.record_items(store, ids[0], 12, ME)
    for cid in ids[:3]:
        store.act(cid, "arrive", ME, now=t0) if store.get(cid).status == "dispatched" else None
        store.act(cid, "handle", ME, now=t0 + timedelta(hours=1))
    partners.record_items(store, ids[0], 12, ME)
    partners.record_items(store, ids[1], 20, ME)
    partners.record_items(store, ids[1], 30, ME)
    assert partners.items_of(store, ids[1]) == 30
    with pytest.raises(Refused, match="not with a partner"):
        partners.record_items(store, ids[3], 5, ME)
    with pytest.raises(Refused, match="items must be"):
        partners.record_items(store, ids[0], -1, ME)
    figs = {f.code: f for f in partners.figures(store, t0, t0 + timedelta(days=1))}
    assert (figs["meituan"].cases, figs["meituan"].items) == (2, 42)
    assert figs["meituan"].hours_saved == 2.1 and figs["meituan"].yuan_saved == 210
    assert (figs["hellobike"].cases, figs["hellobike"].items) == (1, 0)
    assert figs["qingju"].cases == 0
    with store.read_engine.connect() as c:
        n = c.execute(
            text("SELECT count(*) FROM audit WHERE action = 'partner.items' AND case_id = :i"),
            {"i": ids[1]},
        ).scalar_one()
    assert n == 2


# ---- the console: the map layer and the case mark (Pilot) ---------------------------------------
@pytest.mark.anyio
async def test_x_shows_the_risk_layer_and_a_case_in_such_a_grid_is_marked(tmp_path, gudang) -> None:  # type: ignore[no-untyped-def]
    import time

    from tafang.console.app import TafangApp
    from tafang.store.db import make_engine
    from tafang.widgets.detail_pane import DetailPane
    from tafang.widgets.grid_map import GridMap

    engine = make_engine(migrated_sqlite(tmp_path / "c.db"))
    s = Store(engine, gudang)
    import_enterprises(s, "credit_code,name\n914403001922038216,华为\n", origin="e", actor=ME)
    risk.import_csv(s, CSV, origin="rp.csv", actor=ME)
    n37 = gudang.grids_by_label["N3-07"].code
    s.create({"title": "渣土撒漏", "category": "0303", "grid": n37}, ME)
    app = TafangApp(s, gudang, operator="d01", terminal="t", lang="en")

    async def until(cond) -> None:  # type: ignore[no-untyped-def]
        t0 = time.monotonic()
        while not cond():
            assert time.monotonic() - t0 < 5, "condition not met"
            await pilot.pause(0.02)

    async with app.run_test(size=(160, 48)) as pilot:
        grid = app.dash.query_one("#map", GridMap)
        await until(lambda: app.vm.risk_points.get(n37) == 2)
        detail = app.dash.query_one("#detail", DetailPane)
        await until(lambda: detail.detail is not None)
        app.dash._refresh_detail()
        await until(lambda: any("risk-point grid (2)" in f for f, _ in detail.detail.flags))
        assert not grid.markers_shown
        await pilot.press("x")
        await until(lambda: grid.markers_shown)
        assert grid._markers == {n37: "2", gudang.grids_by_label["S1-01"].code: "1"}
        await pilot.press("x")
        await until(lambda: not grid.markers_shown)
    engine.dispose()


def test_case_show_names_the_grids_risk_points_and_handle_counts_items(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tests.test_scripting import tafang

    ent = tmp_path / "e.csv"
    ent.write_text("credit_code,name\n914403001922038216,华为\n", encoding="utf-8")
    assert tafang(tmp_path, "enterprise", "import", str(ent))[0] == 0
    rp = tmp_path / "rp.csv"
    rp.write_text(CSV, encoding="utf-8")
    assert tafang(tmp_path, "risk", "import", str(rp))[0] == 1  # five bad rows: exit 1
    rec = {
        "source": "ping_an",
        "external_id": "B-1",
        "title": "单车",
        "grid": "N3-07",
        "category": "0590",
    }
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    assert tafang(tmp_path, "ingest", str(inp))[0] == 0
    code, out, _ = tafang(tmp_path, "case", "show", "1", "--json")
    assert json.loads(out)["risk_points"] == ["RP-1", "RP-2"]
    code, out, _ = tafang(tmp_path, "case", "show", "1")
    assert "文三西路工地渣土出入口" in out
    assert tafang(tmp_path, "case", "dispatch", "1", "--to", "meituan")[0] == 0
    assert tafang(tmp_path, "case", "arrive", "1")[0] == 0
    code, _, err = tafang(tmp_path, "case", "handle", "1", "--items", "-3")
    assert code == 1 and "items must be" in err
    assert tafang(tmp_path, "case", "handle", "1", "--items", "17")[0] == 0
    code, out, _ = tafang(tmp_path, "partner", "report", "--json")
    meituan = next(p for p in json.loads(out)["partners"] if p["code"] == "meituan")
    assert (meituan["cases"], meituan["items"], meituan["yuan_saved"]) == (1, 17, 85.0)


def test_the_daemon_files_due_checks(points: Store) -> None:
    """One daemon pass (`--once`) at a fixed clock files RP-1's check and logs it."""
    import io

    from tafang.sla.daemon import run_daemon

    log = io.StringIO()
    clock = lambda: datetime(2026, 3, 2, 1, tzinfo=UTC)  # noqa: E731
    assert run_daemon(points, points.d, once=True, clock=clock, log_stream=log) == 0
    events = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    assert any(e["event"] == "risk_checks_filed" and e["fields"]["cases"] == 1 for e in events)
    assert [c.external_id for c in points.cases("open")] == ["risk:RP-1:2026-03-01"]


@pytest.mark.anyio
async def test_h_on_a_partner_case_asks_for_the_items_then_handles(tmp_path, gudang) -> None:  # type: ignore[no-untyped-def]
    import time

    from tafang.console.app import TafangApp
    from tafang.console.screens.ask import AskScreen
    from tafang.store.db import make_engine

    engine = make_engine(migrated_sqlite(tmp_path / "p.db"))
    s = Store(engine, gudang)
    c = s.create({"title": "共享单车堆放", "category": "0590"}, ME)
    s.act(c.id, "dispatch", ME, to="qingju")
    s.act(c.id, "arrive", ME)
    app = TafangApp(s, gudang, operator="d01", terminal="t", lang="en")

    async def until(cond) -> None:  # type: ignore[no-untyped-def]
        t0 = time.monotonic()
        while not cond():
            assert time.monotonic() - t0 < 5, "condition not met"
            await pilot.pause(0.02)

    async with app.run_test(size=(120, 36)) as pilot:
        await until(lambda: app.loaded and app.dash.queue.cursor_case_id == c.id)
        await pilot.press("h")
        await until(lambda: isinstance(app.screen, AskScreen))
        await pilot.press("1", "2", "enter")
        await until(lambda: s.get(c.id).status == "handled")
        assert partners.items_of(s, c.id) == 12
    engine.dispose()
