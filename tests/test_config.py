"""The deployment as data: the shipped Gudang config, a tiny second one, and refused files."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest
from tafang.store.config import (
    LEVELS,
    ConfigError,
    Deployment,
    default_config_path,
    load_config,
    locate_config,
)

TINY = Path(__file__).parent / "fixtures" / "tiny.toml"


# --- the shipped Gudang deployment -------------------------------------------------------------


@pytest.fixture(scope="module")
def gudang() -> Deployment:
    return load_config()


def test_default_path_is_the_shipped_file(gudang: Deployment) -> None:
    assert default_config_path().name == "config.toml"
    assert default_config_path().is_file()
    assert load_config(default_config_path()) == gudang
    assert gudang.timezone == "Asia/Shanghai"
    assert gudang.ui.lang == "zh"


def test_config_is_looked_up_in_the_documented_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config, TAFANG_CONFIG, ./config.toml, user dir, site dir, then the packaged one."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TAFANG_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "user"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "site"))
    assert locate_config() == (default_config_path(), "packaged default")
    steps = [
        (tmp_path / "site" / "tafang" / "config.toml", "site config dir"),
        (tmp_path / "user" / "tafang" / "config.toml", "user config dir"),
        (tmp_path / "config.toml", "./config.toml"),
    ]
    for path, how in steps:  # each more specific place wins over the ones before
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        found, said = locate_config()
        assert (found.resolve(), said) == (path.resolve(), how)
    monkeypatch.setenv("TAFANG_CONFIG", "/from/env.toml")
    assert locate_config() == (Path("/from/env.toml"), "TAFANG_CONFIG")
    assert locate_config("/given.toml") == (Path("/given.toml"), "--config")


def test_tower_sizes(gudang: Deployment) -> None:
    t = gudang.tower
    assert t.centre.name == "古荡街道执法指挥中心"
    assert len(t.risk_circles) == 2
    assert len(t.emergency_circles) == 4
    assert len(t.enforcement_circles) == 7
    assert len(t.grids) == 105
    assert {c.half for c in t.risk_circles} == {"north", "south"}
    halves = {"north": 0, "south": 0}
    for g in t.grids:
        halves[g.half] += 1
    assert halves["north"] > 0 and halves["south"] > 0


def test_every_grid_resolves_up_the_tower(gudang: Deployment) -> None:
    enf = {c.code for c in gudang.tower.enforcement_circles}
    emer = {c.code for c in gudang.tower.emergency_circles}
    risk = {c.code: c.half for c in gudang.tower.risk_circles}
    for g in gudang.tower.grids:
        circles = gudang.circles_of(g.code)
        assert circles is not None, g.code
        e, m, r = circles
        assert e == g.circle and e in enf and m in emer and r in risk
        assert risk[r] == g.half, f"{g.label} is {g.half} but its risk circle is {risk[r]}"
    assert gudang.circles_of("00000000000000") is None
    # every circle at every level is used
    used = [gudang.circles_of(g.code) for g in gudang.tower.grids]
    assert {u[0] for u in used} == enf
    assert {u[1] for u in used} == emer
    assert {u[2] for u in used} == set(risk)


def test_grid_codes_labels_and_map(gudang: Deployment) -> None:
    grids = gudang.tower.grids
    community_code: dict[str, str] = {}
    for g in grids:
        assert re.fullmatch(r"330106007\d{5}", g.code), g.code
        community_code.setdefault(g.community, g.code[9:12])
        assert community_code[g.community] == g.code[9:12], g.code
        prefix = "N" if g.half == "north" else "S"
        assert re.fullmatch(prefix + r"\d-\d{2}", g.label), g.label
        assert gudang.grids_by_label[g.label] is g
    assert len(community_code) == 8
    assert len(set(community_code.values())) == 8
    assert {"古荡东区", "古荡北区", "古荡南区", "文华", "益乐", "嘉绿苑", "莲花", "古墩"} == set(
        community_code
    )
    # one cell per map position; a free row (文三西路) between the halves
    places = {(g.row, g.col) for g in grids}
    assert len(places) == len(grids)
    north = max(g.row for g in grids if g.half == "north")
    south = min(g.row for g in grids if g.half == "south")
    assert south - north >= 2
    # each enforcement circle is 15 cells forming one connected block on the map
    for c in gudang.tower.enforcement_circles:
        cells = {(g.row, g.col) for g in grids if g.circle == c.code}
        assert len(cells) == 15, c.code
        seen, todo = set(), [next(iter(cells))]
        while todo:
            r, k = todo.pop()
            if (r, k) in seen or (r, k) not in cells:
                continue
            seen.add((r, k))
            todo += [(r + 1, k), (r - 1, k), (r, k + 1), (r, k - 1)]
        assert seen == cells, f"{c.code} is not one block"


def test_channels_groups_and_categories(gudang: Deployment) -> None:
    assert gudang.channel_codes == {
        "xihu_code", "four_platforms", "city_ops", "enterprise", "enforcement",
        "ping_an", "grid_app", "smart_alarm", "hotline", "patrol",
    }  # fmt: skip
    assert len(gudang.channels) == 10
    assert all(c.name and c.name_en for c in gudang.channels)
    assert {g.code for g in gudang.case_groups} == {
        "basic", "resources_env", "hr_social", "market", "emergency_fire",
    }  # fmt: skip
    assert [m.code for m in gudang.major_classes] == ["01", "02", "03", "04", "05", "06"]
    cats = gudang.categories_by_code
    assert len(cats) >= 20
    for code in ("0590", "0601", "0602", "0603", "0604", "0605", "0606", "0607", "0303"):
        assert code in cats, code
    assert {c.major for c in cats.values()} == {m.code for m in gudang.major_classes}
    assert all(c.name and c.name_en for c in cats.values())
    assert cats["0601"].resolve is not None and cats["0601"].resolve.amount == 15
    assert cats["0601"].resolve.unit == "working_days"
    assert cats["0590"].resolve is not None and cats["0590"].resolve.unit == "hours"
    fire = next(c for c in cats.values() if c.name == "火灾")
    assert fire.sla.respond is not None and fire.sla.respond < gudang.sla.respond


def test_sla(gudang: Deployment) -> None:
    sla = gudang.sla
    assert (sla.respond, sla.dispatch, sla.arrive) == (60, 180, 300)
    assert sla.at_risk == 0.8 and sla.escalation_interval == 120
    assert (sla.resolve.amount, sla.resolve.unit) == (1, "working_days")
    assert set(sla.priorities) == {"urgent", "critical"}
    for name in ("respond", "dispatch", "arrive"):
        default = getattr(sla, name)
        urgent = getattr(sla.priorities["urgent"], name)
        critical = getattr(sla.priorities["critical"], name)
        assert urgent is not None and critical is not None
        assert critical <= urgent < default
    assert sla.working_hours.periods == ["08:00-12:00", "14:00-18:00"]


def test_people(gudang: Deployment) -> None:
    assert [s.name for s in gudang.squads] == ["一中队", "二中队", "三中队", "支援队"]
    officers = [o for s in gudang.squads for o in s.officers]
    assert len(officers) >= 40
    assert len(gudang.officers_by_code) == len(officers)
    assert len({o.name for o in officers}) == len(officers)
    for s in gudang.squads:
        assert sum(o.role == "leader" for o in s.officers) == 1, s.code
    agencies = [o.agency for o in officers]
    assert set(agencies) == {"police", "enforcement", "traffic", "market", "emergency"}
    assert max(set(agencies), key=agencies.count) == "enforcement"
    assert {o.group for o in officers} == {g.code for g in gudang.case_groups}
    assert {o.circle for o in officers} == {c.code for c in gudang.tower.enforcement_circles}
    bikes = [p for p in gudang.partners if "0590" in p.categories]
    assert {p.code for p in bikes} == {"meituan", "hellobike", "qingju"}
    assert gudang.role_of("demo") == "dispatcher"
    assert sum(o.role == "supervisor" for o in gudang.operators) == 2
    supervisor = next(o.code for o in gudang.operators if o.role == "supervisor")
    assert gudang.role_of(supervisor) == "supervisor"


def test_contacts_and_feeds(gudang: Deployment) -> None:
    for level in range(len(LEVELS)):
        c = gudang.contact_for(level)
        assert c is not None, LEVELS[level]
        if level > 0:
            assert c.format == "dingtalk" and c.token_env and c.secret_env
    assert gudang.contact_for(0).format == "json"  # type: ignore[union-attr]
    assert gudang.feeds == []


# --- a second, unrelated deployment ------------------------------------------------------------


def test_tiny_deployment_loads() -> None:
    d = load_config(TINY)
    assert d.name == "Riverside" and d.timezone == "Europe/London" and d.ui.lang == "en"
    assert len(d.tower.grids) == 4 and len(d.tower.enforcement_circles) == 2
    assert d.channel_codes == {"hotline", "front_desk"}
    assert [len(s.officers) for s in d.squads] == [3]
    assert all(d.circles_of(g.code) is not None for g in d.tower.grids)
    assert d.circles_of("99123401000201") == ("E", "M-TOWN", "R-TOWN")
    assert all(d.contact_for(level) is not None for level in range(len(LEVELS)))
    assert d.sla.respond == 90 and d.sla.working_hours.periods == ["09:00-17:00"]
    assert d.categories_by_code["0403"].sla.respond == 20
    assert d.role_of("ops") == "supervisor" and d.role_of("nobody") is None
    gudang = load_config()
    assert not set(d.grids_by_code) & set(gudang.grids_by_code)


# --- refused files -----------------------------------------------------------------------------


def _tiny() -> str:
    return TINY.read_text("utf-8")


def _sub(text: str, old: str, new: str) -> str:
    """Replace `old`, which must occur exactly once, so a stale edit fails loudly."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    return text.replace(old, new)


