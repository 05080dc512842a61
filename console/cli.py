"""The `tafang` command: parse, load config, open the store, run the chosen mode.

Exit codes scripts rely on: 0 done, 1 refused (illegal move, lost a race, not found,
rejected intake lines, broken record), 2 usage or config error, 3 the store is unreachable
(a database that does not answer or refuses the connection: worth retrying later, unlike 2).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

from tafang.store.clocks import CLOCKS
from tafang.store.config import (
    LEVELS,
    ConfigError,
    Deployment,
    default_config_path,
    load_config,
    locate_config,
)
from tafang.store.db import StoreError
from tafang.store.labels import labels
from tafang.store.moves import MOVES
from tafang.store.text import safe

EXIT_OK, EXIT_REFUSED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
MAX_ID = 2**31 - 1


class UsageError(Exception):
    """Bad arguments or environment: exit 2."""


class StoreDown(Exception):
    """The store cannot be reached (connection refused, timed out, file not openable): exit 3."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def _given(value: str) -> str:
    """An explicit --db / --config must name something: `--db "$DB"` with DB unset would
    otherwise fall back to the default store and write there."""
    if not value.strip():
        raise argparse.ArgumentTypeError("is empty (leave the option out for the default)")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tafang", description="Tafang 塔防 — dispatcher console and SLA daemon.")
    p.add_argument(
        "--db",
        type=_given,
        help="store URL or SQLite path (env TAFANG_DB; default: a SQLite "
        "file in the user data dir)",
    )
    p.add_argument(
        "--config",
        type=_given,
        help="deployment file (env TAFANG_CONFIG; else ./config.toml, the user or site "
        "config dir, then the packaged Gudang deployment)",
    )
    p.add_argument("--version", action="version", version=f"tafang {_version()}")
    p.add_argument(
        "--operator",
        help="who acts (env TAFANG_OPERATOR): only your own code, as the roster maps your "
        "login (PostgreSQL session role, else OS user); anyone on the demo's scratch store",
    )
    p.add_argument("--terminal", help="terminal name on the record (default: host name)")
    p.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        help="DEBUG, INFO, WARNING or ERROR (env TAFANG_LOG_LEVEL; default INFO): "
        "the daemon's JSON log lines and tafang's messages on stderr below it are dropped",
    )
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    _run_commands(sub)
    _case_commands(sub)
    _admin_commands(sub)
    _wall_command(sub)
    for name in EXTENSIONS:
        COMMANDS.update(importlib.import_module(name).register(sub))
    return p


# Command groups kept in their own modules: each has `register(sub) -> {command: handler}`
# and imports its heavy parts inside the handlers (the CLI starts in well under a second).
EXTENSIONS = (
    "tafang.console.cli_shift",
    "tafang.console.cli_field",
    "tafang.console.cli_assess",
    "tafang.console.cli_inspect",
    "tafang.console.cli_outbox",
    "tafang.console.cli_replay",
)


def _wall_command(sub: Any) -> None:
    """`tafang wall [--serve] [--host H] [--port P]`: the read-only big screen."""
    w = sub.add_parser(
        "wall",
        help="the command centre's read-only wall display (map, today's counts, breaches, "
        "squads); --serve shows it in a browser",
        description="The wall display: no action keys, only quit (ctrl+q). It opens the store "
        "read-only. With --serve, each browser session on http://HOST:PORT/ runs its own "
        "`python -m tafang wall` on the same store and config (textual-serve).",
    )
    w.add_argument("--lang", choices=["zh", "en"], help="default: config [ui] lang")
    w.add_argument("--serve", action="store_true", help="serve the wall to browsers")
    w.add_argument("--host", default="127.0.0.1", help="with --serve (default 127.0.0.1)")
    w.add_argument("--port", type=_positive, default=8000, help="with --serve (default 8000)")


def _run_commands(sub: Any) -> None:
    """The long-running modes and intake."""
    d = sub.add_parser("demo", help="console on a scratch store with a simulated live feed")
    d.add_argument("--speed", type=float, default=2.0, help="new cases per minute (default 2)")
    d.add_argument("--lang", choices=["zh", "en"])
    d.add_argument("--keep", action="store_true", help="keep the scratch store afterwards")
    c = sub.add_parser("console", help="the console on the configured store")
    c.add_argument("--lang", choices=["zh", "en"])

    dm = sub.add_parser("daemon", help="headless SLA daemon")
    dm.add_argument("--once", action="store_true", help="run every due job once and exit")

    i = sub.add_parser(
        "ingest",
        help="import JSON Lines (PATH or - for stdin); exit 1 if a line was rejected",
        description="Import JSON Lines. Prints accepted=N duplicate=N rejected=N; each rejected "
        "line is named on stderr. A progress bar (rate, ETA) is drawn on stderr only when it "
        "is a terminal.",
    )
    i.add_argument("path", help="a JSON Lines file, or - for stdin")
    i.add_argument(
        "--history",
        action="store_true",
        help="past cases as they were (status, stage times, operators): no clocks run, no "
        "escalation, no notification; one 'import' entry per batch on the record; "
        "a supervisor's move",
    )
    i.add_argument(
        "--json",
        action="store_true",
        help="print the counts and the rejected lines (line, reason) as one JSON object",
    )


