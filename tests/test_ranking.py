"""Dispatch ranking in the real dispatch panel: the top officer is of the case group."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tafang.console.app import TafangApp
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.widgets.dispatch_panel import DispatchPanel

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]
OTHER = Actor("d02", "terminal-2")


@pytest.fixture
def store(tmp_path: Path, gudang: Deployment) -> Iterator[Store]:
    engine = make_engine(f"sqlite:///{tmp_path / 'rank.db'}")
    yield Store(engine, gudang)
    engine.dispose()


def one_category_per_group(d: Deployment) -> dict[str, str]:
    """A category code per case group (not one partner teams take: officers are the point)."""
    taken = {c for p in d.partners for c in p.categories}
    out: dict[str, str] = {}
    for cat in d.categories:
        if cat.code not in taken:
            out.setdefault(cat.group, cat.code)
    return out


async def test_top_ranked_officer_is_of_the_case_group(store: Store, gudang: Deployment) -> None:
    cats = one_category_per_group(gudang)
    assert set(cats) == {g.code for g in gudang.case_groups}
    # A case in a circle whose home officers are mostly of other groups: circle must not win.
    grid = gudang.grids_by_label["S2-08"].code
    ids = {
        g: store.create(
            {"source": "ping_an", "title": f"case {g}", "category": c, "grid": grid}, OTHER
        ).id
        for g, c in cats.items()
    }
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="zh")
    async with app.run_test(size=(120, 36)) as pilot:
        while not app.loaded:
            await pilot.pause(0.02)
        for group, cid in ids.items():
            app.action_move("dispatch", app.state.cases[cid])
            await pilot.pause(0.05)
            panel = app.dash.query_one(DispatchPanel)
            assert panel.is_open and panel.case_id == cid
            top = next(c for c in panel.shown if c.kind == "officer")
            assert panel.shown[0] is top
            assert gudang.officers_by_code[top.code][1].group == group, (group, top)
            await pilot.press("escape")
            await pilot.pause(0.02)


def test_dispatch_list_names_fit_the_longest_in_the_language(gudang: Deployment) -> None:
    """The name column is as wide as the longest name shown (`Support squad` was cut to
    `Support squ…` at a fixed 12 cells in English); the reasons still start in one column."""
    from tafang.console.i18n import Strings
    from tafang.widgets.dispatch_panel import Choice, choice_text, name_width

    t = Strings("en")
    choices = [
        Choice(s.code, "squad", t.pick(s.name, s.name_en), (t("assign.squad"),), (2, i))
        for i, s in enumerate(gudang.squads)
    ]
    cells = name_width(choices)
    lines = [choice_text(c, cells).plain for c in choices]
    assert any("Support squad " in line for line in lines)
    assert not any("…" in line for line in lines)
    assert len({line.rindex(t("assign.squad")) for line in lines}) == 1
