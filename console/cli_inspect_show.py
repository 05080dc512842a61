"""`tafang inspection …`: the handlers behind console/cli_inspect.py's parsers.

Each takes (args, deployment, store) and returns an exit code; the rules are in
store/inspections.py and store/self_check.py.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo


def _enterprise(store: Any, key: str) -> Any:
    from tafang.store.cases import NotFound
    from tafang.store.enterprises import find

    e = find(store, key)
    if e is None:
        raise NotFound(f"no enterprise {key!r} in the register (id, credit code or name)")
    return e


def _items(raw: list[str]) -> list[tuple[str, str]]:
    from tafang.console.cli import UsageError

    out = []
    for s in raw:
        dept, sep, text = s.partition(":")
        if not sep or not text.strip():
            raise UsageError(f"--item {s!r}: write DEPT:TEXT, e.g. market:价格公示")
        out.append((dept.strip(), text.strip()))
    return out


def _days(p: Any, tz: str) -> str:
    z = ZoneInfo(tz)
    first = p.window_from.astimezone(z).date()
    last = (p.window_to.astimezone(z) - timedelta(days=1)).date()
    return f"{first}…{last}"


def _line(p: Any, dep: Any, lab: Any, names: dict[int, tuple[str, str]]) -> str:
    from tafang.store.text import safe

    depts = ",".join(lab.t(f"agency.{d}") for d in p.departments)
    state = lab.t(f"inspection.state.{p.status}")
    into = f" → {p.merged_into}" if p.merged_into else ""
    name, grade = names.get(p.enterprise_id, ("?", "?"))
    return f"{p.id:>5} {state:<6}{into} {_days(p, dep.timezone)} {depts} {grade} {safe(name)}"


def _proposal_line(m: Any, lab: Any) -> str:
    return f"  proposal {m.id}: " + lab.t(
        "inspection.merge_proposal", plan=m.plan_id, other=m.other_id
    )


def plan(args: argparse.Namespace, dep: Any, store: Any) -> int:
    from tafang.console.cli import EXIT_OK, _actor, _print_json
    from tafang.console.cli_inspect import _as_dict
    from tafang.store import inspections as ins
    from tafang.store.labels import labels
    from tafang.store.text import safe

    e = _enterprise(store, args.enterprise)
    p, props = ins.create_plan(
        store,
        e.id,
        departments=args.dept,
        items=_items(args.item),
        first=args.first,
        last=args.last,
        officers=args.officer,
        title=args.title,
        actor=_actor(args, store),
    )
    if args.json:
        _print_json({"plan": _as_dict(p), "proposals": [_as_dict(m) for m in props]})
        return EXIT_OK
    lab = labels(dep.ui.lang)
    print(f"plan {p.id} for {safe(e.name)}: {_days(p, dep.timezone)}")
    for m in props:
        print(_proposal_line(m, lab))
        print(f"  tafang inspection merge {m.id} --accept | --decline")
    return EXIT_OK


def listing(args: argparse.Namespace, dep: Any, store: Any) -> int:
    from tafang.console.cli import EXIT_OK, _print_json
    from tafang.console.cli_inspect import _as_dict
    from tafang.store import inspections as ins
    from tafang.store.enterprises import enterprises
    from tafang.store.labels import labels

    plans = ins.plans(store, args.status)
    props = ins.proposals(store)
    if args.json:
        _print_json(
            {"plans": [_as_dict(p) for p in plans], "proposals": [_as_dict(m) for m in props]}
        )
        return EXIT_OK
    lab = labels(dep.ui.lang)
    names = {e.id: (e.name, e.risk_grade) for e in enterprises(store)}
    for p in plans:
        print(_line(p, dep, lab, names))
    for m in props:
        print(_proposal_line(m, lab))
    if not plans:
        print(lab.t("inspection.none"), file=sys.stderr)
    return EXIT_OK


def one(args: argparse.Namespace, dep: Any, store: Any) -> int:
    from tafang.console.cli import EXIT_OK, _print_json
    from tafang.console.cli_inspect import _as_dict
    from tafang.store import inspections as ins
    from tafang.store.enterprises import find
    from tafang.store.labels import labels
    from tafang.store.text import safe

    p = ins.plan(store, args.id)
    items = ins.items(store, p.id)
    if args.json:
        _print_json({"plan": _as_dict(p), "items": [_as_dict(i) for i in items]})
        return EXIT_OK
    lab = labels(dep.ui.lang)
    e = find(store, p.enterprise_id)
    print(_line(p, dep, lab, {p.enterprise_id: (e.name, e.risk_grade) if e else ("?", "?")}))
    if p.officers:
        print(f"  {lab.t('inspection.officers')}: {', '.join(p.officers)}")
    for i in items:
        res = lab.t(f"inspection.outcome.{i.result}")
        print(f"  [{i.id:>4}] {lab.t(f'agency.{i.department}'):<6} {res:<6} {safe(i.text)}")
    return EXIT_OK


def merge(args: argparse.Namespace, dep: Any, store: Any) -> int:
    from tafang.console.cli import EXIT_OK, _actor
    from tafang.store import inspections as ins
    from tafang.store.labels import labels

    m = ins.decide(store, args.proposal, bool(args.accept), _actor(args, store), args.reason)
    key = "inspection.accepted" if m.status == "accepted" else "inspection.declined"
    print(labels(dep.ui.lang).t(key, plan=m.plan_id, other=m.other_id))
    return EXIT_OK


def result(args: argparse.Namespace, dep: Any, store: Any) -> int:
    from tafang.console.cli import EXIT_OK, _actor
    from tafang.store import inspections as ins

    i = ins.record_result(store, args.item, args.result, _actor(args, store), args.note)
    print(f"item {i.id} of plan {i.plan_id}: {i.result}")
    return EXIT_OK


def done(args: argparse.Namespace, dep: Any, store: Any) -> int:
    from tafang.console.cli import EXIT_OK, _actor
    from tafang.store import inspections as ins

    p = ins.complete(store, args.id, _actor(args, store))
    print(f"plan {p.id}: {p.status}")
    return EXIT_OK


def selfcheck(args: argparse.Namespace, dep: Any, store: Any) -> int:
    from pathlib import Path

    from tafang.console.cli import EXIT_OK, UsageError
    from tafang.store import self_check
    from tafang.store.labels import labels

    s = self_check.sheet(store, args.id)
    lab = labels(dep.ui.lang)
    text = (
        self_check.markdown(s, lab, dep.timezone)
        if args.format == "md"
        else self_check.csv_text(s, lab)
    )
    if args.out:
        try:  # CSV with a BOM: spreadsheets then read it as UTF-8
            Path(args.out).write_text(("\ufeff" if args.format == "csv" else "") + text, "utf-8")
        except OSError as e:
            raise UsageError(f"cannot write {args.out}: {e.strerror}") from e
        print(f"{args.out}: {len(s.items)} item(s)", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def report(args: argparse.Namespace, dep: Any, store: Any) -> int:
    from tafang.console.cli import EXIT_OK, _print_json
    from tafang.console.cli_inspect import _span
    from tafang.store import inspections as ins
    from tafang.store.labels import labels

    since, until, start, end = _span(args, dep.timezone)
    r = ins.joint_rate(store, since, until)
    if args.json:
        _print_json(
            {
                "from": start.isoformat(),
                "to": end.isoformat(),
                "joint": r.joint,
                "visits": r.visits,
                "rate": r.rate,
                "merged": r.merged,
                "target": ins.TARGET,
                "xihu_2024": ins.XIHU_2024,
            }
        )
        return EXIT_OK
    lab = labels(dep.ui.lang)
    rate = f"{r.rate:.0%}" if r.rate is not None else "–"
    print(f"# {lab.t('inspection.rate')} {start} – {end}")
    print(
        lab.t(
            "inspection.rate_line",
            rate=rate,
            joint=r.joint,
            visits=r.visits,
            target=f"{ins.TARGET:.0%}",
            xihu=f"{ins.XIHU_2024:.0%}",
        )
    )
    print(lab.t("inspection.saved", n=r.merged))
    return EXIT_OK
