"""Joint inspections, enterprises, risk points and partner teams on the command line.

`tafang enterprise import|list`, `tafang inspection plan|list|show|merge|result|done|
selfcheck|report`, `tafang risk import|list|due|report`, `tafang partner items|report`.
The rules live in store/ (enterprises, inspections, self_check, risk, partners); this module
parses, calls and prints (DESIGN §4: exit 0 done, 1 refused, 2 usage, 3 store unreachable).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from tafang.console.argtypes import day_arg, row_id

Handler = Callable[[argparse.Namespace], int]


def _day(s: str) -> date:
    return day_arg(s)  # the range every command accepts


def _period(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="start", type=_day, help="first day (default: 30 days ago)")
    p.add_argument("--to", dest="end", type=_day, help="last day (default: today)")
    p.add_argument("--json", action="store_true")


def register(sub: Any) -> dict[str, Handler]:
    """Add this module's commands to `sub`; return their handlers by command name."""
    from tafang.console.cli import _Parser

    ent = sub.add_parser("enterprise", help="the enterprise register (企业库)")
    es = ent.add_subparsers(dest="sub", required=True, parser_class=_Parser)
    ei = es.add_parser("import", help="import enterprises from CSV (credit_code,name,grid,…)")
    ei.add_argument("path", help="CSV file (UTF-8, header row); - for stdin")
    ei.add_argument("--json", action="store_true")
    el = es.add_parser("list", help="list the register")
    el.add_argument("--json", action="store_true")

    _inspection_parsers(sub, _Parser)

    risk = sub.add_parser("risk", help="risk points (风险化解前置)")
    rs = risk.add_subparsers(dest="sub", required=True, parser_class=_Parser)
    ri = rs.add_parser("import", help="import risk points from CSV (code,name,grid,class,…)")
    ri.add_argument("path")
    ri.add_argument("--json", action="store_true")
    rl = rs.add_parser("list", help="list risk points")
    rl.add_argument("--grid", help="one grid (code or label)")
    rl.add_argument("--json", action="store_true")
    rd = rs.add_parser("due", help="file the checks that are due as cases (the daemon does this)")
    rd.add_argument("--json", action="store_true")
    _period(rs.add_parser("report", help="risk points by class and grid, checks filed"))

    partner = sub.add_parser("partner", help="partner teams (政企共管)")
    ps = partner.add_subparsers(dest="sub", required=True, parser_class=_Parser)
    pi = ps.add_parser("items", help="items (bikes moved) a partner handled on a case")
    pi.add_argument("case", type=row_id)
    pi.add_argument("items", type=int)
    _period(ps.add_parser("report", help="items handled, time and cost saved"))
    return {
        "enterprise": cmd_enterprise,
        "inspection": cmd_inspection,
        "risk": cmd_risk,
        "partner": cmd_partner,
    }


def _inspection_parsers(sub: Any, parser_class: type) -> None:
    ins = sub.add_parser("inspection", help="joint inspections (联合检查)")
    s = ins.add_subparsers(dest="sub", required=True, parser_class=parser_class)
    p = s.add_parser("plan", help="plan a visit; an overlapping plan proposes a merge")
    p.add_argument("--enterprise", "-e", required=True, help="id, credit code or name")
    p.add_argument("--dept", action="append", default=[], help="department (repeat)")
    p.add_argument(
        "--item", action="append", default=[], help="checklist item as DEPT:TEXT (repeat)"
    )
    p.add_argument("--officer", action="append", default=[], help="officer code (repeat)")
    p.add_argument("--from", dest="first", type=_day, required=True, help="first day")
    p.add_argument("--to", dest="last", type=_day, required=True, help="last day")
    p.add_argument("--title", default="")
    p.add_argument("--json", action="store_true")
    ls = s.add_parser("list", help="plans and pending merge proposals")
    ls.add_argument("--status", choices=("planned", "merged", "done", "cancelled"))
    ls.add_argument("--json", action="store_true")
    sh = s.add_parser("show", help="one plan with its checklist")
    sh.add_argument("id", type=row_id)
    sh.add_argument("--json", action="store_true")
    m = s.add_parser("merge", help="accept or decline a merge proposal")
    m.add_argument("proposal", type=row_id)
    g = m.add_mutually_exclusive_group(required=True)
    g.add_argument("--accept", action="store_true")
    g.add_argument("--decline", action="store_true")
    m.add_argument("--reason", "-r", default="")
    r = s.add_parser("result", help="the result of one checklist item")
    r.add_argument("item", type=row_id)
    r.add_argument("result", choices=("pass", "fail", "na"))
    r.add_argument("--note", default="")
    d = s.add_parser("done", help="the visit was made (every item has a result)")
    d.add_argument("id", type=row_id)
    sc = s.add_parser("selfcheck", help="the self-check list for the enterprise")
    sc.add_argument("id", type=row_id)
    sc.add_argument("--format", choices=("md", "csv"), default="md")
    sc.add_argument("--out", "-o", help="write to this file instead of stdout")
    _period(s.add_parser("report", help="综合查一次 rate over a period"))