def _case_commands(sub: Any) -> None:
    """`cases`, `case show` and one `case MOVE` per move of the store's registry."""
    cs = sub.add_parser("cases", help="list cases")
    cs.add_argument(
        "--status", default="open", help="open (default), all, or one status (new, acknowledged, …)"
    )
    cs.add_argument("--json", action="store_true")
    cs.add_argument("--limit", type=_positive, default=None, help="at most N cases")

    case = sub.add_parser("case", help="show or act on one case")
    csub = case.add_subparsers(dest="action", required=True, parser_class=_Parser)
    sh = csub.add_parser("show", help="one case with its timeline")
    sh.add_argument("id", type=_case_id)
    sh.add_argument("--json", action="store_true")
    du = csub.add_parser(
        "dupes",
        help="open cases that are probably the same event, best first, with score and reasons",
        description="Suggestions only ([dupes] in the config); merge with `tafang case merge "
        "ID --into OTHER`. Exit 0 with or without suggestions, 1 if the case does not exist.",
    )
    du.add_argument("id", type=_case_id)
    du.add_argument("--json", action="store_true")
    for move in MOVES.values():
        only = f"; {' or '.join(sorted(move.roles))} only" if move.roles else ""
        ap = csub.add_parser(move.name, help=move.summary + only)
        ap.add_argument("id", type=_case_id)
        ap.add_argument(
            "--reason",
            "-r",
            default="",
            help="reason / opinion for the record" + (" (required)" if move.reason else ""),
        )
        ap.add_argument(
            "--version", type=int, help="refuse unless the case is still at this version"
        )
        ap.add_argument("--json", action="store_true")
        if move.arg == "to":
            ap.add_argument("--to", required=True, help="officer code (e.g. 2-03) or squad")
        elif move.arg == "into":
            ap.add_argument("--into", type=_case_id, required=True, help="the case to keep")
        if move.name == "handle":  # 政企共管: what a partner team handled (bikes moved)
            ap.add_argument("--items", type=int, help="items handled (a partner's case)")


def _admin_commands(sub: Any) -> None:
    """Reports, the record, the store and the deployment."""
    r = sub.add_parser(
        "report",
        help="daily / weekly / monthly / ad hoc (range --from --to) meeting report",
        description="A meeting report: overview, assessment figures (1-3-5, 按期处置率, 结案率, "
        "返工率, 回退率, 延期率, 督办, closes by another) with their denominators, trend, time "
        "per stage and league tables by officer, squad, circle, channel, category and case "
        "group. CSV is one tidy long table of plain numbers.",
    )
    r.add_argument(
        "period",
        nargs="?",
        choices=["daily", "weekly", "monthly", "range"],
        help="the period; with --from/--to it may be left out (`tafang report --from D --to D`)",
    )
    r.add_argument("--date", help="a day in the period, YYYY-MM-DD (default: today)")
    r.add_argument("--from", dest="date_from", help="range: first day, YYYY-MM-DD")
    r.add_argument("--to", dest="date_to", help="range: last day (included), YYYY-MM-DD")
    r.add_argument("--format", choices=["md", "csv", "json", "html"], help="default md")
    r.add_argument("--json", action="store_true", help="the report's data as JSON (--format json)")
    r.add_argument("--out", help="write to this file instead of stdout")
    _audit_command(sub)
    _store_commands(sub)


def _audit_command(sub: Any) -> None:
    """`tafang audit verify`: the record's chain, its witnesses, and every case against it."""
    au = sub.add_parser("audit", help="the record")
    ausub = au.add_subparsers(dest="audit_cmd", required=True, parser_class=_Parser)
    av = ausub.add_parser(
        "verify", help="check the hash chain; exit 1 naming the first broken entry"
    )
    av.add_argument(
        "--anchor",
        type=_anchor,
        help="SEQ:HASH from the daemon's log (event record_head): "
        "also catches a record cut back or rewritten from there on",
    )
    av.add_argument(
        "--json",
        action="store_true",
        help="print {ok, checked, broken: {seq, reason}, anchor: {seq, hash, ok}}; "
        "a progress bar (rate, ETA) is drawn on stderr only when it is a terminal",
    )
    av.add_argument(
        "--witness",
        metavar="FILE",
        help="the daemon's witness file of anchors (default: config [record] witness_file): "
        "catches entries deleted after an anchor, and a record rewritten before one",
    )
    av.add_argument(
        "--chain-only",
        action="store_true",
        help="check the chain only, not every case against the record (faster)",
    )


