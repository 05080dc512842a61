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

ROLES = ("viewer", "dispatcher", "supervisor", "checker", "admin")
"""The roles of the roster: viewer reads; dispatcher works cases; supervisor (带班领导) also
holds, resumes, voids, reopens, supervises and escalates above the emergency circle; checker
(监管) closes or sends back after the check; admin keeps config, roster and audit (no moves)."""
DISPATCH = frozenset({"dispatcher", "supervisor"})
LEAD = frozenset({"supervisor"})
CHECK = frozenset({"checker", "supervisor"})
ANY_WORKER = frozenset({"dispatcher", "supervisor", "checker"})
CREATE_ROLES = DISPATCH
"""Who may type in a new case (the phone form): not a move, but the same kind of rule."""
ESCALATE_TOP = {"dispatcher": 2}
"""The highest tower level (2 = emergency circle) a role may raise a case to by hand."""
SEPARATED = frozenset({"close"})
"""Moves under 监管分离: not by the case's handler or dispatcher."""
FIELD = frozenset({"officer"})
"""An officer in the street, authenticated by their key through `tafang serve` (not a roster
role): confirms, arrives, handles and asks for support, on cases in their own hands only."""

DUTY_ROLES = DISPATCH
"""Who may set any officer on or off duty, on a break or back (store/duty.py); an officer
may also set their own duty (the field API acts under the officer's code)."""

HANDOVER_NOTE_ROLES = ANY_WORKER
"""Who may leave a note for the next shift (交接班, store/handover.py)."""
HANDOVER_ACK_ROLES = LEAD
"""Who may acknowledge a handover: the incoming 带班领导 (another supervisor standing in is
named so on the record)."""

# The state as refusals name it: its code in words, then its Chinese name from the catalogue.
STATUS_WORDS = {s: f"{s.replace('_', ' ')} ({labels('zh').status(s)})" for s in STATUSES}


@dataclass(frozen=True, slots=True)
class Move:
    """One move of the lifecycle.

    `leads_to`: the state after the move; None = the case stays where it is (a flag or a
    note), BEFORE_HOLD = back to the state before the hold. `roles`: the roles that may make
    it (see ROLES). `arg`: "to" an officer, squad or partner team, "into" another case, or ""
    for none.
    """

    name: str
    starts: tuple[str, ...]
    leads_to: str | None
    summary: str
    reason: bool = False
    roles: frozenset[str] = DISPATCH
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
        Move(
            "arrive",
            ("dispatched",),
            "on_scene",
            "the officer is on scene (到场)",
            roles=DISPATCH | FIELD,
        ),
        Move(
            "handle",
            ("on_scene",),
            "handled",
            "the officer has dealt with it (处置反馈)",
            roles=DISPATCH | FIELD,
        ),
        Move(
            "confirm",
            ("dispatched", "on_scene"),
            None,
            "the officer has the dispatch (签收, from the field)",
            roles=FIELD,
        ),
        Move(
            "support",
            ("dispatched", "on_scene"),
            None,
            "the officer asks for support (请求支援, from the field)",
            reason=True,
            roles=FIELD,
        ),
        Move("close", ("handled",), "closed", "close after the check (核查结案)", roles=CHECK),
        Move(
            "hold",
            ACTIVE,
            "held",
            "pause the clocks (挂账)",
            reason=True,
            roles=LEAD,
        ),
        Move("resume", ("held",), BEFORE_HOLD, "take a held case up again", roles=LEAD),
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
            roles=CHECK,
        ),
        Move(
            "reopen",
            ("closed", "void"),
            "acknowledged",
            "open a closed or void case again",
            reason=True,
            roles=LEAD,
        ),
        Move("void", (*ACTIVE, "held"), "void", "not a case (作废)", reason=True, roles=LEAD),
        Move("merge", OPEN_STATUSES, "merged", "a duplicate: merge into another case", arg="into"),
        Move(
            "supervise", OPEN_STATUSES, None, "flag for supervision (督办)", reason=True, roles=LEAD
        ),
        Move("escalate", OPEN_STATUSES, None, "raise one level up the tower", reason=True),
        Move("note", OPEN_STATUSES + END_STATUSES, None, "a note on the record", roles=ANY_WORKER),
    )
}


