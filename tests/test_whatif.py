"""What-if replay (`tafang replay`, sla/whatif.py) over a simulated week of Gudang history.

Tolerance for "the actual roster reproduces the actual figures": each 1-3-5 rate and 按期处置率
within 4 percentage points, cases with a breach and escalation steps within 15 %. Over seeds
1–20 on this week the widest gaps were 3.2 pp (dispatch) and 13.7 % (escalation steps): the
model draws each case's times from the record, so only the draw's noise is left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from tafang.console.cli import main
from tafang.console.history_sim import HistorySim
from tafang.sla.policy import Policy
from tafang.sla.whatif import figures, period_bounds, replay, what_happened
from tafang.sla.whatif_model import fit
from tafang.sla.whatif_render import as_html, build
from tafang.sla.whatif_roster import RosterError, config_roster, load_roster
from tafang.store.arrivals import arrivals
from tafang.store.assessment import assess
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment, default_config_path
from tafang.store.db import make_engine
from tafang.store.intake import ingest

MON, FRI, SUN = date(2023, 6, 5), date(2023, 6, 9), date(2023, 6, 11)
RATES = ("respond", "dispatch", "arrive", "handled_on_time")


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory, gudang: Deployment) -> Iterator[Store]:
    """A SQLite store holding a simulated week (Mon 5 – Sun 11 June 2023, ≈1,150 cases)."""
    path = tmp_path_factory.mktemp("week") / "week.db"
    engine = make_engine(f"sqlite:///{path}")
    s = Store(engine, gudang, clocks=Policy(gudang))
    start = datetime(2023, 6, 4, 16, 0, tzinfo=UTC)  # local midnight, Monday
    recs = HistorySim(gudang, seed=7).records(start, days=7)
    r = ingest(s, [json.dumps(x) for x in recs], origin="h", actor=Actor("s01", "t"), history=True)
    assert r.rejected == 0
    yield s
    engine.dispose()


def _officer(code: str, circle: str = "E-N1", **extra: str | list[str]) -> str:
    more = "".join(f", {k} = {json.dumps(v, ensure_ascii=False)}" for k, v in extra.items())
    return (
        f'{{ code = "{code}", name = "N{code}", agency = "enforcement", group = "basic", '
        f'circle = "{circle}"{more} }}'
    )


def _thin(tmp_path: Path, officers: list[str], name: str = "thin.toml") -> Path:
    """A roster of one squad on both shifts: few officers, so staffing shows."""
    p = tmp_path / name
    p.write_text(
        '[[squads]]\ncode = "sq1"\nname = "一中队"\nofficers = [\n  '
        + ",\n  ".join(officers)
        + '\n]\n\n[[shifts]]\ncode = "day"\nname = "白班"\nstart = "08:00"\nend = "20:00"\n'
        'squads = ["sq1"]\nleader = "s01"\n\n[[shifts]]\ncode = "night"\nname = "夜班"\n'
        'start = "20:00"\nend = "08:00"\nsquads = ["sq1"]\nleader = "s02"\n',
        encoding="utf-8",
    )
    return p


def _run(week: Store, first: date, last: date, roster, seed: int = 1):  # type: ignore[no-untyped-def]
    policy = Policy(week.d)
    start, end = period_bounds(first, last, policy.tz)
    rows = arrivals(week, start, end)
    outs = replay(rows, roster, fit(rows, week.d, end), seed, end)
    return outs, figures(outs, policy, end)


def test_the_same_seed_gives_the_same_figures(week: Store) -> None:
    policy = Policy(week.d)
    a = build(week, policy, MON, SUN, config_roster(week.d), 5, "config")
    b = build(week, policy, MON, SUN, config_roster(week.d), 5, "config")
    c = build(week, policy, MON, SUN, config_roster(week.d), 6, "config")
    assert a.replay == b.replay and a.actual == b.actual
    assert c.replay != a.replay  # the seed matters: the test above can fail


def test_the_actual_roster_reproduces_the_actual_figures(week: Store) -> None:
    r = build(week, Policy(week.d), MON, SUN, config_roster(week.d), 1, "config")
    assert r.actual.cases > 1000
    for clock in RATES:
        gap = abs(r.replay.rate(clock) - r.actual.rate(clock))  # type: ignore[operator]
        assert gap <= 0.04, (clock, r.actual.rate(clock), r.replay.rate(clock))
    for key in ("breached_cases", "escalation_steps"):
        a, b = getattr(r.actual, key), getattr(r.replay, key)
        assert abs(b - a) <= 0.15 * a, (key, a, b)
    assert r.replay.unserved == 0


def test_what_happened_counts_as_the_assessment_does(week: Store) -> None:
    policy = Policy(week.d)
    start, end = period_bounds(MON, SUN, policy.tz)
    mine = figures(what_happened(arrivals(week, start, end), end), policy, end)
    theirs = assess(week, week.d, start, end, end).total.rates
    for clock in RATES:
        assert (mine.met[clock], mine.due[clock]) == (theirs[clock].met, theirs[clock].due)


def test_an_extra_officer_does_not_make_things_worse(week: Store, tmp_path: Path) -> None:
    two = [_officer("1-01"), _officer("1-02", "E-N2")]
    thin = load_roster(_thin(tmp_path, two), week.d, default_config_path())
    more = load_roster(
        _thin(tmp_path, [*two, _officer("1-03", "E-N3")], "more.toml"),
        week.d,
        default_config_path(),
    )
    _, a = _run(week, FRI, FRI, thin)
    _, b = _run(week, FRI, FRI, more)
    assert b.met["arrive"] >= a.met["arrive"]
    assert b.escalation_steps <= a.escalation_steps
    assert b.met["arrive"] > a.met["arrive"]  # two officers for a day are too few: it shows


def test_off_duty_officers_are_not_sent(week: Store, tmp_path: Path) -> None:
    officers = [_officer("1-01"), _officer("1-02", "E-N2", duty="off_duty")]
    outs, _ = _run(
        week, FRI, FRI, load_roster(_thin(tmp_path, officers), week.d, default_config_path())
    )
    sent = {o.assignee for o in outs}
    assert "1-01" in sent and "1-02" not in sent
    outs, _ = _run(
        week,
        FRI,
        FRI,
        load_roster(
            _thin(tmp_path, [*officers[:1], _officer("1-02", "E-N2")], "on.toml"),
            week.d,
            default_config_path(),
        ),
    )
    assert "1-02" in {o.assignee for o in outs}  # on duty, the same officer takes cases


def test_an_officer_for_friday_nights_works_only_then(week: Store, tmp_path: Path) -> None:
    extra = _officer("1-09", "E-N3", shifts=["night"], days=["fri"])
    roster = load_roster(_thin(tmp_path, [_officer("1-01"), extra]), week.d, default_config_path())
    outs, _ = _run(week, MON, SUN, roster)
    theirs = [o for o in outs if o.assignee == "1-09"]
    assert theirs
    for o in theirs:
        sent = o.times[1].astimezone(Policy(week.d).tz)  # type: ignore[union-attr]
        friday_night = (sent.weekday() == 4 and sent.hour >= 20) or (
            sent.weekday() == 5 and sent.hour < 8
        )
        assert friday_night, sent


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[[squads]]\ncode = 'sq1'\nname = 'x'\nofficers = [{ code = '1', name = 'n', "
         "agency = 'a', group = 'basic', circle = 'E-N1', wings = 2 }]\n",
         "squads[0].officers[0].wings: unknown key"),
        ("[[squads]]\ncode = 'sq1'\nname = \n", "line 3"),
        ("[staff]\nn = 5\n", "staff: unknown key"),
        ("[[squads]]\ncode = 'sq1'\nname = 'x'\nofficers = [{ code = '1', name = 'n', agency = "
         "'a', group = 'basic', circle = 'E-N1', duty = 'asleep' }]\n", "officers[0].duty"),
    ],
)  # fmt: skip
def test_a_bad_roster_file_is_a_usage_error_naming_the_place(
    week: Store,
    tmp_path: Path,
    text: str,
    says: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch,
) -> None:
    f = tmp_path / "r.toml"
    f.write_text(text, encoding="utf-8")
    monkeypatch.setenv("TAFANG_CONFIG", str(default_config_path()))
    db = str(week.engine.url.database)
    args = ["--db", db, "replay", "--from", "2023-06-05", "--to", "2023-06-11", "--roster", str(f)]
    assert main(args) == 2
    assert says in capsys.readouterr().err
    with pytest.raises(RosterError):
        load_roster(f, week.d, default_config_path())


@pytest.mark.parametrize(
    "dates",
    [("2023-06-32", "2023-06-11"), ("2023-06-05", "yesterday"), ("2023-06-11", "2023-06-05")],
)
def test_bad_dates_are_usage_errors(
    week: Store, dates: tuple[str, str], capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("TAFANG_CONFIG", str(default_config_path()))
    db = str(week.engine.url.database)
    assert main(["--db", db, "replay", "--from", dates[0], "--to", dates[1]]) == 2
    assert "--" in capsys.readouterr().err


def test_the_command_prints_each_format(
    week: Store, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("TAFANG_CONFIG", str(default_config_path()))
    db = str(week.engine.url.database)
    base = ["--db", db, "replay", "--from", "2023-06-09", "--to", "2023-06-09", "--seed", "3"]
    assert main([*base, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["seed"] == 3 and doc["actual"]["cases"] == doc["replay"]["cases"] > 100
    assert main(base) == 0
    assert "| 按时到场率" in capsys.readouterr().out
    weird = _thin(tmp_path, [_officer("1-01"), _officer("1-02")], "<b>x&.toml")
    assert main([*base, "--format", "html", "--roster", str(weird)]) == 0
    out = capsys.readouterr().out
    assert "&lt;b&gt;x&amp;.toml" in out and "<b>x" not in out
    assert main(["--db", db, "replay", "--from", "2022-01-01", "--to", "2022-01-02"]) == 1
    assert "nothing to fit" in capsys.readouterr().err


def test_html_is_escaped(week: Store) -> None:
    r = build(week, Policy(week.d), FRI, FRI, config_roster(week.d), 1, "<script>")
    assert "<script>" not in as_html(r) and "&lt;script&gt;" in as_html(r)


def test_speed_plays_the_reports_into_a_scratch_store_for_the_trainee(
    week: Store, tmp_path: Path
) -> None:
    from tafang.console.demo import DemoOptions, make_demo_store, prepare
    from tafang.console.replay_feed import ReplayFeed
    from tafang.store.arrivals import arrival_reports

    start, end = period_bounds(FRI, FRI, Policy(week.d).tz)
    reports = arrival_reports(week, start, end)[:12]
    scratch, _d, _p = make_demo_store(tmp_path, default_config_path())
    prepare(scratch, DemoOptions(backlog=0, sweep=False))
    feed = ReplayFeed(scratch, reports, speed=60.0)
    offset = reports[5][0] - reports[0][0]  # the sixth report's place in the period
    feed.tick(feed.started_at + offset / 60 + timedelta(seconds=1))
    assert feed.posted >= 6 and len(scratch.cases("all")) == feed.posted < 12
    assert {c.status for c in scratch.cases("all")} == {"new"}  # ack and dispatch: the trainee's
    assert {c.title for c in scratch.cases("all")} <= {r["title"] for _t, r in reports}
    c = scratch.cases("all")[0]
    c = scratch.act(c.id, "ack", Actor("d01", "t"))
    to = next(o.code for o in scratch.officers() if o.duty == "on_duty")
    scratch.act(c.id, "dispatch", Actor("d01", "t"), to=to)
    feed.tick(datetime.now(UTC) + timedelta(minutes=10))  # officers' side, 60× quicker
    now = next(x for x in scratch.cases("all") if x.id == c.id)
    assert now.status == "on_scene"  # the officer arrived by themself


@pytest.mark.parametrize("extra", [["--speed", "0"], ["--speed", "5", "--instant"],
                                   ["--speed", "5", "--format", "html"]])  # fmt: skip
def test_speed_refuses_what_it_cannot_do(
    week: Store, extra: list[str], capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    monkeypatch.setenv("TAFANG_CONFIG", str(default_config_path()))
    db = str(week.engine.url.database)
    args = ["--db", db, "replay", "--from", "2023-06-05", "--to", "2023-06-05", *extra]
    assert main(args) == 2
    assert capsys.readouterr().err


def test_a_day_replays_on_either_database(store: Store) -> None:
    start = datetime(2023, 6, 8, 16, 0, tzinfo=UTC)  # Friday 9 June, local midnight
    recs = HistorySim(store.d, seed=11).records(start, days=1)
    ingest(store, [json.dumps(x) for x in recs], origin="h", actor=Actor("s01", "t"), history=True)
    policy = Policy(store.d)
    r = build(store, policy, FRI, FRI, config_roster(store.d), 2, "config")
    theirs = assess(store, store.d, *period_bounds(FRI, FRI, policy.tz), datetime.now(UTC))
    assert r.actual.cases == r.replay.cases == theirs.total.cases > 100
    assert r.actual.met["arrive"] == theirs.total.rates["arrive"].met


def test_the_friday_night_roster_adds_one_officer_then_only(gudang: Deployment) -> None:
    from tafang.sla.whatif import period_bounds as bounds

    f = Path(__file__).parent / "fixtures" / "roster_friday_night.toml"
    r = load_roster(f, gudang, default_config_path())
    assert [s.code for s in r.d.squads] == [s.code for s in gudang.squads]  # the rest kept
    tz = Policy(gudang).tz
    fri_22 = bounds(FRI, FRI, tz)[0] + timedelta(hours=22)  # Friday 22:00 local
    assert r.duties_at(fri_22)["2-12"] == "on_duty"
    assert r.duties_at(fri_22 - timedelta(days=1))["2-12"] == "off_duty"
    assert r.duties_at(fri_22)["2-01"] == "off_duty"  # 二中队 itself works days


def test_a_bad_squad_is_named_by_its_place_in_the_file(gudang: Deployment, tmp_path: Path) -> None:
    f = tmp_path / "r.toml"
    f.write_text(
        "[[squads]]\ncode = 'sq3'\nname = 'x'\nofficers = [{ code = '3-99', name = 'n' }]\n",
        encoding="utf-8",
    )
    with pytest.raises(RosterError) as e:
        load_roster(f, gudang, default_config_path())
    assert e.value.where.startswith("squads[0].officers[0].")  # sq3 is the config's third