def _grid_line(text: str, i: int) -> str:
    code = tomllib.loads(text)["tower"]["grids"][i]["code"]
    (line,) = [ln for ln in text.splitlines() if f'code = "{code}"' in ln]
    return line


def _line_no(text: str, needle: str) -> int:
    return next(n for n, ln in enumerate(text.splitlines(), 1) if needle in ln)


def _top_name_line(text: str) -> str:
    return f'name = "{tomllib.loads(text)["name"]}"\n'


# Each case: (mutation of the tiny TOML text, expected key path, regex the reason must match).
Mutation = Callable[[str], str]


def _syntax_error(t: str) -> str:
    line = _top_name_line(t)
    return _sub(t, line, line.replace('"\n', "\n"))  # unterminated string


def _unknown_top(t: str) -> str:
    line = _top_name_line(t)
    return _sub(t, line, line + 'colour = "blue"\n')


def _unknown_in_grid(t: str) -> str:
    line = _grid_line(t, 2)
    return _sub(t, line, line.replace(" }", ', colour = "blue" }'))


def _unknown_in_sla(t: str) -> str:
    return _sub(t, "[sla]\n", "[sla]\nrespnd = 30\n")


def _unknown_circle(t: str) -> str:
    line = _grid_line(t, 3)
    return _sub(t, line, re.sub(r'circle = "[^"]*"', 'circle = "NOWHERE"', line))


