"""The seam between delivery and a robot's wire format: one module per format.

A format module has four names: `TOKEN_PARAM` (the query parameter the contact's token goes
in), `sign(secret, now)` (query parameters of a signature, and the strings in them to keep
out of logs), `body(msg, contact, names, settings)` (the JSON to POST) and `refusal(answer)`
(why a 2xx answer is still a refusal, or None). A new robot is a new module
listed in `FORMATS` (and its name allowed in `store.config.Contact.format`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from tafang.sla.notify import dingtalk, webhook, wecom
from tafang.sla.notify.plan import Message
from tafang.sla.notify.render import Names
from tafang.sla.notify.settings import NotifySettings
from tafang.store.config import Contact


class Format(Protocol):
    TOKEN_PARAM: str

    def sign(self, secret: str, now: datetime) -> tuple[list[tuple[str, str]], list[str]]: ...

    def body(
        self, msg: Message, contact: Contact, names: Names, s: NotifySettings
    ) -> dict[str, Any]: ...

    def refusal(self, answer: str) -> str | None: ...


FORMATS: dict[str, Format] = {"dingtalk": dingtalk, "json": webhook, "wecom": wecom}


def format_of(contact: Contact) -> Format:
    return FORMATS[contact.format]
