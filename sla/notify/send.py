"""Sending one message: the signed URL, the POST under a hard wall-clock deadline, the answer.

Every request has a hard deadline (`request_deadline`; httpx's timeouts are per read, so a
server dripping a byte a second would never trip them). Whatever the format, the outcome is
None (delivered) or a reason with every secret redacted.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from typing import Any

import httpx
from tafang.sla.notify.formats import Format, format_of
from tafang.sla.notify.plan import Message
from tafang.sla.notify.redact import redact
from tafang.sla.notify.render import Names, one_line
from tafang.sla.notify.settings import NotifySettings, read_secret
from tafang.store.config import Contact


class _MissingSecret(Exception):
    pass


class _DeadlineExceeded(Exception):
    """The answer did not complete within `request_deadline` (a drip or a stall)."""


def _secret(env: str) -> str:
    value = read_secret(env)
    if not value:
        raise _MissingSecret(
            f"environment variable {env} is not set (nor a credential of that name)"
        )
    return value


def _target(contact: Contact, fmt: Format, now: datetime) -> tuple[str, list[str]]:
    """The URL to post to (token and signature added) and the secret strings it holds."""
    params: list[tuple[str, str]] = []
    secrets: list[str] = []
    if contact.token_env:
        token = _secret(contact.token_env)
        params.append((fmt.TOKEN_PARAM, token))
        secrets.append(token)
    if contact.secret_env:
        signed, hidden = fmt.sign(_secret(contact.secret_env), now)
        params += signed
        secrets += hidden
    url = contact.url
    if params:
        url = str(httpx.URL(url).copy_merge_params(params))
    return url, secrets


def _exchange(
    client: httpx.Client,
    url: str,
    body: dict[str, Any],
    key: str,
    s: NotifySettings,
    deadline: float,
) -> tuple[int, str]:
    """POST `body`; (status, answer text). The answer is streamed and the wall clock checked
    at every chunk, so a server that drips its body gives up at `deadline`."""
    with client.stream(
        "POST",
        url,
        content=json.dumps(body, ensure_ascii=False, default=str).encode(),
        headers={"Idempotency-Key": key, "Content-Type": "application/json; charset=utf-8"},
        timeout=s.timeout,
    ) as r:
        if time.monotonic() > deadline:
            raise _DeadlineExceeded(f"no answer within {s.request_deadline:g} s")
        chunks: list[bytes] = []
        size = 0
        for chunk in r.iter_bytes():
            if time.monotonic() > deadline:
                raise _DeadlineExceeded(f"answer not complete within {s.request_deadline:g} s")
            chunks.append(chunk)
            size += len(chunk)
            if size >= s.max_answer:
                break
        raw = b"".join(chunks)[: s.max_answer]
        try:
            return r.status_code, raw.decode(r.charset_encoding or "utf-8", errors="replace")
        except LookupError:
            return r.status_code, raw.decode("utf-8", errors="replace")


def post(
    client: httpx.Client,
    contact: Contact,
    msg: Message,
    names: Names,
    now: datetime,
    s: NotifySettings,
    deadline: float,
) -> str | None:
    """Send one message; None when delivered, else the (redacted) reason it was not.

    `deadline` is a time.monotonic(); `post_bounded` covers what streaming cannot."""
    fmt = format_of(contact)
    try:
        url, secrets = _target(contact, fmt, now)
    except _MissingSecret as e:
        return str(e)
    shown = redact(contact.url, secrets)
    body = fmt.body(msg, contact, names, s)
    try:
        status, answer = _exchange(client, url, body, msg.key, s, deadline)
    except Exception as e:  # timeouts, refused, a bad URL, the deadline …: a failed delivery
        return redact(f"POST {shown}: {type(e).__name__}: {e}", secrets)
    if not 200 <= status < 300:
        return redact(f"POST {shown}: HTTP {status}: {one_line(answer, 200)}", secrets)
    refused = fmt.refusal(answer)
    return None if refused is None else redact(f"POST {shown}: {refused}", secrets)


def post_bounded(
    client: httpx.Client,
    contact: Contact,
    msg: Message,
    names: Names,
    now: datetime,
    s: NotifySettings,
) -> str | None:
    """`post` under a hard wall-clock deadline, whatever the server does.

    httpx has no total timeout and its read timeout restarts at every byte (a server dripping
    its headers is not caught by streaming either), so the request runs in its own daemon
    thread and is abandoned at the deadline. The abandoned thread ends by itself: at its next
    chunk, or when the batch's own client is closed under it, or by its read timeout."""
    deadline = time.monotonic() + s.request_deadline
    box: list[str | None] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(post(client, contact, msg, names, now, s, deadline))
        except BaseException as e:  # never lose the outcome: a bug here is a failed send
            box.append(redact(f"POST {redact(contact.url)}: {type(e).__name__}: {e}"))
        finally:
            done.set()

    threading.Thread(target=run, name="notify-post", daemon=True).start()
    if done.wait(s.request_deadline) and box:
        return box[0]
    return (
        f"POST {redact(contact.url)}: DeadlineExceeded: "
        f"no complete answer within {s.request_deadline:g} s (abandoned)"
    )