def _short_grid_code(t: str) -> str:
    line = _grid_line(t, 1)
    return _sub(t, line, re.sub(r'code = "(\d{13})\d"', r'code = "\1"', line))


def _missing_name(t: str) -> str:
    return _sub(t, _top_name_line(t), "")


def _missing_category_group(t: str) -> str:
    group = tomllib.loads(t)["categories"][1]["group"]
    head = t.index("[[categories]]", t.index("[[categories]]") + 1)
    line = f'group = "{group}"\n'
    at = t.index(line, head)
    return t[:at] + t[at + len(line) :]


def _bad_timezone(t: str) -> str:
    tz = tomllib.loads(t)["timezone"]
    return _sub(t, f'timezone = "{tz}"', 'timezone = "Mars/Olympus_Mons"')


def _unknown_risk(t: str) -> str:
    risk = tomllib.loads(t)["tower"]["emergency_circles"][0]["risk"]
    return _sub(t, f'risk = "{risk}"', 'risk = "R-MOON"')


def _officer_unknown_group(t: str) -> str:
    o = tomllib.loads(t)["squads"][0]["officers"][2]
    (line,) = [ln for ln in t.splitlines() if f'code = "{o["code"]}"' in ln]
    return _sub(t, line, line.replace(f'group = "{o["group"]}"', 'group = "bakery"'))


