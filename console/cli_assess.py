"""Assessment and meeting-report commands: `tafang assess` (人员考核 league tables)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

BY = ("squad", "officer", "circle", "group", "channel", "category")


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add this module's commands to `sub`; return their handlers by command name."""
    a = sub.add_parser(
        "assess",
        help="assessment (人员考核) by squad, officer, circle, group, channel or category",
        description="Every figure with its denominator (met/due) for the cases received from "
        "--from to --to (local days, both included; default: this month to today). Rates: "
        "1-3-5, 按期处置率, 结案率, 返工率, 回退率, 延期率, closes by another; 督办 count; "
        "handling time mean and p90. Definitions: store/assessment.py.",
    )
    a.add_argument("--from", dest="date_from", help="first day, YYYY-MM-DD")
    a.add_argument("--to", dest="date_to", help="last day (included), YYYY-MM-DD")
    a.add_argument("--by", choices=BY, default="squad", help="the table's rows (default squad)")
    a.add_argument("--json", action="store_true", help="the rows as JSON (plain numbers)")
    return {"assess": cmd_assess}


def cmd_assess(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from tafang.console.cli import (
        EXIT_OK,
        UsageError,
        _config,
        _day,
        _open_store,
        _print_json,
    )
    from tafang.sla.meeting import dimension, inputs_for
    from tafang.sla.meeting_render import as_markdown, plain

    dep = _config(args)
    today = datetime.now(UTC).astimezone(ZoneInfo(dep.timezone)).date()
    start = _day(args.date_from, "--from") or today.replace(day=1)
    end = _day(args.date_to, "--to") or today
    store = _open_store(args, dep)
    try:
        i = inputs_for(store, dep, "range", start=start, end=end)
    except ValueError as e:
        raise UsageError(str(e)) from e
    section = dimension(args.by)(i)
    if args.json:
        t = section.tables[0] if section else None
        rows = [] if t is None else [plain(t, row) for row in t.rows]
        _print_json({"from": str(start), "to": str(end), "by": args.by, "rows": rows})
        return EXIT_OK
    if section is None:
        print(f"no cases received {start} – {end}")
        return EXIT_OK
    print(as_markdown(i, [section]))
    return EXIT_OK
