"""The moves live once, in the store's registry; every surface is built from it.
Opening a store writes nothing: the roster is synced by explicit steps."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from tafang.console.app import Command, TafangApp, parse_command
from tafang.console.cli import build_parser, main
from tafang.console.keymap import GESTURES, MOVE_KEYS, SHORTHAND, UI_KEYS, action_of, usage
from tafang.store.cases import OFFICERS, PLANNERS, Actor, Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.moves import MOVES

D01 = Actor("d01", "t1")


def _case_subcommands() -> set[str]:
    parser = build_parser()
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    case = top.choices["case"]
    sub = next(a for a in case._actions if isinstance(a, argparse._SubParsersAction))
    return set(sub.choices) - {"show", "dupes"}  # the two that read, not move


# ---- one registry, every surface built from it ----------------------------------------------
def test_cli_case_subcommands_are_exactly_the_registry() -> None:
    assert _case_subcommands() == set(MOVES)


def test_every_move_has_a_planner() -> None:
    assert set(PLANNERS) == set(MOVES)


def test_console_decides_on_every_move_and_binds_no_other() -> None:
    """Each move is bound to a key or deliberately left out (MOVE_KEYS[name] is None); a
    move added to the registry fails here until the console decides."""
    assert set(MOVE_KEYS) == set(MOVES)
    assert not set(UI_KEYS) & set(MOVES)
    bound_moves = {
        a.removeprefix("move('").removesuffix("')")
        for b in TafangApp.BINDINGS
        if (a := b.action).startswith("move(")  # type: ignore[union-attr]
    }
    assert bound_moves == {n for n, g in MOVE_KEYS.items() if g is not None}
    plain = {b.action for b in TafangApp.BINDINGS if not b.action.startswith("move(")}  # type: ignore[union-attr]
    assert plain == set(UI_KEYS) | {"clear"}


def test_shorthand_covers_exactly_the_bound_moves() -> None:
    bound = {n for n, g in MOVE_KEYS.items() if g is not None}
    assert {a for a in SHORTHAND.values() if a in MOVES} == bound
    assert set(SHORTHAND.values()) - bound == {"open", "filter"}
    for name in bound:  # the usage line names one of the move's words (others are aliases)
        words = [w for w, n in SHORTHAND.items() if n == name]
        assert any(usage(name).startswith(f"{w} ID") for w in words), name


def test_binding_ids_stay_stable_for_deployment_keymaps() -> None:
    ids = {b.id for b in TafangApp.BINDINGS}  # type: ignore[union-attr]
    old = "ack dispatch arrive handle close hold resume return rework void merge escalate "
    old += "supervise open new filter map command help clear"
    assert {f"tafang.{n}" for n in old.split()} <= ids  # new bindings may come, none may go
    assert action_of("ack") == "move('ack')" and action_of("help") == "help"
    assert list(GESTURES)[:2] == ["ack", "dispatch"]


def test_usage_comes_from_the_registry() -> None:
    assert usage("dispatch") == "d ID OFFICER|SQUAD"
    assert usage("merge") == "m ID into TARGET"
    assert usage("hold") == "p ID REASON"
    assert parse_command("d 7") == Command("dispatch", 7)
    assert parse_command("m 7 into 9 same") == Command("merge", 7, into=9, reason="same")
    assert parse_command("a") == "usage: a ID"


# ---- opening a store writes nothing ------------------------------------------------------
def _writes(engine) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _spy(conn, cursor, statement, params, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            seen.append(statement)

    return seen


def _roster_rows(store: Store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(OFFICERS)).scalar_one()


def test_opening_a_store_writes_nothing(sqlite_url: str, gudang: Deployment) -> None:
    engine = make_engine(sqlite_url)  # migrating is the engine's step, not the Store's
    writes = _writes(engine)
    store = Store(engine, gudang)
    store.officers()
    store.cases("all")
    assert writes == []
    assert _roster_rows(store) == 0
    n = len(gudang.officers_by_code)
    assert store.sync_roster() == n and _roster_rows(store) == n
    assert store.sync_roster() == 0


def test_an_unsynced_roster_still_tracks_the_officer(sqlite_url: str, gudang: Deployment) -> None:
    store = Store(make_engine(sqlite_url), gudang)
    cid = store.create({"title": "t", "grid": gudang.tower.grids[0].code}, D01).id
    store.act(cid, "dispatch", D01, to="2-03")
    status = {o.code: o.status for o in store.officers()}
    assert status["2-03"] == "en_route" and status["1-02"] == "available"
    assert _roster_rows(store) == 1  # only the row the move needed
    store.set_officer_status("1-02", "off_duty", D01)
    assert {o.code: o.status for o in store.officers()}["1-02"] == "off_duty"


def test_db_upgrade_syncs_the_roster(
    tmp_path: Path, gudang: Deployment, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'up.db'}"
    assert main(["--db", url, "db", "upgrade"]) == 0
    assert "added to the roster" in capsys.readouterr().out
    assert _roster_rows(Store(make_engine(url), gudang)) == len(gudang.officers_by_code)
