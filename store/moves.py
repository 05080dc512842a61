"""The registry of moves: every rule of the case lifecycle, once.

A move says where it may start, where it leads, whether it needs a reason on the record,
who may make it and which extra argument it takes. `Store.act` enforces it; the CLI's
`case` subcommands and the console's keys, palette and command line are built from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tafang.store.labels import labels
from tafang.store.models import END_STATUSES, OPEN_STATUSES, STATUSES

ACTIVE = ("new", "acknowledged", "dispatched", "on_scene")
BEFORE_HOLD = "before_hold"
"""`leads_to` of resume: the state the case was in when it was put on hold."""

Arg = Literal["", "to", "into"]

# The state as refusals name it: its code in words, then its Chinese name from the catalogue.
STATUS_WORDS = {s: f"{s.replace('_', ' ')} ({labels('zh').status(s)})" for s in STATUSES}


@dataclass(frozen=True, slots=True)
class Move:
    """One move of the lifecycle.

    `leads_to`: the state after the move; None = the case stays where it is (a flag or a
    note), BEFORE_HOLD = back to the state before the hold. `roles`: None = anyone who may
    act; otherwise only operators with one of these roles. `arg`: "to" an officer, squad or
    partner team, "into" another case, or "" for none.
    """

    name: str
    starts: tuple[str, ...]
    leads_to: str | None
    summary: str
    reason: bool = False
    roles: frozenset[str] | None = None
    arg: Arg = ""


MOVES: dict[str, Move] = {
    m.name: m
    for m in (
        Move("ack", ("new",), "acknowledged", "acknowledge a new case (受理)"),
        Move(
            "dispatch",
            ("new", "acknowledged"),
            "dispatched",
            "send to an officer, squad or partner",
            arg="to",
        ),
        Move(
            "reassign",
            ("dispatched", "on_scene"),
            "dispatched",
            "send a dispatched case elsewhere",
            arg="to",
        ),
        Move("arrive", ("dispatched",), "on_scene", "the officer is on scene (到场)"),
        Move("handle", ("on_scene",), "handled", "the officer has dealt with it (处置反馈)"),
        Move("close", ("handled",), "closed", "close after the check (核查结案)"),
        Move(
            "hold",
            ACTIVE,
            "held",
            "pause the clocks (挂账)",
            reason=True,
            roles=frozenset({"supervisor"}),
        ),
        Move("resume", ("held",), BEFORE_HOLD, "take a held case up again"),
        Move(
            "return",
            ("dispatched", "on_scene"),
            "acknowledged",
            "back to the dispatcher (回退)",
            reason=True,
        ),
        Move(
            "rework",
            ("handled",),
            "dispatched",
            "failed check: back to the same hands (返工)",
            reason=True,
        ),
        Move(
            "reopen",
            ("closed", "void"),
            "acknowledged",
            "open a closed or void case again",
            reason=True,
        ),
        Move("void", (*ACTIVE, "held"), "void", "not a case (作废)", reason=True),
        Move("merge", OPEN_STATUSES, "merged", "a duplicate: merge into another case", arg="into"),
        Move("supervise", OPEN_STATUSES, None, "flag for supervision (督办)", reason=True),
        Move("escalate", OPEN_STATUSES, None, "raise one level up the tower", reason=True),
        Move("note", OPEN_STATUSES + END_STATUSES, None, "a note on the record"),
    )
}


def usage(move: Move, word: str) -> str:
    """How a move is typed on a command line whose word for it is `word`."""
    extra = {"to": " OFFICER|SQUAD", "into": " into TARGET", "": ""}[move.arg]
    return f"{word} ID{extra}{' REASON' if move.reason else ''}"
