"""The console's keys and command-line words: per move of the store's registry, per UI action.

Which moves exist and what they need (a reason, an officer, a target case) is the store's
registry (`tafang.store.moves`); only the gestures are the console's. Every binding has the
id `tafang.<name>`, by which a deployment remaps keys in `[ui] keymap`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tafang.store.moves import MOVES
from tafang.store.moves import usage as move_usage


@dataclass(frozen=True, slots=True)
class Gesture:
    """How the dispatcher asks for an action: a key, a word of the `:` line, in the footer?"""

    key: str
    word: str | None = None
    show: bool = True


# Every move of the registry, in footer order; None: not made from the console, and why.
MOVE_KEYS: dict[str, Gesture | None] = {
    "ack": Gesture("a", "a"),
    "dispatch": Gesture("d", "d"),
    "reassign": None,  # the dispatch key reassigns a case that is already out
    "arrive": Gesture("i", "i"),  # the key and the command-line word agree (`ar` still works)
    "handle": Gesture("h", "h"),
    "close": Gesture("c", "c"),
    "hold": Gesture("p", "p"),
    "resume": Gesture("u", "u", show=False),
    "return": Gesture("r", "r"),
    "rework": Gesture("w", "w"),
    "void": Gesture("v", "v"),
    "merge": Gesture("m", "m"),
    "escalate": Gesture("e", "e"),
    "supervise": Gesture("s", "s"),
    "reopen": None,  # closed and void cases leave the queue: `tafang case reopen`
    "note": None,  # `tafang case note`
    "confirm": None,  # the officer's app (tafang serve)
    "support": None,  # the officer's app (tafang serve)
}
UI_KEYS: dict[str, Gesture] = {
    "open": Gesture("o", "o"),
    "new": Gesture("n"),
    "filter": Gesture("f", "f"),
    "map": Gesture("g", show=False),
    "command": Gesture("colon", show=False),
    "help": Gesture("question_mark"),
    "mute": Gesture("z", show=False),
    "duty": Gesture("b", show=False),  # the squad panel's officer: on duty ↔ break (休息)
    "duty_off": Gesture("B", show=False),  # the squad panel's officer: off duty ↔ on duty
    "handover": Gesture("t", show=False),  # the roster and the handover (交接班)
    "inspections": Gesture("j", show=False),  # joint inspections (联合检查)
    "risk_layer": Gesture("x", show=False),  # the map's risk-point layer on/off
    "stats": Gesture("k", show=False),  # statistics and assessment (考核): heat map, league
}
UI_USAGE = {"open": "o ID", "filter": "f TEXT"}
KEY_SHOWN = {"colon": ":", "question_mark": "?"}

GESTURES: dict[str, Gesture] = {**{n: g for n, g in MOVE_KEYS.items() if g}, **UI_KEYS}
"""Every console action (moves first, then UI actions), in footer order."""
ALIASES = {"ar": "arrive"}
"""Older command-line words that keep working (not shown in help)."""
SHORTHAND: dict[str, str] = {g.word: n for n, g in GESTURES.items() if g.word} | ALIASES
"""Command-line word -> action name."""


def action_of(name: str) -> str:
    """The Textual action string: every move runs through `move(name)`."""
    return f"move({name!r})" if name in MOVES else name


def usage(name: str) -> str:
    """How an action is typed on the command line, e.g. `d ID OFFICER|SQUAD`."""
    if name in MOVES:
        return move_usage(MOVES[name], GESTURES[name].word or name)
    return UI_USAGE.get(name, name)


def key_shown(key: str) -> str:
    return KEY_SHOWN.get(key, key)