def _open(args: argparse.Namespace) -> tuple[Any, Any]:
    from tafang.console.cli import _config, _open_store

    dep = _config(args)
    return dep, _open_store(args, dep)


def _read(path: str) -> tuple[bytes, str]:
    from pathlib import Path

    from tafang.console.cli import UsageError

    if path == "-":
        return sys.stdin.buffer.read(), "stdin"
    try:
        return Path(path).read_bytes(), Path(path).name
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise UsageError(f"cannot read {path!r}: {getattr(e, 'strerror', e)}") from e


def _refusals(fn: Handler) -> Handler:
    """Refused / NotFound from the store: exit 1 with the reason; a bad CSV header: exit 2."""

    def run(args: argparse.Namespace) -> int:
        from tafang.console.cli import EXIT_REFUSED, UsageError
        from tafang.store.cases import Refused
        from tafang.store.csv_import import RowError

        try:
            return fn(args)
        except RowError as e:
            where = getattr(args, "path", None)
            raise UsageError(f"{where}:{e}" if where else str(e)) from e
        except Refused as e:
            print(f"tafang: refused: {e}", file=sys.stderr)
            return EXIT_REFUSED

    return run


def _import_result(res: Any, as_json: bool) -> int:
    from tafang.console.cli import EXIT_OK, EXIT_REFUSED, _print_json

    for line, reason in res.errors:
        print(f"{res.origin}:{line}: rejected: {reason}", file=sys.stderr)
    if as_json:
        _print_json(res.as_json())
    else:
        print(res.summary)
    return EXIT_REFUSED if res.rejected else EXIT_OK


@_refusals
def cmd_enterprise(args: argparse.Namespace) -> int:
    from tafang.console.cli import EXIT_OK, _actor, _print_json
    from tafang.store import enterprises as ents
    from tafang.store.text import safe

    dep, store = _open(args)
    if args.sub == "import":
        data, origin = _read(args.path)
        res = ents.import_csv(store, data, origin=origin, actor=_actor(args, store))
        return _import_result(res, args.json)
    rows = ents.enterprises(store)
    if args.json:
        _print_json([_as_dict(e) for e in rows])
        return EXIT_OK
    for e in rows:
        g = dep.grids_by_code.get(e.grid or "")
        print(f"{e.id:>5} {e.credit_code} {e.risk_grade} {g.label if g else '-':<6} {safe(e.name)}")
    print(f"{len(rows)} enterprise(s)", file=sys.stderr)
    return EXIT_OK


def _as_dict(v: Any) -> dict[str, Any]:
    """A frozen slots view as a JSON-ready dict (datetimes as ISO strings)."""
    out = {}
    for k in v.__slots__:
        x = getattr(v, k)
        out[k] = (
            x.isoformat() if isinstance(x, datetime) else list(x) if isinstance(x, tuple) else x
        )
    return out


def _span(args: argparse.Namespace, tz: str) -> tuple[datetime, datetime, date, date]:
    """[since, until) in UTC for --from/--to local days (default: the last 30 days)."""
    from zoneinfo import ZoneInfo

    from tafang.console.cli import UsageError

    z = ZoneInfo(tz)
    end = args.end or datetime.now(z).date()
    start = args.start or end - timedelta(days=29)
    if end < start:
        raise UsageError(f"--to {end} is before --from {start}")
    since = datetime.combine(start, datetime.min.time(), z).astimezone(UTC)
    until = datetime.combine(end + timedelta(days=1), datetime.min.time(), z).astimezone(UTC)
    return since, until, start, end


