"""The WeCom (企业微信) group robot: the body and the success check; no signing.

The webhook is `https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY`; the contact's
`token_env` (or `key_env`) names the variable or systemd credential holding KEY, which goes in
the `key` query parameter and never into the config or the logs. One event is a `text` message
that @-mentions the contact's mobiles (`mentioned_mobile_list`); a digest is a `markdown` one
(WeCom's markdown cannot mention by mobile: the mobiles are listed in its text). WeCom answers
HTTP 200 with `{"errcode": 0}` on success and a non-zero `errcode` when it refuses (e.g. 45009,
more than 20 messages a minute), which is a failed delivery, retried like any other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tafang.sla.notify.dingtalk import refusal
from tafang.sla.notify.plan import Message
from tafang.sla.notify.render import Names, mobiles, render_digest_markdown, render_text
from tafang.sla.notify.settings import NotifySettings
from tafang.store.config import Contact

__all__ = ["TOKEN_PARAM", "body", "refusal", "sign"]

TOKEN_PARAM = "key"
TEXT_BYTES = 2048  # WeCom's limits on `content`, in UTF-8 bytes
MARKDOWN_BYTES = 4096


def sign(secret: str, now: datetime) -> tuple[list[tuple[str, str]], list[str]]:
    """WeCom robots are not signed (config refuses `secret_env` on them)."""
    return [], [secret]


def fit_bytes(text: str, limit: int) -> str:
    """`text` cut to at most `limit` UTF-8 bytes, on a character boundary, marked with …."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[: limit - 3].decode("utf-8", errors="ignore") + "…"


def body(msg: Message, contact: Contact, names: Names, s: NotifySettings) -> dict[str, Any]:
    if not msg.digest:
        content = fit_bytes(render_text(msg.rows[0].event, names, contact), TEXT_BYTES)
        text = {"content": content, "mentioned_mobile_list": mobiles(contact, [msg.rows[0].event])}
        return {"msgtype": "text", "text": text}
    events = [r.event for r in msg.rows]
    _title, md = render_digest_markdown(events, names, contact, s.digest_lines)
    return {"msgtype": "markdown", "markdown": {"content": fit_bytes(md, MARKDOWN_BYTES)}}
