"""The stats screen (console/screens/stats.py): heat map, trend, league table and the drill
down to cases, on a real SQLite store with a frozen clock; a snapshot of its first frame."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tafang.console.i18n import Strings
from tafang.console.screens.stats import CasesScreen, StatsScreen
from tafang.console.view_model import ViewModel
from tafang.sla.policy import Policy
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.intake import ingest
from tafang.widgets.heat_map import HeatMap
from textual.app import App
from textual.widgets import DataTable, Sparkline

from tests.conftest import migrated_sqlite

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
NOW = datetime(2023, 6, 30, 4, 0, tzinfo=UTC)  # noon in Hangzhou
CELLS = ("N1-01", "N1-01", "N1-01", "N3-07", "S2-05")
OFFICERS = ("1-03", "1-03", "2-01", "2-01", "3-05")


def _records(d: Deployment) -> list[str]:
    out = []
    for n in range(25):
        t = NOW - timedelta(days=n % 10, hours=3)
        late = n % 4 == 0
        out.append(
            json.dumps(
                {
                    "source": "ping_an",
                    "external_id": f"S{n}",
                    "title": f"[b]标题[/b] {n}",
                    "category": "0102",
                    "grid": d.grids_by_label[CELLS[n % 5]].code,
                    "received_at": t.isoformat(),
                    "acknowledged_at": (t + timedelta(seconds=90 if late else 20)).isoformat(),
                    "dispatched_at": (t + timedelta(seconds=120)).isoformat(),
                    "assignee": OFFICERS[n % 5],
                }
            )
        )
    return out


@pytest.fixture
def seeded(tmp_path: Path, gudang: Deployment) -> Iterator[Store]:
    engine = make_engine(migrated_sqlite(tmp_path / "stats.db"))
    store = Store(engine, gudang, clocks=Policy(gudang))
    r = ingest(store, _records(gudang), origin="t", actor=Actor("s01", "t"), history=True)
    assert r.accepted == 25, r.errors
    yield store
    engine.dispose()


class Host(App[None]):
    def __init__(self, store: Store, d: Deployment) -> None:
        super().__init__()
        self.store, self.d = store, d
        self.opened: list[int] = []

    def on_mount(self) -> None:
        t = Strings("zh")
        cells = ViewModel(self.d, t).cell_specs()
        self.push_screen(StatsScreen(self.store, self.d, t, lambda: NOW, cells))

    def action_open(self, case_id: int) -> None:
        self.opened.append(case_id)


async def until(pilot, done: Callable[[], bool], what: str) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not done():
        assert time.monotonic() - t0 < 10, f"the screen did not settle: {what}"
        await pilot.pause(0.02)


async def loaded(pilot) -> None:  # type: ignore[no-untyped-def]
    screen = pilot.app.screen
    await until(pilot, lambda: getattr(screen, "stats", None) is not None, "stats read")
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


@pytest.mark.anyio
async def test_figures_and_drill_down(seeded: Store, gudang: Deployment) -> None:
    app = Host(seeded, gudang)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        screen = app.screen
        assert isinstance(screen, StatsScreen) and screen.stats is not None
        s = screen.stats
        assert s.cases == 25 and (s.rates["respond"].met, s.rates["respond"].due) == (18, 25)
        assert s.by_grid[gudang.grids_by_label["N1-01"].code] == 15
        assert len(s.daily) == 30 and sum(s.daily) == 25
        assert screen.query_one(Sparkline).data == s.daily
        heat = screen.query_one(HeatMap)
        assert heat.counts == s.by_grid
        table = screen.query_one("#stats-league", DataTable)
        labels = [str(table.get_row_at(i)[0]) for i in range(table.row_count)]
        assert labels[:3] == ["中队 sq1 一中队", "中队 sq2 二中队", "中队 sq3 三中队"]
        assert any(x.startswith("队员 1-03") for x in labels)
        await pilot.press("enter")  # the first row: 一中队 (1-03's ten cases)
        await until(pilot, lambda: isinstance(app.screen, CasesScreen), "the cases")
        cases = app.screen
        assert isinstance(cases, CasesScreen) and len(cases.lines) == 10
        assert "[b]" in str(cases.query_one(DataTable).get_row_at(0)[5])  # shown literally
        await pilot.press("enter")
        assert app.opened == [cases.lines[0].id]
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen, "back")
        heat.focus()
        await pilot.press("enter")  # the first cell (N1-01, top left)
        await until(pilot, lambda: isinstance(app.screen, CasesScreen), "the cell's cases")
        first = min(heat.cells, key=lambda c: (c.row, c.col))
        assert {x.grid for x in app.screen.lines} <= {first.code}  # type: ignore[attr-defined]


def test_first_frame(snap_compare, seeded: Store, gudang: Deployment) -> None:
    assert snap_compare(Host(seeded, gudang), terminal_size=(140, 40), run_before=loaded)
