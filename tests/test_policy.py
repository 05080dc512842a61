"""SLA policy: working time on the Chinese calendar, clock states, escalation steps.

Pure tests with an injected `now`, plus the lifecycle moves that pause / restart clocks
driven through `store.act` on a real SQLite file.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from tafang.sla.policy import Policy
from tafang.store.cases import Actor, Store
from tafang.store.clocks import light_at
from tafang.store.config import ResolveLimit, load_config
from tafang.store.db import make_engine

from tests.conftest import migrated_sqlite

ROOT = Path(__file__).resolve().parent.parent
SH = ZoneInfo("Asia/Shanghai")
GUDANG = load_config(ROOT / "config.toml")  # periods 08:00-12:00, 14:00-18:00; interval 120 s
TINY = load_config(ROOT / "tests" / "fixtures" / "tiny.toml")
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)  # Tue 09:00 in Hangzhou
GRID = "33010600700801"


@pytest.fixture(scope="module")
def pol() -> Policy:
    return Policy(GUDANG)


def sh(*a: int) -> datetime:
    return datetime(*a, tzinfo=SH)


# ---- working time on the Chinese calendar -------------------------------------------------
WORKING_HOURS = [
    # (start local, working hours, expected end local, why)
    (sh(2026, 11, 24, 10, 0), 4, sh(2026, 11, 24, 16, 0), "skips the lunch break"),
    (sh(2026, 11, 24, 8, 0), 4, sh(2026, 11, 24, 12, 0), "ends at the end of a period"),
    (sh(2026, 11, 24, 6, 0), 1, sh(2026, 11, 24, 9, 0), "before hours: starts at 08:00"),
    (sh(2026, 11, 24, 12, 30), 1, sh(2026, 11, 24, 15, 0), "at lunch: starts at 14:00"),
    (sh(2026, 11, 24, 18, 0), 0.5, sh(2026, 11, 25, 8, 30), "after hours: next morning"),
    (sh(2026, 11, 27, 17, 0), 2, sh(2026, 11, 30, 9, 0), "Friday evening to Monday"),
    (sh(2026, 11, 28, 10, 0), 1, sh(2026, 11, 30, 9, 0), "received on a Saturday"),
    # National Day 2026: Oct 1-7 off; Sun Sep 20 and Sat Oct 10 are make-up working days.
    (sh(2026, 9, 30, 17, 0), 2, sh(2026, 10, 8, 9, 0), "the Golden Week is skipped"),
    (sh(2026, 10, 3, 10, 0), 1, sh(2026, 10, 8, 9, 0), "received during the holiday"),
    (sh(2026, 10, 9, 17, 0), 2, sh(2026, 10, 10, 9, 0), "make-up Saturday Oct 10 counts"),
    (sh(2026, 10, 10, 17, 0), 2, sh(2026, 10, 12, 9, 0), "Sunday Oct 11 does not"),
    (sh(2026, 9, 19, 10, 0), 1, sh(2026, 9, 20, 9, 0), "make-up Sunday Sep 20 counts"),
    (sh(2026, 9, 30, 8, 0), 16, sh(2026, 10, 8, 18, 0), "two working days across the week"),
]


@pytest.mark.parametrize(("start", "hours", "end", "why"), WORKING_HOURS)
def test_working_hours_count_only_working_periods(
    pol: Policy, start: datetime, hours: float, end: datetime, why: str
) -> None:
    got = pol.resolve_deadline(
        start.astimezone(UTC), ResolveLimit(amount=hours, unit="working_hours")
    )
    assert got == end.astimezone(UTC), why
    assert got.tzinfo is not None


WORKING_DAYS = [
    (sh(2026, 11, 27, 16, 0), 1, sh(2026, 11, 30, 16, 0), "Friday 16:00 + 1 = Monday 16:00"),
    (sh(2026, 9, 30, 10, 0), 1, sh(2026, 10, 8, 10, 0), "over National Day"),
    (sh(2026, 10, 9, 10, 0), 2, sh(2026, 10, 12, 10, 0), "Sat Oct 10 is a working day"),
    (sh(2026, 11, 24, 19, 0), 1, sh(2026, 11, 25, 18, 0), "after hours: the whole next day"),
]


@pytest.mark.parametrize(("start", "days", "end", "why"), WORKING_DAYS)
def test_working_days_are_days_of_working_time(
    pol: Policy, start: datetime, days: float, end: datetime, why: str
) -> None:
    got = pol.resolve_deadline(
        start.astimezone(UTC), ResolveLimit(amount=days, unit="working_days")
    )
    assert got == end.astimezone(UTC), why


@pytest.mark.parametrize(
    ("unit", "amount", "delta"),
    [
        ("minutes", 90, timedelta(minutes=90)),
        ("hours", 4, timedelta(hours=4)),
        ("days", 3, timedelta(days=3)),
    ],
)
def test_plain_units_count_wall_time_even_on_holidays(
    pol: Policy, unit: str, amount: float, delta: timedelta
) -> None:
    start = sh(2026, 10, 2, 23, 0).astimezone(UTC)
    assert pol.resolve_deadline(start, ResolveLimit(amount=amount, unit=unit)) == start + delta


def test_working_time_between_is_the_inverse_of_adding_it(pol: Policy) -> None:
    start = sh(2026, 9, 29, 15, 17).astimezone(UTC)
    for hours in (0.25, 3, 9, 17, 40):
        end = pol.add_working_time(start, timedelta(hours=hours))
        assert pol.working_time_between(start, end) == timedelta(hours=hours)


def test_beyond_the_calendar_data_falls_back_to_weekdays_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pol = Policy(GUDANG)  # its own WorkCalendar: warns once per year it has no data for
    with caplog.at_level(logging.WARNING, logger="tafang.sla.calendar"):
        a = pol.resolve_deadline(
            sh(2026, 12, 31, 17, 0).astimezone(UTC), ResolveLimit(amount=2, unit="working_hours")
        )
        b = pol.resolve_deadline(
            sh(2027, 1, 8, 17, 0).astimezone(UTC), ResolveLimit(amount=2, unit="working_hours")
        )
    assert a == sh(2027, 1, 1, 9, 0).astimezone(UTC)  # a Friday, counted as a working day
    assert b == sh(2027, 1, 11, 9, 0).astimezone(UTC)  # the weekend is skipped
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1


def test_other_deployment_uses_its_own_zone_and_periods() -> None:
    p = Policy(TINY)  # Europe/London, 09:00-17:00
    lon = ZoneInfo("Europe/London")
    start = datetime(2026, 11, 24, 16, 0, tzinfo=lon).astimezone(UTC)
    got = p.resolve_deadline(start, ResolveLimit(amount=2, unit="working_hours"))
    assert got == datetime(2026, 11, 25, 10, 0, tzinfo=lon).astimezone(UTC)


# ---- clock states, every status ----------------------------------------------------------
def case_at(pol: Policy, status: str = "new", **over: object) -> dict[str, object]:
    c: dict[str, object] = {
        "id": 1,
        "status": status,
        "category": None,
        "priority": "normal",
        "received_at": T0,
        "escalation_level": 0,
        "escalated_at": None,
        "hold_from": None,
        "held_at": None,
    }
    c.update({k: v for k, v in over.items() if k in ("category", "priority")})
    c.update(pol.start(c))
    c.update(over)
    return c


CLOCK_STATES = [
    # (status, seconds after receipt, extra columns, clock, state)
    ("new", 0, {}, "respond", "ok"),
    ("new", 47, {}, "respond", "ok"),
    ("new", 48, {}, "respond", "at_risk"),  # 80% of 60 s
    ("new", 59.999, {}, "respond", "at_risk"),
    ("new", 60, {}, "respond", "breached"),
    ("acknowledged", 61, {}, "dispatch", "ok"),
    ("acknowledged", 144, {}, "dispatch", "at_risk"),
    ("acknowledged", 181, {}, "dispatch", "breached"),
    ("dispatched", 200, {}, "arrive", "ok"),
    ("dispatched", 240, {}, "arrive", "at_risk"),
    ("dispatched", 300, {}, "arrive", "breached"),
    ("on_scene", 400, {}, "resolve", "ok"),
    ("handled", 400, {}, None, "none"),
    ("closed", 400, {}, None, "none"),
    ("void", 400, {}, None, "none"),
    ("merged", 400, {}, None, "none"),
]


@pytest.mark.parametrize(("status", "secs", "extra", "clock", "state"), CLOCK_STATES)
def test_clock_state_in_every_status(
    pol: Policy, status: str, secs: float, extra: dict, clock: str | None, state: str
) -> None:
    c = case_at(pol, status, **extra)
    st = pol.clock_state(c, T0 + timedelta(seconds=secs))
    assert (st.clock, st.state) == (clock, state)
    if clock in ("respond", "dispatch", "arrive"):
        assert st.budget_seconds == {"respond": 60, "dispatch": 180, "arrive": 300}[clock]
        assert st.remaining_seconds == pytest.approx(st.budget_seconds - secs)


@pytest.mark.parametrize(
    ("elapsed_share", "state"),
    [(0.5, "ok"), (0.79, "ok"), (0.8, "at_risk"), (0.85, "at_risk"), (1.0, "breached")],
)
def test_light_by_elapsed_share(elapsed_share: float, state: str) -> None:
    """The one rule of the light (`store.clocks.light_at`) that policy and console read."""
    due = T0 + timedelta(seconds=100)
    at = T0 + timedelta(seconds=100 * elapsed_share)
    assert light_at(due, 100, 0.8, at) == state
    assert light_at(None, None, 0.8, at) == "none"


def test_held_case_shows_its_clock_frozen_at_the_hold(pol: Policy) -> None:
    c = case_at(pol, "held", hold_from="new", held_at=T0 + timedelta(seconds=30))
    for later in (31, 600, 86_400):
        st = pol.clock_state(c, T0 + timedelta(seconds=later))
        assert st.paused and st.clock == "respond" and st.state == "ok"
        assert st.remaining_seconds == pytest.approx(30)


def test_category_and_priority_budgets_drive_the_countdown(pol: Policy) -> None:
    c = case_at(pol, "new", category="0404", priority="normal")  # fire: respond 30 s
    st = pol.clock_state(c, T0 + timedelta(seconds=25))
    assert st.budget_seconds == 30 and st.state == "at_risk"
    c = case_at(pol, "new", priority="critical")  # critical: respond 30 s
    assert pol.clock_state(c, T0 + timedelta(seconds=31)).state == "breached"


# ---- escalation steps --------------------------------------------------------------------
IV = 120  # Gudang escalation interval (s)
PLANS = [
    # (status, level, escalated_at (s), now (s), expected (clock, level, due (s), catch_up))
    ("new", 0, None, 59.999, None),
    ("new", 0, None, 60, ("respond", 1, 60, False)),
    ("new", 0, None, 60 + IV - 0.001, ("respond", 1, 60, False)),
    ("new", 1, 60, 60 + IV - 0.001, None),
    ("new", 1, 60, 60 + IV, ("respond", 2, 180, False)),
    ("new", 2, 180, 300, ("respond", 3, 300, False)),
    ("new", 3, 300, 420, ("respond", 4, 420, False)),
    ("new", 4, 420, 100_000, None),  # never beyond the command centre
    ("new", 0, None, 60 + IV + 5, ("respond", 2, 180, True)),  # catch-up: one step
    ("new", 0, None, 60 + 3 * IV + 5, ("respond", 4, 420, True)),
    ("new", 0, None, 86_400, ("respond", 4, 420, True)),
    ("new", 1, 60, 60 + 2 * IV + 1, ("respond", 3, 300, True)),
    ("acknowledged", 0, None, 179, None),  # respond stopped by the ack
    ("acknowledged", 0, None, 180, ("dispatch", 1, 180, False)),
    ("acknowledged", 1, 70, 180, ("dispatch", 2, 180, False)),  # a new breach goes up again
    ("dispatched", 0, None, 300, ("arrive", 1, 300, False)),
    ("on_scene", 0, None, 3600, None),
    ("handled", 0, None, 10**6, None),
    ("held", 0, None, 10**6, None),
    ("closed", 0, None, 10**6, None),
    ("void", 0, None, 10**6, None),
    ("merged", 0, None, 10**6, None),
]


@pytest.mark.parametrize(("status", "level", "esc", "now", "want"), PLANS)
def test_plan_escalation(
    pol: Policy, status: str, level: int, esc: float | None, now: float, want: tuple | None
) -> None:
    c = case_at(
        pol,
        status,
        escalation_level=level,
        escalated_at=None if esc is None else T0 + timedelta(seconds=esc),
    )
    step = pol.plan_escalation(c, T0 + timedelta(seconds=now))
    if want is None:
        assert step is None
        return
    clock, lvl, due, catch_up = want
    assert step is not None
    assert (step.clock, step.level, step.due_at, step.catch_up) == (
        clock,
        lvl,
        T0 + timedelta(seconds=due),
        catch_up,
    )
    assert step.from_level == level
    assert step.level_name == ("grid", "enforcement", "emergency", "risk", "centre")[lvl]


def test_plan_agrees_with_next_check(pol: Policy) -> None:
    """The sweep looks at a case at `next_check`; the plan must act exactly from then."""
    c = case_at(pol, "new")
    for _ in range(4):
        t = pol.next_check(c)
        assert t is not None
        assert pol.plan_escalation(c, t - timedelta(milliseconds=1)) is None
        step = pol.plan_escalation(c, t)
        assert step is not None and step.due_at == t
        c = {**c, "escalation_level": step.level, "escalated_at": t}
    assert pol.next_check(c) is None


# ---- the lifecycle pauses and restarts clocks (store.act with an injected now) ------------
@pytest.fixture
def store(tmp_path: Path) -> Store:
    engine = make_engine(migrated_sqlite(tmp_path / "p.db"))
    yield Store(engine, GUDANG, clocks=Policy(GUDANG))
    engine.dispose()


SUP = Actor("s01", "t1")
DSP = Actor("d01", "t1")
CHK = Actor("c01", "t1")


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def test_hold_pauses_and_resume_continues(store: Store) -> None:
    pol = store.clocks
    c = store.create({"title": "bikes", "grid": GRID}, DSP, now=T0)
    c = store.act(c.id, "hold", SUP, reason="owner abroad", now=at(20))
    assert c.next_check_at is None
    assert pol.plan_escalation(store.get(c.id), at(10_000)) is None
    c = store.act(c.id, "resume", SUP, now=at(620))  # paused 600 s
    assert c.status == "new"
    assert c.respond_due == at(660) and c.next_check_at == at(660)
    st = pol.clock_state(c, at(650))
    assert st.clock == "respond" and st.remaining_seconds == pytest.approx(10)
    assert pol.plan_escalation(c, at(659.999)) is None
    assert pol.plan_escalation(c, at(660)).level == 1  # type: ignore[union-attr]


def test_return_restarts_dispatch_and_arrive(store: Store) -> None:
    pol = store.clocks
    c = store.create({"title": "noise", "grid": GRID}, DSP, now=T0)
    store.act(c.id, "ack", DSP, now=at(10))
    store.act(c.id, "dispatch", DSP, to="1-01", now=at(100))
    c = store.act(c.id, "return", DSP, reason="wrong squad", now=at(250))
    assert c.status == "acknowledged"
    assert c.dispatch_due == at(250 + 120) and c.arrive_due == at(250 + 240)
    assert pol.clock_state(c, at(300)).clock == "dispatch"
    assert pol.plan_escalation(c, at(369)) is None
    assert pol.plan_escalation(c, at(370)).clock == "dispatch"  # type: ignore[union-attr]


def test_rework_restarts_arrive(store: Store) -> None:
    pol = store.clocks
    c = store.create({"title": "rubbish", "grid": GRID}, DSP, now=T0)
    store.act(c.id, "dispatch", DSP, to="1-01", now=at(30))
    store.act(c.id, "arrive", DSP, now=at(200))
    store.act(c.id, "handle", DSP, now=at(900))
    c = store.act(c.id, "rework", CHK, reason="still there", now=at(1000))
    assert c.status == "dispatched" and c.arrive_due == at(1000 + 120)
    st = pol.clock_state(c, at(1060))
    assert st.clock == "arrive" and st.state == "ok"
    assert pol.plan_escalation(c, at(1120)).clock == "arrive"  # type: ignore[union-attr]


def test_reopen_restarts_clocks_and_the_tower(store: Store) -> None:
    pol = store.clocks
    c = store.create({"title": "stall", "grid": GRID, "category": "0102"}, DSP, now=T0)
    store.act(c.id, "dispatch", DSP, to="1-01", now=at(30))
    store.act(c.id, "arrive", DSP, now=at(100))
    store.act(c.id, "handle", DSP, now=at(200))
    store.act(c.id, "close", CHK, now=at(300))
    reopen_at = at(86_400)
    c = store.act(c.id, "reopen", SUP, reason="came back", now=reopen_at)
    assert c.status == "acknowledged" and c.escalation_level == 0
    assert c.dispatch_due == reopen_at + timedelta(seconds=120)
    # 0102 resolves in 1 working day: 8 working hours from Wed 09:00 local.
    assert c.resolve_due == pol.add_working_time(reopen_at, timedelta(hours=8))
    assert pol.clock_state(c, reopen_at).clock == "dispatch"
