"""`tafang officer`, `tafang roster` and `tafang handover`: the duty roster on the command line.

- `tafang officer [--json]`: every officer with duty, status and cases in hand.
- `tafang officer CODE on|off|break|back`: set an officer's duty (on the record).
- `tafang roster [--date D] [--json]`: the day's shifts, squads, 带班领导, dispatchers.
- `tafang handover [--json]`, `tafang handover note TEXT`, `tafang handover ack`: the
  handover (交接班) nearest now, a note for the next shift, the incoming leader's ack.
The rules live in store/ (duty, roster, handover, moves); this module parses, calls and
prints (DESIGN §4: exit 0 done, 1 refused, 2 usage, 3 store unreachable).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from typing import Any

Handler = Callable[[argparse.Namespace], int]
DUTY_WORDS = ("on", "off", "break", "back")


def _day(s: str) -> date:
    from tafang.console.argtypes import day_arg  # the range every command accepts

    return day_arg(s)


def register(sub: Any) -> dict[str, Handler]:
    """Add this module's commands to `sub`; return their handlers by command name."""
    o = sub.add_parser(
        "officer",
        help="officers' duty: list them, or set one on/off duty, on a break, back",
        description="Without CODE: list officers. With CODE and a word: on (on duty), off "
        "(off duty, 下班), break (休息), back (from a break). Dispatchers and supervisors "
        "may set anyone; the change goes on the record.",
    )
    o.add_argument("code", nargs="?", help="officer code, e.g. 2-03")
    o.add_argument("word", nargs="?", choices=DUTY_WORDS, help="on | off | break | back")
    o.add_argument("--json", action="store_true")
    r = sub.add_parser("roster", help="the day's shifts: hours, squads, 带班领导, dispatchers")
    r.add_argument("--date", type=_day, help="local day (default: today)")
    r.add_argument("--json", action="store_true")
    h = sub.add_parser(
        "handover",
        help="the handover (交接班): open, held, breached and 督办 cases, notes; note; ack",
        description="`tafang handover` shows the nearest shift change's handover; "
        "`tafang handover note TEXT` leaves a note for the next shift; "
        "`tafang handover ack` is the incoming 带班领导 taking it over (on the record).",
    )
    h.add_argument("what", nargs="?", choices=("show", "note", "ack"), default="show")
    h.add_argument("text", nargs="*", help="the note (for `note`)")
    h.add_argument("--json", action="store_true")
    return {"officer": cmd_officer, "roster": cmd_roster, "handover": cmd_handover}


# ---- officer ---------------------------------------------------------------------------------
def officer_json(o: Any) -> dict[str, Any]:
    from tafang.console.cli import _iso

    return {
        "code": o.code,
        "name": o.name,
        "squad": o.squad,
        "agency": o.agency,
        "duty": o.duty,
        "duty_since": _iso(o.duty_since),
        "status": o.status,
        "status_since": _iso(o.status_since),
        "case_id": o.case_id,
        "load": o.load,
    }


def cmd_officer(args: argparse.Namespace) -> int:
    from tafang.console.cli import (
        EXIT_OK,
        EXIT_REFUSED,
        UsageError,
        _actor,
        _config,
        _open_store,
        _print_json,
    )
    from tafang.store.cases import Refused
    from tafang.store.duty import duty_of

    if args.code and not args.word:
        raise UsageError("officer CODE needs a word: on, off, break or back")
    dep = _config(args)
    store = _open_store(args, dep)
    if args.code:
        if args.code not in dep.officers_by_code:  # not found: 1, as for a case (DESIGN §4)
            print(
                f"tafang: not found: no officer {args.code!r} in this deployment "
                "(tafang officer lists them)",
                file=sys.stderr,
            )
            return EXIT_REFUSED
        try:
            was = store.set_officer_status(args.code, duty_of(args.word) or "", _actor(args, store))
        except Refused as e:
            print(f"tafang: refused: {e}", file=sys.stderr)
            return EXIT_REFUSED
        o = next(x for x in store.officers() if x.code == args.code)
        if args.json:
            _print_json({**officer_json(o), "was": was})
        else:
            print(
                f"officer {o.code} {o.name}: {was.replace('_', ' ')} -> {o.duty.replace('_', ' ')}"
            )
        return EXIT_OK
    officers = store.officers()
    if args.json:
        _print_json([officer_json(o) for o in officers])
        return EXIT_OK
    _print_officers(officers, dep)
    return EXIT_OK


def _print_officers(officers: list[Any], dep: Any) -> None:
    from tafang.console.cli import _local
    from tafang.store.labels import labels
    from tafang.widgets.text import fit

    lb = labels(dep.ui.lang)
    for o in officers:
        since = _local(o.duty_since, dep) if o.duty != "on_duty" else ""
        print(
            f"{o.code:<6} {fit(o.name, 8)} {o.squad:<5} {fit(lb.officer(o.duty), 8)} "
            f"{fit(lb.officer(o.status), 8)} {o.load:>2} {since}"
        )
    print(f"{len(officers)} officer(s)", file=sys.stderr)


