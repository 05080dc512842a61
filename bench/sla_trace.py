"""Reads a trace of bench/sla_probe.py: where the late escalations' time went.

For each of the latest cases: its deadline → the sweep job starting (the timer) → the sweep's
transactions (lock wait, select, apply, commit) → done; plus the garbage collections and the
other threads' commits that overlapped it. Then totals: the slowest commits and collections.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

SLOW_MS = 20.0


def _load(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _phases(trace: list[dict[str, Any]], start: float, end: float) -> str:
    """The sweep's phases between `start` and `end`, summed per kind."""
    sums: dict[str, float] = {}
    for e in trace:
        if e["k"] in ("enter", "select", "apply", "commit") and start - 1e-4 <= e["t"] <= end:
            sums[e["k"]] = sums.get(e["k"], 0.0) + e["ms"]
    return ", ".join(f"{k} {v:.1f}" for k, v in sums.items())


def _overlaps(trace: list[dict[str, Any]], kinds: tuple[str, ...], start: float, end: float):  # type: ignore[no-untyped-def]
    return [
        e for e in trace if e["k"] in kinds and e["t"] < end and e["t"] + e["ms"] / 1000 > start
    ]


def _one(trace: list[dict[str, Any]], cid: int, due: datetime, fired: datetime, late: float) -> str:
    d, f = due.timestamp(), fired.timestamp()
    sw = min((e for e in trace if e["k"] == "sweep"), key=lambda e: abs(e["t"] - f), default=None)
    job = max((e for e in trace if e["k"] == "job" and e["t"] <= f + 1e-3), key=lambda e: e["t"],
              default=None)  # fmt: skip
    parts = [
        f"case {cid} late {late:.1f} ms: sweep began {(f - d) * 1000:+.1f} ms after the deadline"
    ]
    if job is not None and job.get("armed"):
        lag, after = (job["t"] - job["armed"]) * 1000, (job["t"] - d) * 1000
        parts.append(
            f"(job started {lag:+.1f} ms after its armed time, {after:+.1f} after the deadline)"
        )
    if sw is not None:
        end = sw["t"] + sw["ms"] / 1000
        parts.append(f"sweep {sw['ms']:.1f} ms [{_phases(trace, sw['t'], end)}]")
        window = (min(d, sw["t"]), end)
    else:
        window = (d, f)
    gcs = _overlaps(trace, ("gc",), *window)
    if gcs:
        parts.append("gc " + ", ".join(f"gen{e['gen']} {e['ms']:.1f} ms" for e in gcs))
    holds = [e for e in _overlaps(trace, ("hold",), *window) if not e.get("sweep") and e["ms"] > 2]
    if holds:
        parts.append("lock held by " + ", ".join(f"{e['thread']} {e['ms']:.1f} ms" for e in holds))
    others = [e for e in _overlaps(trace, ("commit_other",), *window) if e["ms"] > 2]
    if others:
        parts.append(
            "other commits " + ", ".join(f"{e['thread']} {e['ms']:.1f} ms" for e in others)
        )
    return "; ".join(parts)


def explain(
    path: Path,
    spread: list[tuple[int, datetime, datetime]],
    storm: list[tuple[int, datetime, datetime]],
    sweeps: dict[int, float],
    worst: int = 5,
) -> list[str]:
    """Lines explaining the `worst` latest spread cases, then the run's slowest events."""
    trace = _load(path)
    if not trace:
        return [f"no trace in {path}"]
    jobs = [e["t"] for e in trace if e["k"] == "job"]
    running = min(jobs) if jobs else 0.0  # the start-up's own collections are not a stall
    by_fired = {f: sweeps[c] for c, _d, f in spread + storm if c in sweeps}
    late = sorted(
        ((f - d).total_seconds() * 1000 + by_fired.get(f, 0.0), c, d, f) for c, d, f in spread
    )
    out = [_one(trace, c, d, f, ms) for ms, c, d, f in late[-worst:] if ms > SLOW_MS / 2]
    commits = sorted(
        (e for e in trace if e["k"] in ("commit", "commit_other")), key=lambda e: -e["ms"]
    )
    gcs = sorted((e for e in trace if e["k"] == "gc" and e["t"] >= running), key=lambda e: -e["ms"])
    holds = sorted(
        (e for e in trace if e["k"] == "hold" and not e.get("sweep")), key=lambda e: -e["ms"]
    )
    enters = sorted((e for e in trace if e["k"] == "enter"), key=lambda e: -e["ms"])
    out.append("slowest commits: " + ", ".join(
        f"{e['k']}@{e['thread']} {e['ms']:.1f}" for e in commits[:6]))  # fmt: skip
    out.append("longest write locks (not the sweep): " + ", ".join(
        f"{e['thread']} {e['ms']:.1f}" for e in holds[:5]))  # fmt: skip
    out.append(f"gc after start-up: {len(gcs)} collections, slowest " + ", ".join(
        f"gen{e['gen']} {e['ms']:.1f}" for e in gcs[:4]))  # fmt: skip
    out.append("slowest lock waits (sweep): " + ", ".join(f"{e['ms']:.1f}" for e in enters[:4]))
    return out