def _duplicate_grid_code(t: str) -> str:
    first = tomllib.loads(t)["tower"]["grids"][0]["code"]
    line = _grid_line(t, 3)
    return _sub(t, line, re.sub(r'code = "\d+"', f'code = "{first}"', line))


def _bad_priority(t: str) -> str:
    return _sub(
        t,
        "[sla.working_hours]",
        "[sla.priorities]\nurgnt = { respond = 10 }\n\n[sla.working_hours]",
    )


def _backwards_period(t: str) -> str:
    periods = tomllib.loads(t)["sla"]["working_hours"]["periods"]
    return _sub(t, f'"{periods[0]}"', '"17:00-09:00"')


BROKEN: list[tuple[str, Mutation, str, str]] = [
    ("unknown top-level key", _unknown_top, "colour", r"^unknown key$"),
    ("unknown key in a grid", _unknown_in_grid, "tower.grids[2].colour", r"^unknown key$"),
    ("unknown key in [sla]", _unknown_in_sla, "sla.respnd", r"^unknown key$"),
    ("grid in unknown circle", _unknown_circle, "tower.grids[3].circle", r"unknown code 'NOWHERE'"),
    ("13-digit grid code", _short_grid_code, "tower.grids[1].code", r"pattern"),
    ("missing name", _missing_name, "name", r"^required key is missing$"),
    ("category without group", _missing_category_group, "categories[1].group", r"^required key"),
    ("bad time zone", _bad_timezone, "timezone", r"unknown time zone 'Mars/Olympus_Mons'"),
    ("unknown risk circle", _unknown_risk, "tower.emergency_circles[0].risk", r"'R-MOON'"),
    ("officer in unknown group", _officer_unknown_group, "squads[0].officers[2].group", r"bakery"),
    ("duplicate grid code", _duplicate_grid_code, "tower.grids", r"^duplicate code '\d{14}'$"),
    ("unknown priority", _bad_priority, "sla.priorities", r"unknown priority 'urgnt'"),
    ("backwards period", _backwards_period, "sla.working_hours.periods", r"'17:00-09:00'"),
]


def _write(tmp_path: Path, content: str | bytes) -> Path:
    p = tmp_path / "config.toml"
    if isinstance(content, str):
        content = content.encode("utf-8")
    p.write_bytes(content)
    return p


def _refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.path == str(path)
    assert str(path) in str(err) and err.reason in str(err)
    return err


def test_unmodified_tiny_copy_loads(tmp_path: Path) -> None:
    """The baseline the mutations start from is valid, so each refusal is the mutation's."""
    assert load_config(_write(tmp_path, _tiny())) == load_config(TINY)


@pytest.mark.parametrize(
    ("mutate", "key", "reason"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_config_is_refused(tmp_path: Path, mutate: Mutation, key: str, reason: str) -> None:
    text = mutate(_tiny())
    assert text != _tiny()
    err = _refused(_write(tmp_path, text))
    assert err.key == key
    assert re.search(reason, err.reason), err.reason


def test_several_problems_report_the_first_and_count_the_rest(tmp_path: Path) -> None:
    err = _refused(_write(tmp_path, _unknown_in_sla(_unknown_top(_tiny()))))
    assert err.key in {"colour", "sla.respnd"}
    assert err.reason == "unknown key (and 1 more problem)"


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    text = _tiny()
    line = _line_no(text, _top_name_line(text).strip())
    err = _refused(_write(tmp_path, _syntax_error(text)))
    assert err.key == ""
    assert err.reason.startswith("not valid TOML")
    assert f"line {line}" in err.reason


def test_non_utf8_file_is_refused(tmp_path: Path) -> None:
    text = _sub(_tiny(), _top_name_line(_tiny()), 'name = "河畔镇"\n')
    data = text.encode("gbk")  # as saved by an editor set to the legacy code page
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    err = _refused(_write(tmp_path, data))
    assert err.key == ""
    assert err.reason.startswith("not UTF-8")
    assert load_config(_write(tmp_path, text)).name == "河畔镇"  # same text in UTF-8 is fine


def test_missing_file_is_refused(tmp_path: Path) -> None:
    err = _refused(tmp_path / "absent.toml")
    assert err.key == ""
    assert err.reason.startswith("cannot read")
