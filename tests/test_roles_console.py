"""Role-aware actions: a move the role may not make is refused at once (no reason asked) and
left out of the footer; voiding a dispatched case and discarding a filled form ask first."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tafang.console.app import TafangApp, TafangCommands
from tafang.console.screens.ask import AskScreen
from tafang.console.screens.confirm import ConfirmScreen
from tafang.console.screens.new_case import NewCaseScreen
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine

from tests.conftest import migrated_sqlite

pytestmark = [pytest.mark.anyio, pytest.mark.filterwarnings("ignore::ResourceWarning")]
OTHER = Actor("d02", "terminal-2")


@pytest.fixture
def store(tmp_path: Path, gudang: Deployment) -> Iterator[Store]:
    engine = make_engine(migrated_sqlite(tmp_path / "roles.db"))
    yield Store(engine, gudang)
    engine.dispose()


def new_case(store: Store, d: Deployment) -> int:
    grid = d.grids_by_label["N3-07"].code
    fields = {"source": "ping_an", "title": "店外经营", "category": "0502", "grid": grid}
    return store.create(fields, OTHER).id


async def until(pilot, cond: Callable[[], object], timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, "condition not met in time"
        await pilot.pause(0.02)


def shown_keys(app: TafangApp) -> set[str]:
    return {b.id or "" for bs in app._bindings.key_to_bindings.values() for b in bs if b.show}


async def test_dispatcher_hold_is_refused_before_any_question(store, gudang) -> None:
    cid = new_case(store, gudang)
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="zh")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        assert "tafang.hold" not in shown_keys(app) and "tafang.ack" in shown_keys(app)
        offered = [text for text, _, _ in TafangCommands(app.screen)._items()]
        assert app.t("action.ack") in " ".join(offered)
        assert app.t("action.hold") not in " ".join(offered)  # not in the palette either
        await pilot.press("p")
        await pilot.pause()
        assert not isinstance(app.screen, AskScreen)  # no reason asked for nothing
        text = "\n".join(n.message for n in app._notifications)
        assert "带班领导" in text  # says who may
        assert store.get(cid).status == "new"


async def test_supervisor_may_hold_and_sees_the_key(store, gudang) -> None:
    cid = new_case(store, gudang)
    app = TafangApp(store, gudang, operator="s01", terminal="t-1", lang="zh")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        assert "tafang.hold" in shown_keys(app)
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, AskScreen))


async def test_voiding_a_dispatched_case_asks_first(store, gudang) -> None:
    cid = new_case(store, gudang)
    store.act(cid, "dispatch", OTHER, to="2-03")
    app = TafangApp(store, gudang, operator="s01", terminal="t-1", lang="zh")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded and app.dash.queue.cursor_case_id == cid)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await until(pilot, lambda: app.screen is app.dash)
        await pilot.press("v")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: isinstance(app.screen, AskScreen))
        await pilot.press(*"重复", "enter")
        await until(pilot, lambda: store.get(cid).status == "void")


async def test_escape_on_a_filled_form_asks_before_discarding(store, gudang) -> None:
    app = TafangApp(store, gudang, operator="d01", terminal="t-1", lang="zh")
    async with app.run_test(size=(120, 36)) as pilot:
        await until(pilot, lambda: app.loaded)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewCaseScreen))
        await pilot.press("escape")  # nothing typed: closes at once
        await until(pilot, lambda: app.screen is app.dash)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewCaseScreen))
        await pilot.press(*"噪声")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewCaseScreen))
        form = app.screen
        assert form.query_one("#f-title").value == "噪声"  # kept
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await until(pilot, lambda: app.screen is app.dash)