def usage(move: Move, word: str) -> str:
    """How a move is typed on a command line whose word for it is `word`."""
    extra = {"to": " OFFICER|SQUAD", "into": " into TARGET", "": ""}[move.arg]
    return f"{word} ID{extra}{' REASON' if move.reason else ''}"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a role may not make a move: `code` and `params` for a UI's own words
    (refused.<code> in the label catalogue), `message` in English."""

    code: str
    message: str
    params: dict[str, object]


def allowed(move: Move, role: str | None) -> bool:
    """May an operator of `role` make this move at all (case aside)? For the console's
    "unavailable" actions; `Store.act` asks `refusal_for` with the case's facts too."""
    return role is not None and role in move.roles


def refusal_for(
    move: Move,
    role: str | None,
    operator: str = "",
    *,
    to_level: int | None = None,
    hands: frozenset[str] = frozenset(),
    mine: bool = True,
) -> Refusal | None:
    """The one permission rule of a move, or None when it may be made.

    `role` None = the operator is not on the roster. `to_level`: for escalate, the level
    the case would reach. `hands`: the operators who dispatched or handled the case (监管分离).
    `mine`: the case is in the acting officer's hands (theirs or their squad's; field only).
    """
    refused = _role_refusal(move, role, operator)
    if refused is not None or role is None:
        return refused
    act = move.name
    top = ESCALATE_TOP.get(role)
    if act == "escalate" and top is not None and to_level is not None and to_level > top:
        role_zh = labels("zh").t(f"role.{role}")
        return Refusal(
            "escalate_above",
            f"a {role} may escalate up to level {top} (emergency circle); "
            f"level {to_level} needs a supervisor (带班领导)",
            {"action": act, "operator": operator, "role": role, "role_zh": role_zh, "top": top},
        )
    if role in FIELD and not mine:
        return Refusal(
            "not_yours",
            f"officer {operator} may {act} only a case in their own or their squad's hands",
            {"action": act, "operator": operator},
        )
    if act in SEPARATED and operator in hands:
        return Refusal(
            "separation",
            f"{operator} dispatched or handled this case and may not {act} it: "
            "the one who handles is not the one who checks (监管分离)",
            {"action": act, "operator": operator},
        )
    return None


def _role_refusal(move: Move, role: str | None, operator: str) -> Refusal | None:
    """Whether the operator is on the roster and their role makes this move at all."""
    act = move.name
    if role is None:
        return Refusal(
            "not_on_roster",
            f"login {operator!r} is not on the roster: ask an admin to add "
            f'`[[operators]] login = "{operator}"` (with a code, name and role) to config.toml; '
            "reads work, moves do not",
            {"action": act, "operator": operator},
        )
    zh = labels("zh")
    role_zh = zh.t(f"role.{role}")
    if role not in move.roles:
        need = [r for r in (*ROLES, *FIELD) if r in move.roles]
        return Refusal(
            "role",
            f"{act} needs a {' or '.join(need)}; {operator or 'this operator'} is a {role} "
            "(roles rule)",
            {
                "action": act,
                "operator": operator,
                "role": role,
                "roles": need,
                "role_zh": role_zh,
                "roles_zh": "或".join(zh.t(f"role.{r}") for r in need),
            },
        )
    return None


def duty_refusal(role: str | None, operator: str, officer: str) -> Refusal | None:
    """The rule of `tafang officer CODE on|off|break|back` and the squad panel's duty key:
    a dispatcher or supervisor for anyone, an officer for themself; None when allowed."""
    if (role is not None and role in DUTY_ROLES) or operator == officer:
        return None
    need = [r for r in ROLES if r in DUTY_ROLES]
    return Refusal(
        "duty_role",
        f"setting officer {officer}'s duty needs a {' or '.join(need)} (or {officer} "
        f"themself); {operator or 'this operator'} is "
        f"{'a ' + role if role else 'not on the roster'}",
        {"officer": officer, "operator": operator, "role": role or ""},
    )
