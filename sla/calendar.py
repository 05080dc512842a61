"""Which days are working days: the operator's own entries, then the statutory calendar.

The `chinese_calendar` package carries the State Council's holiday notices up to the year it
was released; a deployment can type in a newer notice under `[calendar]` (holidays and the
调休 weekend workdays). A day neither source knows is counted Monday–Friday, and the gap is
reported (`gaps`) so that `config check` and the daemon can say so instead of silently
counting Spring Festival as working days.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta

import chinese_calendar
from tafang.store.config import Calendar

log = logging.getLogger("tafang.sla.calendar")


class WorkCalendar:
    """Working days of one deployment: config entries win, then chinese_calendar."""

    def __init__(self, entries: Calendar) -> None:
        self.holidays = frozenset(entries.holidays)
        self.workdays = frozenset(entries.workdays)
        self.config_years = {d.year for d in self.holidays | self.workdays}
        self._warned: set[int] = set()

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        if day in self.holidays:
            return False
        try:
            return bool(chinese_calendar.is_workday(day))
        except NotImplementedError:
            if day.year not in self._warned and day.year not in self.config_years:
                self._warned.add(day.year)
                log.warning(
                    "no holiday data for %s in chinese_calendar or [calendar]: counting "
                    "Monday-Friday as working days; add the State Council's notice to "
                    "config.toml [calendar] or upgrade chinese_calendar",
                    day.year,
                )
            return day.weekday() < 5

    def knows(self, day: date) -> bool:
        """Whether either source has data for the year of `day`."""
        if day.year in self.config_years:
            return True
        try:
            chinese_calendar.is_workday(day)
        except NotImplementedError:
            return False
        return True

    def gaps(self, start: date, days: int = 60) -> list[int]:
        """Years within [start, start + days] that no source has data for."""
        years = sorted({(start + timedelta(days=n)).year for n in range(days + 1)})
        return [y for y in years if not self.knows(date(y, 1, 1))]
