"""The DingTalk custom robot (浙政钉 works alike): signing, the body, the success check.

One event is a `text` message, a digest a `markdown` one; both @-mention the contact's
mobiles. Signing: HMAC-SHA256 of "timestamp\\nsecret" keyed by the secret, base64, sent as
`&timestamp=…&sign=…`. DingTalk answers HTTP 200 with `{"errcode": 0}` on success and a
non-zero `errcode` when it refuses.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from tafang.sla.notify.plan import Message
from tafang.sla.notify.render import (
    Names,
    mobiles,
    one_line,
    render_digest_markdown,
    render_text,
)
from tafang.sla.notify.settings import NotifySettings
from tafang.store.config import Contact

TOKEN_PARAM = "access_token"


def dingtalk_sign(secret: str, now: datetime) -> tuple[str, str]:
    """DingTalk's robot signature: (timestamp ms, base64 HMAC-SHA256 of "ts\\nsecret")."""
    ts = str(int(now.timestamp() * 1000))
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    return ts, base64.b64encode(mac).decode()


def sign(secret: str, now: datetime) -> tuple[list[tuple[str, str]], list[str]]:
    """The signature's query parameters, and the strings to keep out of logs."""
    ts, signature = dingtalk_sign(secret, now)
    return [("timestamp", ts), ("sign", signature)], [secret, signature]


def body(msg: Message, contact: Contact, names: Names, s: NotifySettings) -> dict[str, Any]:
    at = {"atMobiles": mobiles(contact, [r.event for r in msg.rows]), "isAtAll": False}
    if not msg.digest:
        content = render_text(msg.rows[0].event, names, contact)
        return {"msgtype": "text", "text": {"content": content}, "at": at}
    events = [r.event for r in msg.rows]
    title, md = render_digest_markdown(events, names, contact, s.digest_lines)
    return {"msgtype": "markdown", "markdown": {"title": title, "text": md}, "at": at}


def refusal(answer: str) -> str | None:
    try:
        data = json.loads(answer)
    except ValueError:
        return f"answer is not JSON: {one_line(answer, 200)}"
    code = data.get("errcode") if isinstance(data, dict) else None
    if code == 0:
        return None
    errmsg = data.get("errmsg", "") if isinstance(data, dict) else ""
    return f"errcode {code}: {one_line(errmsg, 200)}"
