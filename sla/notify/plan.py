"""What one target (one robot) sends this round: its due rows as messages.

A *target* is one robot (the URL without its query, plus the token's env var name): levels
that share a DingTalk robot share its batch and its rate window. While the window has room a
row is one message; the excess is folded into ONE digest that settles all of its rows
together, so no escalation goes unreported and the robot is never silenced by its own limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tafang.store.config import Contact

NO_CONTACT = "none:"  # target prefix of a level without a configured contact


@dataclass(frozen=True)
class Row:
    """One claimed outbox row; `contact` is its level name, `event` the decoded payload."""

    id: int
    key: str
    contact: str
    case_id: int | None
    event: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class Message:
    """One HTTP request: a single row, or a digest folding several."""

    key: str
    rows: tuple[Row, ...]
    contact: Contact | None  # rendered with this; None: the level has no contact
    digest: bool = False


@dataclass
class Plan:
    target: str  # robot_key(), or "none:<level>": the rate window's and in-flight key
    levels: list[str] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    waiting: int = 0

    @property
    def label(self) -> str:
        return "+".join(sorted(self.levels))

    @property
    def has_robot(self) -> bool:
        return not self.target.startswith(NO_CONTACT)


def robot_key(contact: Contact) -> str:
    """One robot, whichever levels post to it: the configured URL + the token's env name.

    The query we add (access_token, timestamp, sign) is not part of it; a query written in
    the config is, so robots whose token is (wrongly) inlined in the URL stay apart. Hashed,
    so it fits `notify_sends.contact` (32 characters) and holds no secret."""
    ident = f"{contact.url.strip()}\n{contact.token_env or ''}"
    return "robot-" + hashlib.sha256(ident.encode()).hexdigest()[:26]


def digest_key(keys: Iterable[str]) -> str:
    """A stable Idempotency-Key for a digest: the same folded rows give the same key."""
    h = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    return f"digest-{h[:48]}"


def unsendable(rows: list[Row]) -> list[Message]:
    """Rows of a level with no contact: one message each, to fail each row visibly."""
    return [Message(r.key, (r,), None) for r in rows]


def split(
    rows: list[Row], budget: int, contacts: dict[str, Contact], digest_max: int
) -> tuple[list[Message], int]:
    """A target's due rows as at most `budget` messages: one per row while they fit, else the
    excess (up to `digest_max` rows) folded into a last digest. Returns the messages and the
    count of rows left waiting for the next window."""
    single = [Message(r.key, (r,), contacts[r.contact]) for r in rows[:budget]]
    if len(rows) <= budget:
        return single, 0
    folded = rows[budget - 1 : budget - 1 + digest_max]
    waiting = len(rows) - (budget - 1) - len(folded)
    if len(folded) == 1:  # only one row over: it goes on its own after all
        return single, waiting
    merged = _merged([contacts[lv] for lv in dict.fromkeys(r.contact for r in folded)])
    digest = Message(digest_key(r.key for r in folded), tuple(folded), merged, digest=True)
    return [*single[: budget - 1], digest], waiting


def _merged(contacts: Sequence[Contact]) -> Contact:
    """The contact a digest of several levels is rendered for: names and mentions joined."""
    first = contacts[0]
    if len(contacts) == 1:
        return first
    names = list(dict.fromkeys(c.name for c in contacts))
    mobiles = list(dict.fromkeys(m for c in contacts for m in c.at_mobiles))
    return first.model_copy(update={"name": "、".join(names), "at_mobiles": mobiles})
