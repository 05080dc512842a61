"""`tafang outbox`: undelivered notices and what to do with them.

`tafang outbox [--json] [--limit N]` lists the escalation notices not yet delivered, oldest
first, with their age and last error (exit 0 either way). A notice is retried until it is
delivered or a person gives up on it: `tafang outbox give-up ID --reason TEXT` (a supervisor;
on the record) or `tafang outbox retry ID` (due at once, e.g. after fixing a robot).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add this module's commands to `sub`; return their handlers by command name."""
    from tafang.console.cli import _Parser

    o = sub.add_parser(
        "outbox",
        help="undelivered escalation notices (age, last error); give up on one or retry it",
        description="Without a subcommand: list the notices not yet delivered, oldest first. "
        "A notice is retried (at most 5 minutes apart) until delivered or given up by a "
        "supervisor with a reason, which goes on the record.",
    )
    o.add_argument("--json", action="store_true", help="JSON instead of text")
    o.add_argument("--limit", type=_count, default=200, help="rows listed at most (default 200)")
    osub = o.add_subparsers(dest="outbox_cmd", required=False, parser_class=_Parser)
    g = osub.add_parser("give-up", help="stop retrying a notice (supervisor; --reason needed)")
    g.add_argument("id", type=_count, help="the notice's id (from `tafang outbox`)")
    g.add_argument("--reason", required=True, help="why, for the record")
    g.add_argument("--json", action="store_true", dest="json_sub", help="JSON instead of text")
    r = osub.add_parser("retry", help="make a notice due at once (after fixing its contact)")
    r.add_argument("id", type=_count, help="the notice's id (from `tafang outbox`)")
    r.add_argument("--json", action="store_true", dest="json_sub", help="JSON instead of text")
    return {"outbox": cmd_outbox}


def _count(v: str) -> int:
    from tafang.console.cli import MAX_ID

    try:
        n = int(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {v[:40]!r}") from None
    if not 1 <= n <= MAX_ID:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_ID}: {v[:40]}")
    return n


def cmd_outbox(args: argparse.Namespace) -> int:
    from tafang.console.cli import _config, _open_store

    dep = _config(args)
    store = _open_store(args, dep)
    if args.outbox_cmd in ("give-up", "retry"):
        return _change(args, store)
    return _list(args, store, dep)


def _list(args: argparse.Namespace, store: Any, dep: Any) -> int:
    from tafang.console.cli import EXIT_OK, _local, _print_json
    from tafang.store.notices import backlog, undelivered
    from tafang.store.text import safe

    now = datetime.now(UTC)
    rows = undelivered(store, limit=args.limit)
    total = backlog(store)
    if args.json:
        _print_json(
            {
                "undelivered": total.count,
                "oldest_at": total.oldest.isoformat() if total.oldest else None,
                "oldest_age_seconds": round(total.age_seconds(now), 1),
                "notices": [_notice_json(n, now) for n in rows],
            }
        )
        return EXIT_OK
    for n in rows:
        case = f"#{n.case_id}" if n.case_id is not None else "-"
        print(
            f"{n.id:>7} {_age(n.created_at, now):>8} {safe(n.contact):<12} {case:>8} "
            f"tries {n.attempts:<4} next {_local(n.next_attempt_at, dep)}  "
            f"{safe(n.last_error[:120])}"
        )
    age = f", oldest {_age(total.oldest, now)} old" if total.oldest else ""
    print(f"{total.count} undelivered notice(s){age}")
    return EXIT_OK


def _change(args: argparse.Namespace, store: Any) -> int:
    from tafang.console.cli import EXIT_OK, EXIT_REFUSED, _actor, _print_json
    from tafang.store.notices import NoticeRefused, give_up, retry_now

    actor = _actor(args, store)
    now = datetime.now(UTC)
    try:
        if args.outbox_cmd == "give-up":
            n = give_up(store, args.id, actor, args.reason, now)
            done = "given up"
        else:
            n = retry_now(store, args.id, actor, now)
            done = "due now"
    except NoticeRefused as e:
        import sys

        print(f"tafang: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    if args.json_sub or args.json:
        _print_json({**_notice_json(n, now), "done": done, "by": actor.operator})
    else:
        print(f"notice #{n.id} ({n.key}) {done}")
    return EXIT_OK


def _notice_json(n: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": n.id,
        "key": n.key,
        "contact": n.contact,
        "case_id": n.case_id,
        "kind": n.kind,
        "attempts": n.attempts,
        "created_at": n.created_at.isoformat(),
        "age_seconds": round((now - n.created_at).total_seconds(), 1),
        "next_attempt_at": n.next_attempt_at.isoformat(),
        "last_error": n.last_error,
    }


def _age(t: datetime | None, now: datetime) -> str:
    """3 s, 12 min, 2 h 5 min: how long a notice has waited."""
    if t is None:
        return "-"
    s = max(0, int((now - t).total_seconds()))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60} min"
