"""The working-day calendar never silently lies about a year it has no data for."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest
from tafang.sla.calendar import WorkCalendar
from tafang.store.config import Calendar, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
# A notice typed in by an operator (the dates are an example, not the real 2027 notice).
NOTICE_2027 = Calendar(
    holidays=[date(2027, 2, 5), date(2027, 2, 8), date(2027, 2, 9)],
    workdays=[date(2027, 2, 14)],
)


def test_typed_in_notice_decides_a_year_the_package_does_not_know() -> None:
    cal = WorkCalendar(NOTICE_2027)
    assert not cal.is_working_day(date(2027, 2, 8))  # a Monday off
    assert cal.is_working_day(date(2027, 2, 14))  # a Sunday worked (调休)
    assert cal.is_working_day(date(2027, 3, 1))  # an ordinary Monday
    assert not cal.is_working_day(date(2027, 3, 6))  # an ordinary Saturday
    assert cal.gaps(date(2026, 12, 2)) == []


def test_statutory_data_still_counts_where_the_package_has_it() -> None:
    cal = WorkCalendar(Calendar())
    assert not cal.is_working_day(date(2026, 10, 1))  # National Day
    assert cal.gaps(date(2026, 9, 1)) == []


def test_a_year_without_data_is_reported_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    cal = WorkCalendar(Calendar())
    assert cal.gaps(date(2026, 12, 2)) == [2027]  # 1 January 2027 is within 60 days
    with caplog.at_level(logging.WARNING, logger="tafang.sla.calendar"):
        assert not cal.is_working_day(date(2027, 2, 6))  # a Saturday: Mon–Fri fallback
        assert cal.is_working_day(date(2027, 2, 8))  # Spring Festival Monday, unknown: worked
    assert [r.getMessage().count("2027") for r in caplog.records] == [1]


def test_a_day_both_off_and_worked_is_refused_with_its_key(tmp_path: Path) -> None:
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace("holidays = []", "holidays = [2027-02-14]")
    text = text.replace("workdays = []", "workdays = [2027-02-14]")
    bad = tmp_path / "config.toml"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert "2027-02-14 is both a holiday and a workday" in str(e.value)


def test_config_check_says_when_the_next_60_days_hold_an_unknown_year() -> None:
    import subprocess
    import sys
    from datetime import datetime
    from zoneinfo import ZoneInfo

    r = subprocess.run(
        [sys.executable, "-m", "tafang", "--config", str(ROOT / "config.toml"), "config", "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    gaps = WorkCalendar(load_config(ROOT / "config.toml").calendar).gaps(today)
    for year in gaps:  # today (December 2026) this is 2027
        assert f"warning: no holiday data for {year}" in r.stderr
    assert ("warning" in r.stderr) == bool(gaps)