def _store_commands(sub: Any) -> None:
    """The store, the deployment and the shell: `db`, `config`, `completion`."""
    db = sub.add_parser("db", help="the store")
    dbsub = db.add_subparsers(dest="db_cmd", required=True, parser_class=_Parser)
    up = dbsub.add_parser("upgrade", help="create or migrate the store to the latest schema")
    up.add_argument(
        "--json",
        action="store_true",
        help="print {revision, url (no password), officers_added}",
    )
    gr = dbsub.add_parser(
        "grant",
        help="PostgreSQL: create LOGIN's role if missing and make it a tafang ROLE "
        "(the roster in config.toml must already give LOGIN that role)",
    )
    gr.add_argument("login", help="the operator's database role, as in [[operators]] login")
    gr.add_argument(
        "role",
        choices=["viewer", "dispatcher", "supervisor", "checker", "admin", "daemon", "field"],
    )

    cf = sub.add_parser("config", help="the deployment")
    cfsub = cf.add_subparsers(dest="config_cmd", required=True, parser_class=_Parser)
    ck = cfsub.add_parser("check", help="validate the config")
    ck.add_argument("--json", action="store_true", help="print the effective deployment")
    ci = cfsub.add_parser("init", help="write the packaged deployment to the user config dir")
    ci.add_argument("--force", action="store_true", help="overwrite an existing file")

    co = sub.add_parser(
        "completion",
        help="print the shell completion script, e.g. tafang completion bash > "
        "~/.local/share/bash-completion/completions/tafang",
    )
    co.add_argument("shell", choices=["bash", "zsh"])


def _anchor(s: str) -> tuple[int, str]:
    seq, _, digest = s.partition(":")
    if not (seq.isascii() and seq.isdigit() and len(digest) == 64):
        raise argparse.ArgumentTypeError(f"anchor must be SEQ:HASH (64 hex digits), not {s!r}")
    return int(seq), digest.lower()


def _positive(s: str) -> int:
    if not (s.isascii() and s.isdigit()) or len(s) > 12 or not 1 <= int(s) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_ID}, not {s!r}")
    return int(s)


def _case_id(s: str) -> int:
    digits = s.strip().removeprefix("#")
    if not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError(f"case id must be a number, not {s!r}")
    v = int(digits)
    if not 1 <= v <= MAX_ID:
        raise argparse.ArgumentTypeError(f"case id {s!r} is out of range")
    return v


# ---- helpers --------------------------------------------------------------------------------
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tafang")
    except PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def _config(args: argparse.Namespace) -> Deployment:
    return load_config(locate_config(args.config)[0])


def _identity(args: argparse.Namespace, store: Any, *, scratch: bool = False) -> Any:
    """Who acts: the store's session role (PostgreSQL) or the OS user (SQLite), mapped by
    the roster; `--operator` / TAFANG_OPERATOR may only repeat it (store/identity.py).
    Someone else's code raises NotYou (a refusal: exit 1)."""
    from tafang.store.identity import identify

    claimed = args.operator or os.environ.get("TAFANG_OPERATOR") or None
    return identify(store.engine, store.d, claimed, scratch=scratch)


def _actor(args: argparse.Namespace, store: Any) -> Any:
    return _identity(args, store).actor(args.terminal or socket.gethostname())


# Commands that only read: on a missing store they are a usage error and create no directory
# or file (DESIGN §4); a command that writes makes the store on first use, as before.
READ_ONLY = frozenset(
    {
        "cases",
        "case show",
        "report",
        "audit",
        "config",
        "wall",
        "roster",
        "officer",  # without a word: the list
        "handover",  # without a word: the handover as it stands
        "outbox",  # without give-up / retry: the list
        "enterprise list",
        "inspection list",
        "inspection show",
        "inspection selfcheck",
        "inspection report",
        "risk list",
        "risk due",
        "risk report",
        "partner report",
    }
)


def _creates(args: argparse.Namespace) -> bool:
    """Whether this command may make a new store (it writes), or only reads."""
    if args.cmd == "officer":
        return getattr(args, "word", None) is not None
    if args.cmd == "handover":
        return getattr(args, "what", "show") != "show"
    if args.cmd == "outbox":
        return getattr(args, "outbox_cmd", None) is not None
    sub = getattr(args, "action", None) or getattr(args, "sub", None)
    return args.cmd not in READ_ONLY and f"{args.cmd} {sub}" not in READ_ONLY


def _engine(url: str | None, *, upgrade: bool = True, create: bool = True):  # type: ignore[no-untyped-def]
    """Open (and migrate) the store; anything that makes it unusable is a usage error."""
    from tafang.store.db import StoreMissing, StoreURLError, make_engine

    try:
        return make_engine(url, upgrade=upgrade, create=create)
    except StoreMissing as e:
        raise UsageError(f"{e}: create it with `tafang db upgrade` (or `tafang ingest`)") from e
    except StoreURLError as e:
        raise UsageError(f"cannot use store URL: {e}") from e
    except ModuleNotFoundError as e:
        raise UsageError(f"cannot open the store: missing driver {e.name!r}") from e
    except (OSError, StoreError) as e:
        raise _open_error(e, url) from e


