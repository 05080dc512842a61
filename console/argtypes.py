"""Argparse types for what a command line names: days (YYYY-MM-DD, 1900-01-01 … 2999-12-31)
and row ids (1 … 2^31 - 1), so that no value the parser took overflows later.

`date.fromisoformat` takes 0001-01-01 … 9999-12-31, but a report or a roster adds a day, a
week or a month and converts to UTC, which overflows near either end (`report daily --date
9999-12-31` was an OverflowError traceback). Bounded here, once, far from both ends, every
`--date`, `--from` and `--to` is a usage error (exit 2) naming the flag instead. Likewise an
id of 20 digits was an OverflowError from the SQLite driver.
"""

from __future__ import annotations

import argparse
from datetime import date

FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)


def parse_day(s: str) -> date:
    """A day within FIRST_DAY … LAST_DAY, else ValueError with the reason."""
    try:
        d = date.fromisoformat(s)
    except (ValueError, TypeError):
        raise ValueError(f"{s[:40]!r} is not a date (YYYY-MM-DD)") from None
    if not FIRST_DAY <= d <= LAST_DAY:
        raise ValueError(f"{s!r} is out of range ({FIRST_DAY} … {LAST_DAY})")
    return d


def day_arg(s: str) -> date:
    """`parse_day` as an argparse type: a bad day is argparse's usage error (exit 2)."""
    try:
        return parse_day(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


MAX_ID = 2**31 - 1  # the databases' INTEGER ids


def row_id(s: str) -> int:
    """An id (a plan, an item, a proposal, a notice) as argparse takes it: 1 … MAX_ID."""
    digits = s.strip().removeprefix("#")
    if not _digits(digits) or not 1 <= int(digits) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"must be a number from 1 to {MAX_ID}, not {s[:40]!r}")
    return int(digits)


def _digits(s: str) -> bool:
    """ASCII digits, few enough to convert (int() refuses over 4,300 of them)."""
    return s.isascii() and s.isdigit() and len(s) <= 12
