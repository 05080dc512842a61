"""`tafang serve` (the field API for officers' apps and pushing feeds) and `tafang selffound`.

- `tafang serve [--host H] [--port P]`: the HTTP API of console/field_api.py under uvicorn,
  beside the daemon (its own process; the daemon still sweeps and delivers the outbox).
- `tafang selffound OFFICER TITLE [--grid G] [--category C] [--found-at T] [--handled-at T]
  [--location …] [--note …] [--photo URL …] [--json]`: a self-found, self-handled case
  (自查自处) typed in for an officer; it lands handled, waiting for a checker's close.
Exit codes as DESIGN §4: 0 done, 1 refused, 2 usage, 3 store unreachable.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

Handler = Callable[[argparse.Namespace], int]


def register(sub: Any) -> dict[str, Handler]:
    """Add this module's commands to `sub`; return their handlers by command name."""
    s = sub.add_parser(
        "serve",
        help="the field API (执法通 app, pushing feeds): signed HTTP, beside the daemon",
        description="Serve the field API over HTTP (Starlette under uvicorn). Callers sign "
        "each request with their key, the secret TAFANG_FIELD_KEY_<CALLER> (environment or "
        "systemd credential); see README 'The field API'.",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8470, help="port (default 8470)")
    s.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    f = sub.add_parser(
        "selffound",
        help="a case an officer found and handled on the spot (自查自处): lands handled",
        description="Record a self-found, self-handled case for OFFICER; it waits for a "
        "checker's close like any handled case and is counted apart in reports.",
    )
    f.add_argument("officer", help="officer code, e.g. 2-03")
    f.add_argument("title", help="what was found")
    f.add_argument("--grid", help="grid code or map label (e.g. N3-07)")
    f.add_argument("--category", help="category code (e.g. 0590)")
    f.add_argument("--location", default="", help="where")
    f.add_argument("--note", default="", help="how it was handled (on the record)")
    f.add_argument("--photo", action="append", default=[], help="photo URL (repeatable)")
    f.add_argument("--found-at", help="when found: ISO 8601, local if no offset (default now)")
    f.add_argument("--handled-at", help="when handled (default now)")
    f.add_argument("--json", action="store_true")
    return {"serve": cmd_serve, "selffound": cmd_selffound}


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn
    from tafang.console.cli import EXIT_OK, UsageError, _config, _open_store
    from tafang.console.field_api import make_app

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port}: not a port")
    dep = _config(args)
    store = _open_store(args, dep)
    store.sync_roster()
    uvicorn.run(
        make_app(store),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    return EXIT_OK


def cmd_selffound(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from tafang.console.cli import (
        EXIT_OK,
        EXIT_REFUSED,
        UsageError,
        _actor,
        _config,
        _open_store,
        _print_json,
        case_json,
    )
    from tafang.console.field_api import Bad, _time
    from tafang.store.cases import Refused, utcnow
    from tafang.store.field import SelfFound, self_found

    dep = _config(args)
    tz = ZoneInfo(dep.timezone)
    now = utcnow()
    try:
        found = _time(args.found_at, tz, "--found-at") or now
        handled = _time(args.handled_at, tz, "--handled-at") or now
    except Bad as e:
        raise UsageError(str(e)) from None
    grid = dep.grids_by_label.get(args.grid or "")
    report = SelfFound(
        officer=args.officer,
        title=args.title,
        found_at=found,
        handled_at=handled,
        category=args.category,
        grid=grid.code if grid else args.grid,
        location=args.location,
        note=args.note,
        photos=tuple(args.photo),
    )
    store = _open_store(args, dep)
    try:
        case = self_found(store, report, _actor(args, store), now=now)
    except Refused as e:
        print(f"tafang: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        _print_json(case_json(case, dep))
    else:
        print(f"case {case.id}: self-found by {args.officer}, handled; waits for the check")
    return EXIT_OK