def _open_error(e: Exception, url: str | None) -> Exception:
    """Why a store could not be opened, as the exit code scripts rely on: 3 (worth retrying)
    only for a server that does not answer or a SQLite file another process holds locked;
    a directory, a file that is not a database or someone else's database is 2, said so
    (systemd restarts on 3, forever)."""
    from tafang.store.db import StoreUnreachable, resolve_url

    first, resolved = _first_line(e), resolve_url(url)
    sqlite = resolved.startswith("sqlite")
    if isinstance(e, StoreUnreachable) and (not sqlite or "locked" in first):
        return StoreDown(f"cannot reach the store: {first}")
    if sqlite:
        where = resolved.removeprefix("sqlite:///")
        return UsageError(f"{where} is not a Tafang store (a SQLite file it can open): {first}")
    return UsageError(f"cannot open the store: {first}")


def _open_store(args: argparse.Namespace, dep: Deployment, url: str | None = None):  # type: ignore[no-untyped-def]
    from tafang.sla.policy import Policy
    from tafang.store.cases import Store

    return Store(_engine(url or args.db, create=_creates(args)), dep, clocks=Policy(dep))


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t else None


def _local(t: datetime | None, dep: Deployment) -> str:
    """Local time; the year only when it is not this year's (a feed's 1800 must not pass)."""
    if t is None:
        return "-"
    local = t.astimezone(ZoneInfo(dep.timezone))
    this_year = datetime.now(local.tzinfo).year
    return local.strftime("%m-%d %H:%M:%S" if local.year == this_year else "%Y-%m-%d %H:%M:%S")


