"""A config value of another TOML type than its key takes is refused, not coerced.

Reproductions: `[sla] respond = true` passed `config check` and became 1 second,
`respond = "60"` and `sweep_sync_commit = "no"` were accepted. TOML carries its types, so
each is now a config error (exit 2) naming the file, the key and "wrong type"; an integer
where a float is wanted stays accepted (TOML writers write 5 for 5.0), and values parsed from
strings on purpose (times, URLs, codes, ISO dates) keep working.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError
from tafang.store.config import ConfigError, Deployment, Sla, load_config

from tests.test_config_bounds import TINY, _with
from tests.test_config_bounds import _refused as refused
from tests.test_scripting import tafang

ROOT = Path(__file__).resolve().parents[1]


def _refused(path: Path) -> ConfigError:
    e = refused(path)
    assert e.path == str(path)
    return e


# (old text, new text, key path, what the reason must say)
WRONG: list[tuple[str, str, str, str]] = [
    # the reviewer's three reproductions
    ("respond = 90\n", "respond = true\n", "sla.respond", "true (a boolean) where an integer"),
    ("respond = 90\n", 'respond = "60"\n', "sla.respond", "'60' (a string) where an integer"),
    (
        "[sla]\n",
        '[sla]\nsweep_sync_commit = "no"\n',
        "sla.sweep_sync_commit",
        "'no' (a string) where true or false",
    ),
    # the same rule elsewhere
    ("respond = 90\n", "respond = 90.0\n", "sla.respond", "90.0 (a float) where an integer"),
    ("at_risk = 0.75", "at_risk = true", "sla.at_risk", "true (a boolean) where a number"),
    ("at_risk = 0.75", 'at_risk = "0.75"', "sla.at_risk", "'0.75' (a string) where a number"),
    ("[sla]\n", "[sla]\nsweep_sync_commit = 1\n", "sla.sweep_sync_commit", "1 (an integer)"),
    (
        "sla = { respond = 20, arrive = 900 }",
        "sla = { respond = 20, arrive = false }",
        "categories[1].sla.arrive",
        "false (a boolean) where an integer",
    ),
    ('lang = "en"', 'lang = "en"\nbell_on_breach = "yes"', "ui.bell_on_breach", "'yes'"),
    ('name = "Street wardens"', "name = 7", "contacts[0].name", "7 (an integer) where a string"),
    ("[ui]", "[dupes]\nenabled = 0\n\n[ui]", "dupes.enabled", "0 (an integer) where true or false"),
    ("[ui]", "[calendar]\nholidays = [1801958400]\n\n[ui]", "calendar.holidays[0]", "a date"),
    ("[ui]", "[intake]\nmax_line_bytes = true\n\n[ui]", "intake.max_line_bytes", "a boolean"),
    (
        "[ui]",
        "[calendar]\nworkdays = [2027-02-14T00:00:00]\n\n[ui]",
        "calendar.workdays[0]",
        "(a date-time) where a date",
    ),
]


@pytest.mark.parametrize("text", ['"1801958400"', '"20270208"', '"2027-02-08T00:00:00"'])
def test_a_date_string_must_read_yyyy_mm_dd(tmp_path: Path, text: str) -> None:
    """Not a timestamp or another spelling that pydantic's date parser would also take."""
    e = _refused(_with(tmp_path, "[ui]", f"[calendar]\nholidays = [{text}]\n\n[ui]"))
    assert e.key == "calendar.holidays[0]"
    assert e.reason == f"{text.replace(chr(34), chr(39))} is not a date YYYY-MM-DD"


@pytest.mark.parametrize(
    ("old", "new", "key", "says"),
    WRONG,
    ids=[f"{w[2]}-{i}" for i, w in enumerate(WRONG)],
)
def test_a_value_of_another_type_is_refused(
    tmp_path: Path, old: str, new: str, key: str, says: str
) -> None:
    e = _refused(_with(tmp_path, old, new))
    assert e.key == key
    assert e.reason.startswith("wrong type: "), e.reason
    assert says in e.reason, e.reason


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("respond = 90\n", "respond = true\n"),
        ("respond = 90\n", 'respond = "60"\n'),
        ("[sla]\n", '[sla]\nsweep_sync_commit = "no"\n'),
    ],
    ids=["respond-bool", "respond-string", "sweep_sync_commit-string"],
)
@pytest.mark.parametrize("as_json", [False, True])
def test_config_check_exits_2_on_a_wrong_type(
    tmp_path: Path, old: str, new: str, as_json: bool
) -> None:
    cfg = _with(tmp_path, old, new)
    code, out, err = tafang(tmp_path, "config", "check", *(["--json"] if as_json else []))
    assert (code, out) == (2, "")
    key = "sla.sweep_sync_commit" if "sweep" in new else "sla.respond"
    assert str(cfg) in err and key in err and "wrong type" in err, err
    assert "Traceback" not in err


def test_the_unmodified_tiny_config_passes_config_check(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text(TINY, "utf-8")
    code, out, err = tafang(tmp_path, "config", "check", "--json")
    assert code == 0, err
    assert json.loads(out)
    assert load_config(cfg).sla.respond == 90


def test_an_integer_where_a_float_is_wanted_is_accepted(tmp_path: Path) -> None:
    text = "[dupes]\nradius_m = 300\nthreshold = 1\n\n[ui]\nrefresh_seconds = 2"
    d = load_config(_with(tmp_path, "[ui]", text))
    assert d.dupes.radius_m == 300.0 and isinstance(d.dupes.radius_m, float)
    assert d.dupes.threshold == 1.0 and d.ui.refresh_seconds == 2.0
    assert d.categories[0].resolve is not None and d.categories[0].resolve.amount == 3.0


def test_values_parsed_from_strings_keep_working(tmp_path: Path) -> None:
    """Dates as TOML dates or ISO strings, times of day, URLs, literals and digit codes."""
    cal = '[calendar]\nholidays = [2027-02-05, "2027-02-08"]\nworkdays = [2027-02-14]\n\n[ui]'
    d = load_config(_with(tmp_path, "[ui]", cal))
    assert d.calendar.holidays == [date(2027, 2, 5), date(2027, 2, 8)]
    assert d.calendar.workdays == [date(2027, 2, 14)]
    assert d.sla.working_hours.periods == ["09:00-17:00"]
    assert d.contacts[0].url == "http://127.0.0.1:9/grid" and d.ui.lang == "en"
    assert all(len(g.code) == 14 for g in d.tower.grids)


def test_the_shipped_configs_still_load() -> None:
    """config.toml (with shifts "08:00"/"20:00", reports "mon 08:30", feeds, robots) and the
    packaged copy validate under the strict types."""
    shipped = load_config(ROOT / "config.toml")
    assert shipped.shifts and shipped.shifts[0].start == "08:00"
    assert load_config() == shipped


def test_the_rule_is_the_models_not_only_the_loader() -> None:
    """Every path that validates TOML (the roster plan too) gets the same refusal."""
    with pytest.raises(ValidationError, match="int_type"):
        Sla.model_validate({"respond": True})
    with pytest.raises(ValidationError, match="bool_type"):
        Sla.model_validate({"sweep_sync_commit": "no"})
    base = load_config()
    assert Deployment.model_validate(base.model_dump()) == base  # a dump round-trips