@_refusals
def cmd_inspection(args: argparse.Namespace) -> int:
    from tafang.console import cli_inspect_show as show

    dep, store = _open(args)
    handler = {
        "plan": show.plan,
        "list": show.listing,
        "show": show.one,
        "merge": show.merge,
        "result": show.result,
        "done": show.done,
        "selfcheck": show.selfcheck,
        "report": show.report,
    }[args.sub]
    return handler(args, dep, store)


@_refusals
def cmd_risk(args: argparse.Namespace) -> int:
    from tafang.console.cli import EXIT_OK, _actor, _print_json
    from tafang.store import risk
    from tafang.store.enterprises import grid_code
    from tafang.store.labels import labels
    from tafang.store.text import safe

    dep, store = _open(args)
    lab = labels(dep.ui.lang)
    if args.sub == "import":
        data, origin = _read(args.path)
        res = risk.import_csv(store, data, origin=origin, actor=_actor(args, store))
        return _import_result(res, args.json)
    if args.sub == "due":
        n = risk.file_due_checks(store)
        _print_json({"filed": n}) if args.json else print(f"{n} check(s) filed as cases")
        return EXIT_OK
    if args.sub == "report":
        return _risk_report(args, dep, store)
    from zoneinfo import ZoneInfo

    tz = ZoneInfo(dep.timezone)
    pts = risk.points(store, grid_code(dep, args.grid) if args.grid else None)
    if args.json:
        _print_json([_as_dict(p) for p in pts])
        return EXIT_OK
    for p in pts:
        g = dep.grids_by_code.get(p.grid)
        nxt = p.next_check_at.astimezone(tz).date() if p.next_check_at else "-"
        cls = lab.t(f"risk.class.{p.risk_class}")
        print(f"{p.code:<12} {g.label if g else p.grid:<6} {cls:<8} {nxt} {safe(p.name)}")
    print(lab.t("risk.total", n=len(pts)), file=sys.stderr)
    return EXIT_OK


def _risk_report(args: argparse.Namespace, dep: Any, store: Any) -> int:
    from tafang.console.cli import EXIT_OK, _print_json
    from tafang.store import risk
    from tafang.store.labels import labels

    since, until, start, end = _span(args, dep.timezone)
    by_class = risk.counts_by_class(store)
    by_grid = risk.counts_by_grid(store)
    filed = risk.checks_filed(store, since, until)
    if args.json:
        _print_json(
            {
                "from": start.isoformat(),
                "to": end.isoformat(),
                "points": sum(by_class.values()),
                "by_class": by_class,
                "grids_with_points": len(by_grid),
                "checks_filed": filed,
            }
        )
        return EXIT_OK
    lab = labels(dep.ui.lang)
    print(f"# {lab.t('risk')} {start} – {end}")
    print(lab.t("risk.total", n=sum(by_class.values())))
    for cls in risk.CLASSES:
        print(f"- {lab.t(f'risk.class.{cls}')}: {by_class.get(cls, 0)}")
    print(f"grids: {len(by_grid)}; checks filed: {filed}")
    return EXIT_OK


@_refusals
def cmd_partner(args: argparse.Namespace) -> int:
    from tafang.console.cli import EXIT_OK, _actor, _print_json
    from tafang.store import partners
    from tafang.store.labels import labels

    dep, store = _open(args)
    if args.sub == "items":
        partners.record_items(store, args.case, args.items, _actor(args, store))
        print(f"case #{args.case}: {args.items} item(s) recorded")
        return EXIT_OK
    since, until, start, end = _span(args, dep.timezone)
    figs = partners.figures(store, since, until)
    if args.json:
        rows = [_as_dict(f) for f in figs]
        _print_json({"from": start.isoformat(), "to": end.isoformat(), "partners": rows})
        return EXIT_OK
    lab = labels(dep.ui.lang)
    t = lab.t
    print(f"# {t('partner')} {start} – {end}")
    print(
        f"| | {t('partner.cases')} | {t('partner.items')} | {t('partner.hours_saved')} | "
        f"{t('partner.cost_saved')} |"
    )
    print("|---|---|---|---|---|")
    names = {p.code: (p.name if dep.ui.lang == "zh" else p.name_en or p.name) for p in dep.partners}
    for f in figs:
        print(f"| {names[f.code]} | {f.cases} | {f.items} | {f.hours_saved:g} | {f.yuan_saved:g} |")
    return EXIT_OK
