"""`tafang audit verify`: the record's chain, its witnesses and every case against it.

Three checks, each naming what broke (exit 1): the chain (keyed with the record key from
`keyed_from` on: store/record.py), the witness anchors (store/witness.py: entries deleted
after an anchor, a record rewritten before one), and the cases table replayed from the record
(store/replay.py: `UPDATE cases SET status='closed'`). A keyed record and no key is exit 2
(the check cannot be made). Without a key the chain is plain, and the output says what that
leaves open.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

UNKEYED = (
    "plain SHA-256 chain, no record key: whoever can write the database could re-chain it "
    "(README: the record's key)"
)
NOT_YET = (
    "a record key is set but the record is not keyed yet: no write since the key was set, "
    "or keyed entries were rewritten as plain (a witness file tells which)"
)


def run_verify(args: argparse.Namespace) -> int:
    from tafang.console.cli import EXIT_OK, EXIT_REFUSED, EXIT_USAGE, _config, _open_store
    from tafang.console.progress import bar
    from tafang.store.cases import Refused
    from tafang.store.record import verify

    dep = _config(args)
    store = _open_store(args, dep)
    try:
        key = store.record_key
    except Refused as e:  # unreadable or too short: the check cannot be made (exit 2)
        print(f"tafang: cannot verify the record: {e}", file=sys.stderr)
        return EXIT_USAGE
    with bar("audit verify", "entries", 0) as b:
        step = (lambda checked, total: b.set(checked, checked, total)) if b else None
        v = verify(store.engine, anchor=args.anchor, progress=step, key=key)
    if v.needs_key:
        print(f"tafang: cannot verify the record: {v.reason}", file=sys.stderr)
        return EXIT_USAGE
    out: dict[str, Any] = _chain_json(v, args.anchor, key)
    broken = None if v.ok else (f"entry {v.bad_seq}", v.reason)
    if broken is None:
        broken = _witness(args, dep, store, key, out)
    if broken is None and not args.chain_only:
        broken = _cases(store, out)
    if broken is not None:
        out["ok"] = False
        out["broken"] = out["broken"] or {"seq": v.bad_seq, "reason": broken[1]}
    if args.json:
        from tafang.console.cli import _print_json

        _print_json(out)
    if broken is None:
        if not args.json:
            print(_summary(v, out, key))
        return EXIT_OK
    what, reason = broken
    print(f"tafang: record broken at {what}: {reason}", file=sys.stderr)
    return EXIT_REFUSED


def _chain_json(v: Any, anchor: tuple[int, str] | None, key: Any) -> dict[str, Any]:
    from tafang.console.cli import audit_json

    out = audit_json(v, anchor)
    out["keyed"] = {"from": v.keyed_from, "key_id": v.key_id} if v.keyed_from else None
    out["witness"] = None
    out["cases"] = None
    if not v.ok:
        out["broken"]["what"] = f"entry {v.bad_seq}"
    return out


def _witness(
    args: argparse.Namespace, dep: Any, store: Any, key: Any, out: dict[str, Any]
) -> tuple[str, str] | None:
    """Check the witness file named by --witness, else config's if it exists."""
    from tafang.console.cli import UsageError
    from tafang.store.witness import WitnessError, check_witness, read_anchors

    path = args.witness or dep.record.witness_file
    if not path:
        return None
    if not args.witness and not Path(path).expanduser().exists():
        # Configured but not there (yet: the daemon writes it at its first anchor).
        out["witness"] = {"file": str(path), "anchors": 0, "last": None, "ok": None}
        return None
    try:
        with store.engine.connect() as conn:
            w = check_witness(conn, read_anchors(path), key)
    except WitnessError as e:
        raise UsageError(str(e)) from e
    last = w.last
    out["witness"] = {
        "file": str(path),
        "anchors": w.anchors,
        "last": None if last is None else {"seq": last.seq, "at": last.at},
        "ok": w.ok,
    }
    if w.ok:
        return None
    out["broken"] = {"seq": w.bad_seq, "reason": w.reason, "what": f"entry {w.bad_seq}"}
    return f"entry {w.bad_seq}", w.reason


def _cases(store: Any, out: dict[str, Any]) -> tuple[str, str] | None:
    from tafang.console.progress import bar
    from tafang.store.replay import check_cases

    with bar("audit verify: cases", "cases", 0) as b:
        step = (lambda n, total: b.set(n, n, total)) if b else None
        c = check_cases(store.engine, progress=step)
    out["cases"] = {"checked": c.cases, "imported": c.imported, "ok": c.ok}
    if c.ok:
        return None
    out["broken"] = {
        "seq": None,
        "case": c.case_id,
        "field": c.field or None,
        "reason": c.reason,
        "what": f"case {c.case_id}",
    }
    return f"case {c.case_id}" + (f" ({c.field})" if c.field else ""), c.reason


def _summary(v: Any, out: dict[str, Any], key: Any) -> str:
    """The one line of a good verify; it says what an unkeyed chain leaves open."""
    parts = [f"ok: record intact, {v.checked} entries verified"]
    if v.keyed_from:
        parts.append(f"keyed from entry {v.keyed_from} (key id {v.key_id})")
    else:
        parts.append(UNKEYED if key is None else NOT_YET)
    w = out["witness"]
    if w and w["ok"] is None:
        parts.append(f"witness file {w['file']} not found: not checked")
    elif w:
        parts.append(f"{w['anchors']} witness anchors match")
    if out["cases"]:
        parts.append(f"{out['cases']['checked']} cases match the record")
    return "; ".join(parts)