# ---- roster ----------------------------------------------------------------------------------
def roster_json(d: Any, slots: list[Any]) -> list[dict[str, Any]]:
    """The day's shifts as data (the console's roster shows the same)."""
    ops = {o.code: o for o in d.operators}
    out = []
    for s in slots:
        sh = s.shift
        out.append(
            {
                "key": s.key,
                "code": sh.code,
                "name": sh.name,
                "start": s.start.isoformat(),
                "end": s.end.isoformat(),
                "squads": [
                    {
                        "code": q,
                        "name": d.squads_by_code[q].name,
                        "officers": len(d.squads_by_code[q].officers),
                    }
                    for q in sh.squads
                    if q in d.squads_by_code
                ],
                "leader": sh.leader,
                "leader_name": ops[sh.leader].name if sh.leader in ops else "",
                "dispatchers": list(sh.dispatchers),
            }
        )
    return out


def cmd_roster(args: argparse.Namespace) -> int:
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from tafang.console.cli import EXIT_OK, _config, _print_json
    from tafang.store.roster import day_slots

    dep = _config(args)
    day = args.date or datetime.now(ZoneInfo(dep.timezone)).date()
    rows = roster_json(dep, day_slots(dep, day))
    if args.json:
        _print_json(rows)
        return EXIT_OK
    for r in rows:
        squads = "、".join(q["name"] for q in r["squads"])
        lead = f"{r['leader']} {r['leader_name']}".strip() or "-"
        print(
            f"{r['key']:<18} {r['name']} {r['start'][11:16]}–{r['end'][11:16]}  "
            f"带班领导 {lead}  {squads}  调度 {', '.join(r['dispatchers']) or '-'}"
        )
    return EXIT_OK


# ---- handover --------------------------------------------------------------------------------
def handover_json(v: Any, dep: Any) -> dict[str, Any]:
    """`tafang handover --json`: the handover's shifts, its cases by kind, notes and ack."""
    from tafang.console.cli import _iso, case_json

    def slot(s: Any) -> dict[str, Any]:
        return {
            "key": s.key,
            "code": s.shift.code,
            "name": s.shift.name,
            "start": _iso(s.start),
            "end": _iso(s.end),
        }

    return {
        "handover": v.key,
        "from": slot(v.handover.outgoing),
        "to": slot(v.handover.incoming),
        "leader": v.handover.leader,
        "at": _iso(v.at),
        "counts": {
            "open": len(v.open),
            "held": len(v.held),
            "breached": len(v.breached),
            "supervised": len(v.supervised),
            "notes": len(v.notes),
        },
        "open": [c.id for c in v.open],
        "held": [case_json(c, dep) for c in v.held],
        "breached": [case_json(c, dep) for c in v.breached],
        "supervised": [case_json(c, dep) for c in v.supervised],
        "notes": [{"at": _iso(n.at), "by": n.by, "text": n.text} for n in v.notes],
        "acknowledged": (
            {"at": _iso(v.ack.at), "by": v.ack.by, "leader": v.ack.leader} if v.ack else None
        ),
    }


def cmd_handover(args: argparse.Namespace) -> int:
    from tafang.console.cli import (
        EXIT_OK,
        EXIT_REFUSED,
        UsageError,
        _actor,
        _config,
        _open_store,
        _print_json,
    )
    from tafang.store import handover
    from tafang.store.cases import Refused

    if args.what != "note" and args.text:
        raise UsageError(f"handover {args.what} takes no text (did you mean: handover note TEXT?)")
    dep = _config(args)
    store = _open_store(args, dep)
    try:
        if args.what == "note":
            if not " ".join(args.text).strip():
                raise UsageError("handover note needs the text of the note")
            key = handover.add_note(store, " ".join(args.text), _actor(args, store))
            if not args.json:
                print(f"note added to handover {key}")
                return EXIT_OK
        elif args.what == "ack":
            view = handover.acknowledge(store, _actor(args, store))
            if not args.json:
                print(f"handover {view.key} acknowledged by {view.ack.by if view.ack else '?'}")
                return EXIT_OK
    except Refused as e:
        print(f"tafang: refused: {e}", file=sys.stderr)
        return EXIT_REFUSED
    view = handover.read(store)
    if args.json:
        _print_json(handover_json(view, dep))
    else:
        print(handover_text(view, dep))
    return EXIT_OK


def handover_text(v: Any, dep: Any) -> str:
    """The handover as plain text: the console's screen says the same."""
    from tafang.console.cli import _local
    from tafang.store.text import safe

    h = v.handover
    lines = [
        f"交接班 handover {v.key}: {h.outgoing.shift.name} {h.outgoing.key} → "
        f"{h.incoming.shift.name} {h.incoming.key}, 带班领导 {h.leader or '-'}",
        "  acknowledged: "
        + (f"{v.ack.by} at {_local(v.ack.at, dep)}" if v.ack else "NOT YET (tafang handover ack)"),
        f"  open {len(v.open)} · held {len(v.held)} · breached {len(v.breached)} · "
        f"督办 {len(v.supervised)} · notes {len(v.notes)}",
    ]
    for title, cases in (("held", v.held), ("breached", v.breached), ("督办", v.supervised)):
        lines.append(f"{title}:")
        lines += [_case_line(c, dep) for c in cases] or ["  -"]
    lines.append("notes:")
    lines += [f"  {_local(n.at, dep)} {safe(n.by)}: {safe(n.text)}" for n in v.notes] or ["  -"]
    return "\n".join(lines)


def _case_line(c: Any, dep: Any) -> str:
    from tafang.store.text import safe

    grid = dep.grids_by_code.get(c.grid or "")
    cat = dep.categories_by_code.get(c.category or "")
    return (
        f"  #{c.id:<6} {c.status:<12} {grid.label if grid else '?':<6} "
        f"{cat.name if cat else '?'}  {c.assignee or '-'}  {safe(c.display_title)[:40]}"
    )
