"""Pictures of the dashboard at the smallest supported size and a large one.

Deterministic on purpose: a frozen clock injected into the app, cases created at fixed times
with fixed content, officers' states stamped at a fixed time, no demo feed. Regenerate with
`pytest tests/test_snapshots.py --snapshot-update` after a deliberate change, and look at the
SVGs under tests/__snapshots__/ before committing them.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from console.app import TafangApp
from store.cases import Actor, Store
from store.config import Deployment
from store.db import make_engine
from store.models import Officer

NOW = datetime(2026, 3, 9, 1, 0, 0, tzinfo=UTC)  # 09:00 in Hangzhou, a Monday
ACTOR = Actor("d02", "terminal-2")

# (seconds before NOW, channel, category, cell label, title, priority, moves)
CASES = (
    (55, "ping_an", "0590", "N3-07", "共享单车堵塞消防通道", "normal", ()),
    (70, "smart_alarm", "0404", "S1-04", "电动车楼道起火", "critical", ()),
    (40, "grid_app", "0603", "N1-09", "广场舞音响扰民", "normal", ("ack",)),
    (150, "xihu_code", "0502", "N2-10", "餐馆门口摆桌占道", "normal", ("ack", "dispatch:2-03")),
    (400, "hotline", "0301", "S2-05", "夜间施工噪音扰民", "urgent", ("ack", "dispatch:3-05")),
    (
        900,
        "city_ops",
        "0102",
        "N4-12",
        "垃圾桶满溢无人清运",
        "normal",
        ("ack", "dispatch:1-03", "arrive"),
    ),
    (20, "ping_an", "0590", "S3-08", "[red]FAKE[/red] 单车\x1b[31m", "normal", ()),
    (
        1500,
        "enterprise",
        "0605",
        "N2-03",
        "超市销售过期食品",
        "normal",
        ("ack", "dispatch:sq4", "escalate"),
    ),
)


def seed(store: Store, d: Deployment) -> None:
    for i, (ago, src, cat, label, title, prio, moves) in enumerate(CASES):
        at = NOW - timedelta(seconds=ago)
        fields = {
            "source": src,
            "external_id": f"snap-{i}",
            "title": title,
            "category": cat,
            "grid": d.grids_by_label[label].code,
            "priority": prio,
        }
        cid = store.create(fields, ACTOR, now=at).id
        for n, move in enumerate(moves, 1):
            action, _, to = move.partition(":")
            reason = "no answer from the circle" if action == "escalate" else ""
            store.act(
                cid, action, ACTOR, to=to or None, reason=reason, now=at + timedelta(seconds=10 * n)
            )
    with store.engine.begin() as conn:
        conn.execute(update(Officer.__table__).values(status_since=NOW - timedelta(minutes=7)))


@pytest.fixture
def seeded(tmp_path: Path, gudang: Deployment) -> Iterator[Store]:
    engine = make_engine(f"sqlite:///{tmp_path / 'snap.db'}")
    store = Store(engine, gudang)
    seed(store, gudang)
    yield store
    engine.dispose()


async def settled(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    t0 = time.monotonic()
    while not (app.loaded and app.daemon_seen and app.compliance is not None):
        assert time.monotonic() - t0 < 5, "the console did not load"
        await pilot.pause(0.02)
    app._tick()
    await pilot.pause(0.4)  # the map marks the cursor's cell once the cursor rests (0.15 s)


def make_app(store: Store, d: Deployment, lang: str = "zh") -> TafangApp:
    return TafangApp(
        store, d, operator="d01", terminal="snap", lang=lang, now=lambda: NOW, figures_after=0
    )


def test_dashboard_120x36(snap_compare, seeded: Store, gudang: Deployment) -> None:
    assert snap_compare(make_app(seeded, gudang), terminal_size=(120, 36), run_before=settled)


def test_dashboard_200x60(snap_compare, seeded: Store, gudang: Deployment) -> None:
    assert snap_compare(make_app(seeded, gudang), terminal_size=(200, 60), run_before=settled)


def test_dashboard_english_120x36(snap_compare, seeded: Store, gudang: Deployment) -> None:
    assert snap_compare(make_app(seeded, gudang, "en"), terminal_size=(120, 36), run_before=settled)
