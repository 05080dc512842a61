"""The demo opens like a good shift and moves like one: a backlog in every state with stages
done on time, officers out, few breaches; colleagues take cases on to closure."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from tafang.console.demo import DemoFeed, DemoOptions, prepare, seed_backlog
from tafang.console.i18n import Strings
from tafang.console.view_model import ViewModel
from tafang.sla.policy import Policy
from tafang.store.cases import Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.queries import daemon_heartbeat

from tests.conftest import migrated_sqlite


@pytest.fixture
def store(tmp_path: Path, gudang: Deployment) -> Iterator[Store]:
    engine = make_engine(migrated_sqlite(tmp_path / "demo.db"))
    yield Store(engine, gudang, clocks=Policy(gudang))
    engine.dispose()


def lights(store: Store, now: datetime) -> Counter[str]:
    vm = ViewModel(store.d, Strings("zh"))
    return Counter(vm.rules.clock_state(c, now).state for c in store.cases("open"))


def test_backlog_looks_like_a_good_shift(store: Store) -> None:
    now = datetime.now(UTC)
    store.sync_roster()
    seed_backlog(store, 30, random.Random(5), now=now)
    cases = store.cases("open")
    states = Counter(c.status for c in cases)
    assert set(states) == {"new", "acknowledged", "dispatched", "on_scene", "handled"}
    assert 1 <= lights(store, now)["breached"] <= 4  # a few, not 11–27
    out = Counter(o.status for o in store.officers())
    assert out["en_route"] >= 3 and out["on_scene"] >= 3 and out["available"] >= 20
    assert all(c.escalation_level == 0 for c in cases)  # no catch-up storm at the start


def test_prepare_writes_the_heartbeat_before_the_console_opens(store: Store) -> None:
    prepare(store, DemoOptions(seed=1, backlog=10))
    assert daemon_heartbeat(store) is not None


def test_colleagues_move_cases_on_to_closure(store: Store) -> None:
    now = datetime.now(UTC)
    store.sync_roster()
    seed_backlog(store, 30, random.Random(6), now=now)
    feed = DemoFeed(store, DemoOptions(seed=6, sweep=False))
    before = Counter(c.status for c in store.cases("open"))
    for minutes in range(1, 25):
        feed.progress(now + timedelta(minutes=minutes))
    after = Counter(c.status for c in store.cases("open"))
    assert after["new"] < before["new"] and after["acknowledged"] <= before["acknowledged"]
    closed = [c for c in store.cases("all") if c.status == "closed"]
    assert len(closed) >= before["handled"]  # the checker closed the handled ones
    assert all(c.updated_by in ("c01",) for c in closed)