def case_json(c: Any, dep: Deployment, timeline: Sequence[Any] | None = None) -> dict[str, Any]:
    """The `--json` shape of DESIGN §4 (stable; extra keys may be added, none removed)."""
    grid = dep.grids_by_code.get(c.grid or "")
    cat = dep.categories_by_code.get(c.category or "")
    out: dict[str, Any] = {
        "id": c.id,
        "status": c.status,
        "source": c.source,
        "external_id": c.external_id,
        "category": c.category,
        "category_name": cat.name if cat else None,
        "grid": c.grid,
        "grid_label": grid.label if grid else None,
        "priority": c.priority,
        "received_at": _iso(c.received_at),
        "reported_at": _iso(c.reported_at),
        "assignee": c.assignee,
        "assignee_kind": c.assignee_kind,
        "escalation_level": c.escalation_level,
        "escalation_level_name": LEVELS[c.escalation_level],
        "triage": c.triage,
        "triage_reason": c.triage_reason,
        "supervised": c.supervised,
        "merged_into": c.merged_into,
        "title": c.title,
        "description": c.description,
        "location": c.location,
        "reporter": c.reporter,
        "lat": c.lat,
        "lon": c.lon,
        "raw": c.raw_fields,
        "version": c.version,
        "deadlines": {k: _iso(getattr(c, f"{k}_due")) for k in CLOCKS},
        "updated_at": _iso(c.updated_at),
        "updated_by": c.updated_by,
    }
    if timeline is not None:
        out["timeline"] = [
            {
                "at": _iso(e.at),
                "action": e.action,
                "operator": e.operator,
                "terminal": e.terminal,
                "detail": e.detail,
            }
            for e in timeline
        ]
    return out


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _finite(obj: Any) -> Any:
    """`obj` with NaN and ±Infinity (a feed's `"lat": NaN`, kept raw) as the strings "NaN",
    "Infinity", "-Infinity": JSON has no such numbers, and strict readers (jq, JSON.parse)
    refuse the whole document for one."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else json.dumps(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def _print_json(obj: Any, indent: int | None = None) -> None:
    """UTF-8 JSON that every reader takes: non-finite numbers as strings (`_finite`), and a
    lone surrogate kept from a feed (a broken UTF-16 escape, "\\ud800") as U+FFFD: escaped,
    jq refuses it. The store keeps the raw value as it came."""
    text = json.dumps(_finite(obj), ensure_ascii=False, indent=indent, allow_nan=False)
    text = _LONE_SURROGATE.sub("\ufffd", text)
    sys.stdout.flush()
    sys.stdout.buffer.write(text.encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


def _unknown(raw: dict[str, Any], key: str) -> str:
    return "? " + safe(str(raw.get(key, "")))


def _print_case(c: Any, dep: Deployment, timeline: Sequence[Any]) -> None:
    grid = dep.grids_by_code.get(c.grid or "")
    cat = dep.categories_by_code.get(c.category or "")
    raw = c.raw_fields
    lb = labels(dep.ui.lang)
    level = f"{LEVELS[c.escalation_level]} · {lb.level(c.escalation_level)}"
    due = [(lb.clock(k), getattr(c, f"{k}_due", None)) for k in CLOCKS]
    lines = [
        f"case #{c.id}  {c.status}  level {c.escalation_level} ({level})"
        + (f"  {lb.t('field.supervised')}" if c.supervised else "")
        + ("  TRIAGE: " + safe(c.triage_reason) if c.triage else ""),
        f"  title:     {safe(c.title)}",
        f"  source:    {safe(c.source)} / {safe(c.external_id)}",
        f"  category:  {f'{cat.code} {cat.name}' if cat else _unknown(raw, 'category')}",
        f"  grid:      {f'{grid.label} {grid.code}' if grid else _unknown(raw, 'grid')}",
        f"  priority:  {c.priority}   received {_local(c.received_at, dep)}",
        f"  assignee:  {c.assignee or '-'}",
        f"  location:  {safe(c.location)}",
        "  deadlines: " + (" · ".join(f"{n} {_local(d, dep)}" for n, d in due if d) or "-"),
    ]
    if c.description:
        lines.append("  description: " + safe(c.description[:2000]))
    lines.append("timeline:")
    for e in timeline:
        detail = ", ".join(f"{k}={safe(str(v))}" for k, v in e.detail.items())
        lines.append(f"  {_local(e.at, dep)}  {e.action:<10} {safe(e.operator):<8} {detail}")
    print("\n".join(lines))


# ---- commands -------------------------------------------------------------------------------
def cmd_config(args: argparse.Namespace) -> int:
    return cmd_config_init(args) if args.config_cmd == "init" else cmd_config_check(args)


def cmd_config_init(args: argparse.Namespace) -> int:
    """Write the packaged deployment to the user config dir, to edit; never overwrite."""
    import platformdirs

    target = platformdirs.user_config_path("tafang") / "config.toml"
    if target.exists() and not args.force:
        print(f"tafang: {target} exists; --force overwrites it", file=sys.stderr)
        return EXIT_REFUSED
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(default_config_path().read_bytes())
    except OSError as e:
        raise UsageError(f"cannot write {target}: {e.strerror or e}") from e
    print(f"wrote {target}: edit it; `tafang config check` validates it")
    return EXIT_OK


def _warn_calendar_gaps(dep: Deployment) -> None:
    """A year in the next 60 days that no calendar source knows is said, not silently guessed."""
    from tafang.sla.calendar import WorkCalendar

    today = datetime.now(ZoneInfo(dep.timezone)).date()
    for year in WorkCalendar(dep.calendar).gaps(today):
        print(
            f"warning: no holiday data for {year} (chinese_calendar has none and config "
            f"[calendar] lists no day of {year}): Monday-Friday will count as working days; "
            "add the State Council's notice to [calendar] holidays / workdays",
            file=sys.stderr,
        )


def cmd_config_check(args: argparse.Namespace) -> int:
    path, how = locate_config(args.config)
    dep = load_config(path)
    _warn_calendar_gaps(dep)
    if not args.json:
        t = dep.tower
        print(f"config: {path} ({how})")
        print(
            f"ok: {dep.name}: {len(t.grids)} grids, {len(t.enforcement_circles)} enforcement / "
            f"{len(t.emergency_circles)} emergency / {len(t.risk_circles)} risk circles, "
            f"{len(dep.channels)} channels, {len(dep.categories)} categories, "
            f"{len(dep.squads)} squads, {len(dep.officers_by_code)} officers"
        )
        return EXIT_OK
    out = {
        "name": dep.name,
        "timezone": dep.timezone,
        "channels": [{"code": c.code, "name": c.name} for c in dep.channels],
        "categories": [{"code": c.code, "name": c.name, "group": c.group} for c in dep.categories],
        "grids": [
            {"code": g.code, "label": g.label, "circle": g.circle, "half": g.half}
            for g in dep.tower.grids
        ],
        "squads": [
            {
                "code": s.code,
                "name": s.name,
                "officers": [
                    {"code": o.code, "name": o.name, "agency": o.agency} for o in s.officers
                ],
            }
            for s in dep.squads
        ],
        "partners": [p.model_dump() for p in dep.partners],
        "sla": dep.sla.model_dump(),
        "shifts": [s.model_dump() for s in dep.shifts],
        "voice": dep.voice.model_dump(),
    }
    _print_json(out, indent=2)
    return EXIT_OK


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from tafang.store.cases import Store
    from tafang.store.db import upgrade_db

    dep = _config(args)
    engine = _engine(args.db, upgrade=False)
    try:
        rev = upgrade_db(engine)
        added = Store(engine, dep).sync_roster()  # the roster's officers get their live rows
    except (OSError, StoreError) as e:
        raise _open_error(e, args.db) from e
    url = engine.url.render_as_string(hide_password=True)
    if args.json:
        _print_json({"revision": rev, "url": url, "officers_added": added})
        return EXIT_OK
    print(
        f"store at revision {rev}: {url}"
        + (f"; {added} officer(s) added to the roster" if added else "")
    )
    return EXIT_OK


def cmd_db_grant(args: argparse.Namespace) -> int:
    """`tafang db grant LOGIN ROLE`, run by the database owner (a superuser or the role that
    ran `db upgrade`); exit 1 with the reason when the roster or the server says no."""
    from tafang.store.cases import Refused
    from tafang.store.identity import grant

    dep = _config(args)
    engine = _engine(args.db)
    try:
        operator = grant(engine, dep, args.login, args.role)
    except Refused as e:
        print(f"tafang: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"login {args.login} acts as {operator} ({args.role}): granted tafang_{args.role}")
    return EXIT_OK


def _regular_size(stream: Any) -> int | None:
    """The size of a regular file (a total for the progress bar); None for a pipe or tty."""
    import stat

    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def ingest_json(result: Any, origin: str) -> dict[str, Any]:
    """`ingest --json`: the counts (`blank` when intake counts it) and each rejected line."""
    out: dict[str, Any] = {
        "origin": origin,
        "accepted": result.accepted,
        "duplicate": result.duplicate,
        "rejected": result.rejected,
    }
    if getattr(result, "blank", None) is not None:
        out["blank"] = result.blank
    out["rejected_lines"] = [{"line": n, "reason": why} for n, why in result.errors]
    return out


def cmd_ingest(args: argparse.Namespace) -> int:
    from tafang.console.progress import MeteredInput, bar
    from tafang.store.intake import ingest
    from tafang.store.moves import CREATE_ROLES

    dep = _config(args)
    if args.path == "-":
        stream, origin = sys.stdin.buffer, "stdin"
    else:
        try:
            stream, origin = open(args.path, "rb"), Path(args.path).name
        except (OSError, ValueError) as e:  # ValueError: a NUL in the path
            raise UsageError(f"cannot read {args.path!r}: {getattr(e, 'strerror', e)}") from e
    store = _open_store(args, dep)
    actor = _actor(args, store)
    history = getattr(args, "history", False)
    if history:  # closed cases on the record without their moves: the lead's decision
        from tafang.store.moves import LEAD

        store.may(LEAD, "ingest --history", actor)
    else:
        store.may(CREATE_ROLES, "ingest", actor)  # importing makes cases: a write like any other
    with stream, bar(f"ingest {origin}", "lines", _regular_size(stream)) as b:
        lines = MeteredInput(stream, b) if b else stream
        try:
            result = ingest(store, lines, origin=origin, actor=actor, history=history)
        except StoreError as e:  # a full disk, a lost store: say what was committed
            done = getattr(e, "ingest_result", None)
            if done is not None:
                line = getattr(e, "ingest_line", None)
                _ingest_summary(args, done, origin, stopped_at=line)
                print(
                    f"tafang: ingest stopped at {origin}:{line}: the counts are the lines "
                    "before it, which are committed; nothing from there on is",
                    file=sys.stderr,
                )
            raise  # main() says why, with its exit code (3: the store failed)
    _ingest_summary(args, result, origin)
    return EXIT_REFUSED if result.rejected else EXIT_OK


def _ingest_summary(
    args: argparse.Namespace, result: Any, origin: str, stopped_at: int | None = None
) -> None:
    """The rejected lines on stderr, the counts on stdout (a line, or --json)."""
    for line_no, reason in result.errors:
        print(f"{origin}:{line_no}: rejected: {reason}", file=sys.stderr)
    if args.json:
        out = ingest_json(result, origin)
        if stopped_at is not None:
            out["stopped_at_line"] = stopped_at
        _print_json(out)
    else:
        print(result.summary, flush=True)


def cmd_cases(args: argparse.Namespace) -> int:
    from tafang.store.models import STATUSES

    if args.status not in ("open", "all", *STATUSES):
        raise UsageError(
            f"--status must be open, all or one of {', '.join(STATUSES)}; not {args.status!r}"
        )
    dep = _config(args)
    store = _open_store(args, dep)
    rows = store.cases(args.status, limit=args.limit)
    if args.json:
        _print_json([case_json(c, dep) for c in rows])
        return EXIT_OK
    from tafang.widgets.text import fit

    for c in rows:
        grid = dep.grids_by_code.get(c.grid or "")
        cat = dep.categories_by_code.get(c.category or "")
        print(
            f"{c.id:>7} {c.status:<12} {_local(c.received_at, dep)} "
            f"{fit(safe(c.source), 12)} {fit(cat.name if cat else '?', 12)} "
            f"{fit(grid.label if grid else '?', 6)} {fit(c.assignee or '-', 6)} "
            f"{'!' if c.triage else ' '}{fit(safe(c.display_title), 40)}"
        )
    print(f"{len(rows)} case(s)", file=sys.stderr)
    return EXIT_OK


def _print_dupes(c: Any, open_cases: Sequence[Any], dep: Deployment, as_json: bool) -> int:
    """`case dupes`: the matcher's suggestions for one case (store/dupes.py)."""
    from tafang.store.dupes import suggestions_for

    by_id = {o.id: o for o in open_cases}
    found = suggestions_for(c, open_cases, dep)
    if as_json:
        _print_json(
            {
                "case": c.id,
                "suggestions": [
                    {
                        "case": s.case_id,
                        "score": s.score,
                        "reasons": [{"code": r.code, "value": r.value} for r in s.reasons],
                        "title": by_id[s.case_id].title,
                        "location": by_id[s.case_id].location,
                    }
                    for s in found
                ],
            }
        )
        return EXIT_OK
    lab = labels(dep.ui.lang)
    if not found:
        print(lab.t("dupes.none"))
    for s in found:
        o = by_id[s.case_id]
        why = " · ".join(lab.t(f"dupes.reason.{r.code}", value=r.value) for r in s.reasons)
        print(f"{o.id:>7}  {s.score:.2f}  {safe(o.title)} · {safe(o.location)}  ({why})")
    return EXIT_OK


