"""Config values the code cannot compute with are refused by `config check` (issue 13.4).

Reproductions: `escalation_interval = 999999999999999999` passed and every command then died
with OverflowError; `respond = 99999999999999999` rejected every intake line; a deeply nested
value gave RecursionError; an error echoed a whole 1 MiB value; `file://` feeds passed.
Each is now a config error (exit 2) naming the key and the bound, and the bounds themselves
are values the code computes with (a line is accepted under the largest allowed clocks).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tafang.sla.policy import Policy
from tafang.store.cases import Store
from tafang.store.config import (
    MAX_CLOCK_SECONDS,
    MAX_ESCALATION_INTERVAL,
    ConfigError,
    load_config,
)
from tafang.store.db import make_engine
from tafang.store.intake import ingest

from tests.conftest import migrated_sqlite
from tests.test_intake import ACTOR, line, rec
from tests.test_scripting import tafang

TINY = (Path(__file__).parent / "fixtures" / "tiny.toml").read_text("utf-8")


def _with(tmp_path: Path, old: str, new: str) -> Path:
    assert TINY.count(old) == 1, old
    f = tmp_path / "config.toml"
    f.write_text(TINY.replace(old, new), "utf-8")
    return f


def _refused(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as e:
        load_config(path)
    return e.value


@pytest.mark.parametrize(
    ("old", "new", "key", "bound"),
    [
        (
            "escalation_interval = 300",
            "escalation_interval = 999999999999999999",
            "sla.escalation_interval",
            MAX_ESCALATION_INTERVAL,
        ),
        ("respond = 90", "respond = 99999999999999999", "sla.respond", MAX_CLOCK_SECONDS),
        (
            "sla = { respond = 20, arrive = 900 }",
            "sla = { respond = 20, arrive = 1e400 }",
            "categories[1].sla.arrive",
            None,
        ),
        (
            "sla = { respond = 20, arrive = 900 }",
            "sla = { respond = 20, arrive = 99999999999999999 }",
            "categories[1].sla.arrive",
            MAX_CLOCK_SECONDS,
        ),
    ],
)
def test_a_huge_number_is_refused_naming_the_key_and_the_bound(
    tmp_path: Path, old: str, new: str, key: str, bound: int | None
) -> None:
    e = _refused(_with(tmp_path, old, new))
    assert e.key == key
    if bound is not None:
        assert f"less than or equal to {bound}" in e.reason


@pytest.mark.parametrize("amount", ["1e300", "nan", "367"])
def test_a_resolve_limit_beyond_a_year_is_refused(tmp_path: Path, amount: str) -> None:
    e = _refused(_with(tmp_path, 'amount = 3, unit = "days"', f'amount = {amount}, unit = "days"'))
    assert e.key.startswith("categories[0].resolve")
    assert "beyond 366" in e.reason or "greater than 0" in e.reason  # NaN fails gt=0


def test_config_check_exits_2_naming_the_key(tmp_path: Path) -> None:
    cfg = _with(tmp_path, "escalation_interval = 300", "escalation_interval = 999999999999999999")
    code, out, err = tafang(tmp_path, "--config", str(cfg), "config", "check")
    assert (code, out) == (2, "")
    assert "sla.escalation_interval" in err and "604800" in err
    assert "Traceback" not in err


def test_the_largest_allowed_values_are_ones_the_code_computes_with(tmp_path: Path) -> None:
    cfg = _with(
        tmp_path,
        "respond = 90\ndispatch = 240\narrive = 600",
        f"respond = {MAX_CLOCK_SECONDS}\ndispatch = {MAX_CLOCK_SECONDS}\n"
        f"arrive = {MAX_CLOCK_SECONDS}\nresolve = {{ amount = 366, unit = 'days' }}",
    )
    cfg.write_text(
        cfg.read_text("utf-8").replace(
            "escalation_interval = 300", f"escalation_interval = {MAX_ESCALATION_INTERVAL}"
        ),
        "utf-8",
    )
    d = load_config(cfg)
    store = Store(make_engine(migrated_sqlite(tmp_path / "t.db")), d, clocks=Policy(d))
    r = {**rec(1, received_at=None, category=None, grid=None), "source": d.channels[0].code}
    res = ingest(store, [line(r)], origin="t", actor=ACTOR)
    assert (res.accepted, res.rejected) == (1, 0), res.errors


@pytest.mark.parametrize("depth", [17, 400, 5000])
def test_deep_nesting_is_a_config_error_not_recursion(tmp_path: Path, depth: int) -> None:
    f = tmp_path / "config.toml"
    f.write_text(TINY + "\n[x]\ny = " + "[" * depth + "]" * depth + "\n", "utf-8")
    e = _refused(f)
    assert "nested too deeply" in e.reason
    assert depth > 400 or e.key.startswith("x.y")


def test_error_messages_cut_long_values(tmp_path: Path) -> None:
    big = "Z" * (1 << 20)
    for old, new in [
        ('timezone = "', f'timezone = "{big}'),
        ('periods = ["09:00-17:00"]', f'periods = ["{big}"]'),
        ("[ui]", f"[ui]\n{big} = 1"),
    ]:
        if old not in TINY:
            continue
        e = _refused(_with(tmp_path, old, new))
        assert len(str(e)) < 1000, (old, len(str(e)))
        assert re.search(r"…\(\d+ chars\)", str(e)), str(e)[:300]


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "gopher://x/", "ftp://x/", "javascript:alert(1)", "http://", "x"],
)
def test_feed_and_contact_urls_are_http_or_https_only(tmp_path: Path, url: str) -> None:
    e = _refused(_with(tmp_path, 'url = "http://127.0.0.1:9/grid"', f'url = "{url}"'))
    assert e.key == "contacts[0].url" and "http:// or https://" in e.reason
    feed = f'\n[[feeds]]\nchannel = "{"hotline"}"\nurl = "{url}"\n'
    f = tmp_path / "feed.toml"
    f.write_text(TINY + feed, "utf-8")
    e = _refused(f)
    assert e.key == "feeds[0].url" and "http:// or https://" in e.reason


def test_https_feeds_pass(tmp_path: Path) -> None:
    feed = f'\n[[feeds]]\nchannel = "{"hotline"}"\nurl = "HTTPS://feeds.example/x"\n'
    f = tmp_path / "feed.toml"
    f.write_text(TINY + feed, "utf-8")
    assert load_config(f).feeds[0].url == "HTTPS://feeds.example/x"
