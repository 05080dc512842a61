"""`tafang replay`: a period's real arrivals re-run with another roster (sla/whatif.py)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add `replay` to `sub`; return its handler."""
    a = sub.add_parser(
        "replay",
        help="re-run a period's arrivals with another roster (what-if): 1-3-5, breaches, "
        "escalations beside what happened",
        description="Re-runs the cases received from --from to --to (local days, both "
        "included) through the same SLA policy and dispatch order, with the config's roster "
        "or --roster FILE (TOML: [[squads]] / [[shifts]] in the config's format; an officer "
        'may add duty, shifts = [...], days = ["fri", ...]). Times are fitted from the '
        "period's own record; the same --seed gives the same figures. Model: sla/whatif.py.",
    )
    a.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD")
    a.add_argument("--to", dest="date_to", required=True, help="last day (included), YYYY-MM-DD")
    a.add_argument("--roster", help="roster or shift plan (TOML; default: the config's)")
    a.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    how = a.add_mutually_exclusive_group()
    how.add_argument("--instant", action="store_true", help="compute at once (the default)")
    how.add_argument(
        "--speed",
        type=_speed,
        help="instead: play the period's reports at N× speed into the console on a scratch "
        "store, for training (you acknowledge and dispatch; officers move by themselves)",
    )
    a.add_argument("--format", choices=("md", "html", "json"), default="md", help="default md")
    a.add_argument("--out", help="write the report here instead of stdout")
    return {"replay": cmd_replay}


def _speed(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        v = 0.0
    if not 0 < v <= 10_000:
        raise argparse.ArgumentTypeError(f"{s!r} is not a speed (a number over 0, up to 10000)")
    return v


def cmd_replay(args: argparse.Namespace) -> int:
    from tafang.console.cli import (
        EXIT_OK,
        EXIT_REFUSED,
        UsageError,
        _day,
        _open_store,
    )
    from tafang.sla.policy import Policy
    from tafang.sla.whatif_render import RENDER, build
    from tafang.sla.whatif_roster import RosterError, config_roster, load_roster
    from tafang.store.config import load_config, locate_config

    first, last = _day(args.date_from, "--from"), _day(args.date_to, "--to")
    if last < first:
        raise UsageError(f"--to {last} is before --from {first}")
    cfg = locate_config(args.config)[0]
    dep = load_config(cfg)
    if args.speed:
        if args.roster or args.out or args.format != "md":
            raise UsageError(
                "--speed plays the console; --roster, --format and --out go without it"
            )
        return _train(args, dep, first, last)
    try:
        roster = load_roster(args.roster, dep, cfg) if args.roster else config_roster(dep)
    except RosterError as e:
        raise UsageError(f"roster: {e}") from None
    store = _open_store(args, dep)
    try:
        report = build(store, Policy(dep), first, last, roster, args.seed,
                       Path(args.roster).name if args.roster else "config")  # fmt: skip
    except ValueError as e:
        print(f"tafang: replay: {e}", file=sys.stderr)
        return EXIT_REFUSED
    text = RENDER[args.format](report)
    if args.out:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {args.out}: {e.strerror or e}") from e
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _train(args: argparse.Namespace, dep: Any, first: Any, last: Any) -> int:
    """The period's reports played into the console on a scratch store (console/replay_feed.py)."""
    import socket
    from zoneinfo import ZoneInfo

    from tafang.console.cli import EXIT_REFUSED, _identity, _open_store
    from tafang.console.demo import DemoOptions, prepare, scratch_url
    from tafang.console.replay_feed import ReplayFeed
    from tafang.console.run import run_console
    from tafang.sla.whatif import period_bounds
    from tafang.store.arrivals import arrival_reports

    start, end = period_bounds(first, last, ZoneInfo(dep.timezone))
    reports = arrival_reports(_open_store(args, dep), start, end)
    if not reports:
        print(f"tafang: replay: no cases received {first} – {last}", file=sys.stderr)
        return EXIT_REFUSED
    url, cleanup = scratch_url()
    feed = None
    try:
        scratch = _open_store(args, dep, url=url)
        prepare(scratch, DemoOptions(backlog=0))
        feed = ReplayFeed(scratch, reports, args.speed)
        feed.start()
        args.operator = args.operator or "demo"  # the scratch store: play anyone on the roster
        return run_console(
            scratch,
            dep,
            operator=_identity(args, scratch, scratch=True).operator,
            terminal=args.terminal or socket.gethostname(),
            lang=dep.ui.lang,
        )
    finally:
        if feed is not None:
            feed.stop()
        cleanup()