def cmd_case(args: argparse.Namespace) -> int:
    from tafang.store.cases import NotFound, Refused

    move = MOVES.get(args.action)
    if move is not None and move.reason and not args.reason.strip():  # usage, like a --to
        raise UsageError(f"case {args.action} needs --reason (it goes on the record)")
    dep = _config(args)
    store = _open_store(args, dep)
    try:
        if args.action == "show":
            c = store.get(args.id)
            tl = store.timeline(args.id)
            from tafang.store.risk import in_grid

            risk = in_grid(store, c.grid)  # 风险化解前置: the case's grid has risk points
            if args.json:
                _print_json({**case_json(c, dep, tl), "risk_points": [p.code for p in risk]})
            else:
                _print_case(c, dep, tl)
                if risk:
                    names = "、".join(safe(p.name) for p in risk[:5])
                    print(labels(dep.ui.lang).t("risk.in_grid", n=len(risk), names=names))
            return EXIT_OK
        if args.action == "dupes":
            return _print_dupes(store.get(args.id), store.cases("open"), dep, args.json)
        actor = _actor(args, store)
        if getattr(args, "items", None) is not None:
            from tafang.store.partners import check_items

            check_items(store, args.id, args.items)
        c = store.act(
            args.id,
            args.action,
            actor,
            to=getattr(args, "to", None),
            reason=args.reason,
            into=getattr(args, "into", None),
            expected_version=args.version,
        )
        if getattr(args, "items", None) is not None:
            from tafang.store.partners import record_items

            record_items(store, c.id, args.items, actor)
    except NotFound as e:
        print(f"tafang: not found: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except Refused as e:
        print(f"tafang: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    if args.json:
        _print_json(case_json(c, dep))
    else:
        print(
            f"case #{c.id}: {args.action} done; now {c.status}"
            + (f", with {c.assignee}" if c.assignee else "")
        )
    return EXIT_OK


def audit_json(v: Any, anchor: tuple[int, str] | None) -> dict[str, Any]:
    """`audit verify --json`; anchor.ok is null when the chain broke before it was reached."""
    return {
        "ok": v.ok,
        "checked": v.checked,
        "broken": None if v.ok else {"seq": v.bad_seq, "reason": v.reason},
        "anchor": None if anchor is None else {"seq": anchor[0], "hash": anchor[1], "ok": v.anchor},
    }


def cmd_audit(args: argparse.Namespace) -> int:
    """`audit verify`: the chain (keyed), the witness anchors, every case against the record
    (console/audit_verify.py)."""
    from tafang.console.audit_verify import run_verify

    return run_verify(args)


def cmd_daemon(args: argparse.Namespace) -> int:
    from tafang.sla.daemon import run_daemon

    dep = _config(args)
    store = _open_store(args, dep)
    return run_daemon(store, dep, once=args.once, log_level=args.log_level)


def _day(value: str | None, flag: str) -> Any:
    """A YYYY-MM-DD option as a date (None stays None), or a usage error naming it."""
    from tafang.console.argtypes import parse_day

    if value is None:
        return None
    try:
        return parse_day(value)
    except ValueError as e:
        raise UsageError(f"{flag}: {e}") from None


def cmd_report(args: argparse.Namespace) -> int:
    from tafang.sla.meeting import inputs_for
    from tafang.sla.meeting_render import render

    if args.json and args.format not in (None, "json"):
        raise UsageError(f"--json prints JSON; it cannot go with --format {args.format}")
    fmt = "json" if args.json else args.format or "md"
    day = _day(args.date, "--date")
    start, end = _day(args.date_from, "--from"), _day(args.date_to, "--to")
    if args.period is None:  # DESIGN §4's form: `tafang report --from D --to D`
        if not (start or end):
            raise UsageError("give a period (daily, weekly, monthly) or --from and --to")
        args.period = "range"
    if args.period != "range" and (start or end):
        raise UsageError("--from and --to go with `report range`; use --date for a period")
    if args.period == "range" and day:
        raise UsageError("`report range` takes --from and --to, not --date")
    dep = _config(args)
    store = _open_store(args, dep)
    try:
        text = render(inputs_for(store, dep, args.period, day=day, start=start, end=end), fmt)
    except ValueError as e:
        raise UsageError(str(e)) from e
    data = text.encode("utf-8", "backslashreplace")  # JSON keeps a lone surrogate as its escape
    if args.out:
        try:
            Path(args.out).write_bytes(data)
        except OSError as e:
            raise UsageError(f"cannot write {args.out}: {e.strerror or e}") from e
        # stdout carries the JSON document or nothing
        print(f"wrote {args.out}", file=sys.stderr if fmt == "json" else sys.stdout)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return EXIT_OK


def cmd_completion(args: argparse.Namespace) -> int:
    """The bash or zsh completion script for the parser as it is (moves included)."""
    import shtab

    sys.stdout.write(shtab.complete(build_parser(), shell=args.shell))
    return EXIT_OK


def cmd_console(args: argparse.Namespace, demo: bool = False) -> int:
    from tafang.console.demo import DemoOptions, scratch_url
    from tafang.console.run import run_console

    dep = _config(args)
    url: str | None = None
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    options: DemoOptions | None = None
    if demo:
        url, cleanup = scratch_url(keep=args.keep)
        options = DemoOptions(speed=args.speed)
    try:
        store = _open_store(args, dep, url=url)
        if demo and not (args.operator or os.environ.get("TAFANG_OPERATOR")):
            args.operator = "demo"  # the scratch store: play anyone on the roster
        return run_console(
            store,
            dep,
            operator=_identity(args, store, scratch=demo).operator,
            terminal=args.terminal or socket.gethostname(),
            lang=args.lang or dep.ui.lang,
            demo=options,
        )
    finally:
        cleanup()


def cmd_wall(args: argparse.Namespace) -> int:
    """The wall on this terminal, or (--serve) one per browser session, on a read-only store."""
    from tafang.store.db import resolve_url

    dep = _config(args)
    url = resolve_url(args.db)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise UsageError(f"no store at {url}: create it with `tafang db upgrade`")
    lang = args.lang or dep.ui.lang
    if args.serve:
        import shlex

        from tafang.console.wall_serve import serve_wall

        # The sessions' own `tafang wall` finds the store and config in its environment.
        os.environ["TAFANG_DB"] = url
        os.environ["TAFANG_CONFIG"] = str(locate_config(args.config)[0].resolve())
        command = shlex.join([sys.executable, "-m", "tafang", "wall", "--lang", lang])
        return serve_wall(command, host=args.host, port=args.port, title=dep.name)
    from tafang.console.wall import run_wall
    from tafang.sla.policy import Policy
    from tafang.store.cases import Store
    from tafang.store.queries import read_only

    store = Store(read_only(_engine(url, upgrade=False)), dep, clocks=Policy(dep))
    return run_wall(store, dep, lang=lang)


COMMANDS = {
    "config": cmd_config,
    "db": lambda a: cmd_db_grant(a) if a.db_cmd == "grant" else cmd_db_upgrade(a),
    "ingest": cmd_ingest,
    "cases": cmd_cases,
    "case": cmd_case,
    "audit": cmd_audit,
    "daemon": cmd_daemon,
    "report": cmd_report,
    "console": cmd_console,
    "demo": lambda a: cmd_console(a, demo=True),
    "completion": cmd_completion,
    "wall": cmd_wall,
}


def _first_line(e: BaseException) -> str:
    lines = str(getattr(e, "orig", None) or e).strip().splitlines()
    return lines[0] if lines else type(e).__name__


def _log_level(args: argparse.Namespace) -> None:
    """`--log-level`, else TAFANG_LOG_LEVEL, else INFO; set on tafang's loggers."""
    import logging

    level = (args.log_level or os.environ.get("TAFANG_LOG_LEVEL") or "INFO").strip().upper()
    if level not in LOG_LEVELS:
        raise UsageError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    args.log_level = level
    logging.getLogger("tafang").setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    from tafang.store.cases import Refused
    from tafang.store.db import StoreUnreachable

    try:
        args = build_parser().parse_args(argv)
        _log_level(args)
        return COMMANDS[args.cmd](args)
    except StoreDown as e:
        print(f"tafang: {e}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except UsageError as e:
        print(str(e) if str(e).startswith("tafang") else f"tafang: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as e:
        print(f"tafang: config error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except StoreUnreachable as e:  # lost the database after opening it
        print(f"tafang: cannot reach the store: {_first_line(e)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except StoreError as e:
        print(f"tafang: store error: {_first_line(e)}", file=sys.stderr)
        return EXIT_REFUSED
    except Refused as e:  # who acts (`--operator` naming someone else): exit 1, the reason
        print(f"tafang: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
