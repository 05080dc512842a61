"""The plain JSON webhook (`format = "json"`): the event as data, any 2xx answer accepted.

One event is POSTed as it is (plus its idempotency `key`); a digest as `{"kind": "digest",
"key", "count", "keys", "events"}`. A `secret_env` on such a contact signs the DingTalk way
(as it always has), for receivers behind a DingTalk-compatible gateway.
"""

from __future__ import annotations

from typing import Any

from tafang.sla.notify.dingtalk import sign
from tafang.sla.notify.plan import Message
from tafang.sla.notify.render import Names
from tafang.sla.notify.settings import NotifySettings
from tafang.store.config import Contact

__all__ = ["TOKEN_PARAM", "body", "refusal", "sign"]

TOKEN_PARAM = "access_token"


def body(msg: Message, contact: Contact, names: Names, s: NotifySettings) -> dict[str, Any]:
    if not msg.digest:
        return {**msg.rows[0].event, "key": msg.key}
    return {
        "kind": "digest",
        "key": msg.key,
        "count": len(msg.rows),
        "keys": [r.key for r in msg.rows],
        "events": [{**r.event, "key": r.key} for r in msg.rows],
    }


def refusal(answer: str) -> str | None:
    return None
