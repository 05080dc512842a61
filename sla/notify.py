"""Outbox delivery: escalation notices to each tower level's duty contact, at least once.

Why it is shaped like this:
- Rows are *claimed* in one short transaction (their `next_attempt_at` is pushed out by a
  lease; on PostgreSQL under `FOR UPDATE SKIP LOCKED` and a transaction-level advisory lock),
  so a second daemon skips rows the first is sending. A crash mid-send only delays the rows
  until the lease ends: at-least-once, and the `Idempotency-Key` header lets receivers drop
  the rare double.
- A *target* is one robot (the URL without its query, plus the token's env var name): levels
  that share a DingTalk robot share its batch and its rate window.
- Targets are sent to concurrently, one batch in flight per target, and each target's outcome
  is written as soon as its batch ends. Every request has a hard wall-clock deadline
  (`request_deadline`; httpx's timeouts are per read, so a server dripping a byte a second
  would never trip them). `deliver_due` waits at most `return_after` seconds: a target still
  busy then finishes in the background, is skipped by later calls until it ends (its rows
  are leased anyway), and its result is reported by the first call after it ends. So a slow
  or dead endpoint never delays the other endpoints, and the sweep runs in its own job.
- The rate limit (`rate_per_minute` in any rolling 60 s) counts messages per robot in
  `notify_sends`, reserved inside the claim transaction, so restarts and a second daemon see
  the same window. When more rows are due than the window allows, the excess is folded into
  ONE digest message (DingTalk markdown) that settles all of them together: no escalation
  unreported, and the robot is never silenced by DingTalk's own limit.
- Secrets (access token, signing secret, signature) never reach logs, `last_error` or
  exceptions: URLs are shown without their query string, and httpx's own request log is
  filtered the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import random
import re
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote_plus
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Connection, Engine, delete, func, insert, select, text, update
from tafang.store.cases import Store
from tafang.store.config import LEVELS, Contact, Deployment
from tafang.store.models import NotifySend, Outbox

log = logging.getLogger("tafang.sla.notify")

OUTBOX = Outbox.__table__
SENDS = NotifySend.__table__

LEVEL_ZH = {
    "grid": "网格",
    "enforcement": "综合执法圈",
    "emergency": "应急管理圈",
    "risk": "风险防控圈",
    "centre": "指挥中心",
}
CLOCK_ZH = {"respond": "响应", "dispatch": "派遣", "arrive": "到场", "resolve": "办结"}


@dataclass(frozen=True)
class NotifySettings:
    """Knobs of delivery; the defaults are the production ones."""

    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    max_attempts: int = 8  # a row is dead after this many failed tries
    backoff_base: float = 2.0  # seconds before the 2nd try; doubles each failure
    backoff_cap: float = 300.0
    jitter: float = 0.2  # ± share of the backoff, so retries of many rows spread out
    lease: float = 60.0  # > call_budget + request_deadline: a claimed row's hiding time
    request_deadline: float = 8.0  # hard wall-clock limit of one request, answer included
    call_budget: float = 20.0  # per target: no new send starts after this many seconds
    return_after: float = 2.0  # deliver_due returns then; busy targets go on in the background
    window: float = 60.0  # the rate limit's rolling window
    max_rows: int = 2000  # due rows looked at per call
    digest_max: int = 500  # rows folded into one digest at most (the rest wait)
    digest_lines: int = 40  # cases listed one per line in a digest's text
    max_answer: int = 65536  # bytes of an answer read at most (the rest is dropped)


DEFAULT_SETTINGS = NotifySettings()


@dataclass(frozen=True)
class ContactResult:
    """What one batch did for one target (its level names joined by "+")."""

    contact: str
    messages: int = 0  # HTTP requests made
    sent: int = 0  # outbox rows settled as sent
    failed: int = 0  # rows that failed and will be retried
    dead: int = 0  # rows that failed for the last time
    deferred: int = 0  # rows claimed but not tried (call budget); due again at once
    waiting: int = 0  # due rows held back by the rate limit
    digests: int = 0
    error: str = ""  # the first error of this call, redacted


@dataclass(frozen=True)
class DeliveryReport:
    contacts: tuple[ContactResult, ...] = ()  # batches ended in this call or since the last
    in_flight: tuple[str, ...] = ()  # targets still sending in the background

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.contacts)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.contacts)

    @property
    def dead(self) -> int:
        return sum(c.dead for c in self.contacts)

    @property
    def messages(self) -> int:
        return sum(c.messages for c in self.contacts)

    @property
    def waiting(self) -> int:
        return sum(c.waiting for c in self.contacts)


@dataclass(frozen=True)
class _Row:
    id: int
    key: str
    contact: str
    case_id: int | None
    event: dict[str, Any]
    attempts: int


@dataclass(frozen=True)
class _Message:
    """One HTTP request: a single row, or a digest folding several."""

    key: str
    rows: tuple[_Row, ...]
    contact: Contact | None  # rendered with this; None: the level has no contact
    digest: bool = False


@dataclass
class _Plan:
    target: str  # robot_key(), or "none:<level>": the rate window's and in-flight key
    levels: list[str] = field(default_factory=list)
    messages: list[_Message] = field(default_factory=list)
    waiting: int = 0

    @property
    def label(self) -> str:
        return "+".join(sorted(self.levels))


def robot_key(contact: Contact) -> str:
    """One robot, whichever levels post to it: the configured URL + the token's env name.

    The query we add (access_token, timestamp, sign) is not part of it; a query written in
    the config is, so robots whose token is (wrongly) inlined in the URL stay apart. Hashed,
    so it fits `notify_sends.contact` (32 characters) and holds no secret."""
    ident = f"{contact.url.strip()}\n{contact.token_env or ''}"
    return "robot-" + hashlib.sha256(ident.encode()).hexdigest()[:26]


def _merged(contacts: Sequence[Contact]) -> Contact:
    """The contact a digest of several levels is rendered for: names and mentions joined."""
    first = contacts[0]
    if len(contacts) == 1:
        return first
    names = list(dict.fromkeys(c.name for c in contacts))
    mobiles = list(dict.fromkeys(m for c in contacts for m in c.at_mobiles))
    return first.model_copy(update={"name": "、".join(names), "at_mobiles": mobiles})


# ---- secrets out of sight ------------------------------------------------------------------
_URL_QUERY = re.compile(r"""(https?://[^\s?#'"<>]*)\?[^\s'"<>]*""")


def redact(message: str, secrets: Iterable[str] = ()) -> str:
    """A message safe to log or store: known secret values and URL query strings removed."""
    for s in secrets:
        if s and len(s) >= 4:
            message = message.replace(s, "***")
            message = message.replace(quote_plus(s), "***")
    return _URL_QUERY.sub(r"\1?…", message)


class _RedactQueryFilter(logging.Filter):
    """httpx logs every request with its full URL (access_token, sign): drop the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        safe = redact(msg)
        if safe != msg:
            record.msg, record.args = safe, None
        return True


def _install_log_filter() -> None:
    lg = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQueryFilter) for f in lg.filters):
        lg.addFilter(_RedactQueryFilter())


_install_log_filter()


class _MissingSecret(Exception):
    pass


def _target(contact: Contact, now: datetime) -> tuple[str, list[str]]:
    """The URL to post to (token and signature added) and the secret strings it holds."""
    params: list[tuple[str, str]] = []
    secrets: list[str] = []
    if contact.token_env:
        token = os.environ.get(contact.token_env)
        if not token:
            raise _MissingSecret(f"environment variable {contact.token_env} is not set")
        params.append(("access_token", token))
        secrets.append(token)
    if contact.secret_env:
        secret = os.environ.get(contact.secret_env)
        if not secret:
            raise _MissingSecret(f"environment variable {contact.secret_env} is not set")
        ts, sign = dingtalk_sign(secret, now)
        params += [("timestamp", ts), ("sign", sign)]
        secrets += [secret, sign]
    url = contact.url
    if params:
        url = str(httpx.URL(url).copy_merge_params(params))
    return url, secrets


def dingtalk_sign(secret: str, now: datetime) -> tuple[str, str]:
    """DingTalk's robot signature: (timestamp ms, base64 HMAC-SHA256 of "ts\\nsecret")."""
    ts = str(int(now.timestamp() * 1000))
    mac = hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()
    return ts, base64.b64encode(mac).decode()


# ---- rendering ---------------------------------------------------------------------------
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _line(value: Any, limit: int = 80) -> str:
    """Untrusted text on one line: control characters (and escape sequences) become spaces."""
    s = _CONTROL.sub(" ", "" if value is None else str(value)).strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _duration_zh(ms: Any) -> str:
    try:
        secs = max(0, int(float(ms) / 1000))
    except (TypeError, ValueError):
        return ""
    if secs < 60:
        return f"{secs} 秒"
    if secs < 3600:
        return f"{secs // 60} 分 {secs % 60} 秒"
    return f"{secs // 3600} 小时 {secs % 3600 // 60} 分"


def _local_time(value: Any, tz: ZoneInfo) -> str:
    if not value:
        return ""
    try:
        t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return _line(value, 40)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(tz).strftime("%m-%d %H:%M:%S")


class _Names:
    """Chinese labels for an event's codes, from the deployment."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.tz = ZoneInfo(d.timezone)

    def category(self, code: Any) -> str:
        c = self.d.categories_by_code.get(str(code)) if code else None
        return f"{c.code} {c.name}" if c else _line(code or "未分类", 40)

    def grid(self, code: Any) -> str:
        g = self.d.grids_by_code.get(str(code)) if code else None
        return f"{g.label}（{g.code}）" if g else _line(code or "未知网格", 40)

    def grid_short(self, code: Any) -> str:
        g = self.d.grids_by_code.get(str(code)) if code else None
        return g.label if g else _line(code or "未知网格", 20)

    def level(self, event: dict[str, Any]) -> str:
        name = event.get("level_name")
        if name not in LEVEL_ZH:
            lv = event.get("level")
            name = LEVELS[lv] if isinstance(lv, int) and 0 <= lv < len(LEVELS) else name
        return LEVEL_ZH.get(str(name), _line(name or "", 20))


def _headline(ev: dict[str, Any]) -> str:
    kind = ev.get("kind", "escalation")
    tag = "【超时升级】" if kind == "escalation" else f"【{_line(kind, 20)}】"
    case = f"案件 #{ev['case_id']}" if ev.get("case_id") is not None else "通知"
    return f"{tag}{case} {_line(ev.get('title'))}".rstrip()


def render_text(ev: dict[str, Any], names: _Names, contact: Contact) -> str:
    """The DingTalk text of one event, in Chinese."""
    lines = [_headline(ev)]
    lines.append(f"升级至：{names.level(ev)}（{_line(contact.name, 40)}）")
    if "category" in ev:
        lines.append(f"类别：{names.category(ev.get('category'))}")
    if "grid" in ev:
        lines.append(f"网格：{names.grid(ev.get('grid'))}")
    clock = ev.get("clock")
    if clock:
        due = _local_time(ev.get("due_at"), names.tz)
        late = _duration_zh(ev.get("lateness_ms"))
        part = f"超时环节：{CLOCK_ZH.get(str(clock), _line(clock, 20))}"
        detail = "，".join(x for x in (f"应于 {due} 前完成" if due else "", f"已超 {late}") if x)
        lines.append(f"{part}（{detail}）" if detail else part)
    if contact.at_mobiles:
        lines.append(" ".join(f"@{m}" for m in contact.at_mobiles))
    return "\n".join(lines)


def render_digest_markdown(
    events: Sequence[dict[str, Any]], names: _Names, contact: Contact, listed: int
) -> tuple[str, str]:
    """(title, markdown) of a digest: one line per case, the rest counted."""
    n = len(events)
    title = f"【超时升级汇总】{n} 件"
    lines = [f"#### 【超时升级汇总】共 {n} 件（{_line(contact.name, 40)}）", ""]
    for ev in events[:listed]:
        bits = [f"#{ev.get('case_id', '?')} {_line(ev.get('title'), 40)}"]
        if "grid" in ev:
            bits.append(names.grid_short(ev.get("grid")))
        bits.append(f"升级至{names.level(ev)}")
        clock = ev.get("clock")
        if clock:
            late = _duration_zh(ev.get("lateness_ms"))
            bits.append(f"{CLOCK_ZH.get(str(clock), _line(clock, 20))}超时 {late}".rstrip())
        lines.append("- " + " · ".join(bits))
    if n > listed:
        lines.append(f"- 另有 {n - listed} 件，请在值班台查看")
    if contact.at_mobiles:
        lines += ["", " ".join(f"@{m}" for m in contact.at_mobiles)]
    return title, "\n".join(lines)


def render_body(
    msg: _Message, contact: Contact, names: _Names, settings: NotifySettings
) -> dict[str, Any]:
    """The POST body of one message in the contact's format."""
    if contact.format == "dingtalk":
        at = {"atMobiles": list(contact.at_mobiles), "isAtAll": False}
        if not msg.digest:
            content = render_text(msg.rows[0].event, names, contact)
            return {"msgtype": "text", "text": {"content": content}, "at": at}
        title, md = render_digest_markdown(
            [r.event for r in msg.rows], names, contact, settings.digest_lines
        )
        return {"msgtype": "markdown", "markdown": {"title": title, "text": md}, "at": at}
    if not msg.digest:
        return {**msg.rows[0].event, "key": msg.key}
    return {
        "kind": "digest",
        "key": msg.key,
        "count": len(msg.rows),
        "keys": [r.key for r in msg.rows],
        "events": [{**r.event, "key": r.key} for r in msg.rows],
    }


def digest_key(keys: Iterable[str]) -> str:
    """A stable Idempotency-Key for a digest: the same folded rows give the same key."""
    h = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()
    return f"digest-{h[:48]}"


# ---- claim ---------------------------------------------------------------------------------
def _claim(
    store: Store,
    d: Deployment,
    now: datetime,
    s: NotifySettings,
    busy: frozenset[str] = frozenset(),
) -> dict[str, _Plan]:
    """Pick due rows, group them by target, split each target's rows into messages within its
    rate window, and lease them (plus reserve their window slots) in one transaction.

    Rows of `busy` targets (a batch of theirs still in flight here) are left alone."""
    contacts = {c.level: c for c in d.contacts}
    targets = {lv: robot_key(c) for lv, c in contacts.items()}
    rates: dict[str, int] = {}  # levels sharing a robot share its limit: the strictest applies
    for lv, t in targets.items():
        rates[t] = min(rates.get(t, contacts[lv].rate_per_minute), contacts[lv].rate_per_minute)
    skip = [lv for lv, t in targets.items() if t in busy]
    skip += [t.removeprefix("none:") for t in busy if t.startswith("none:")]
    due_now = [OUTBOX.c.status == "pending", OUTBOX.c.next_attempt_at <= now]
    if skip:
        due_now.append(OUTBOX.c.contact.not_in(skip))
    pg = store.engine.dialect.name == "postgresql"
    with store.read_engine.connect() as conn:  # idle fast path: no write lock every second
        if conn.execute(select(OUTBOX.c.id).where(*due_now).limit(1)).first() is None:
            return {}
    with store.engine.begin() as conn:
        if pg:  # serialise claims so two daemons cannot both spend one rate window
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('tafang:notify-claim'))"))
        q = (
            select(
                OUTBOX.c.id,
                OUTBOX.c.key,
                OUTBOX.c.contact,
                OUTBOX.c.case_id,
                OUTBOX.c.payload,
                OUTBOX.c.attempts,
            )
            .where(*due_now)
            .order_by(OUTBOX.c.next_attempt_at, OUTBOX.c.id)
            .limit(s.max_rows)
        )
        if pg:
            q = q.with_for_update(skip_locked=True)
        due = conn.execute(q).all()
        if not due:
            return {}
        by_target: dict[str, list[_Row]] = defaultdict(list)
        for r in due:
            row = _Row(r.id, r.key, r.contact, r.case_id, _event(r.payload), r.attempts)
            by_target[targets.get(r.contact, f"none:{r.contact}")].append(row)
        window_start = now - timedelta(seconds=s.window)
        conn.execute(delete(SENDS).where(SENDS.c.at < now - timedelta(seconds=5 * s.window)))
        used = dict(
            conn.execute(
                select(SENDS.c.contact, func.count())
                .where(SENDS.c.contact.in_(list(by_target)), SENDS.c.at > window_start)
                .group_by(SENDS.c.contact)
            ).all()
        )
        plans: dict[str, _Plan] = {}
        leased: list[int] = []
        reserve: list[dict[str, Any]] = []
        for target, rows in by_target.items():
            levels = list(dict.fromkeys(r.contact for r in rows))
            plan = _Plan(target, levels)
            plans[target] = plan
            if target.startswith("none:"):  # nothing to send to: fail each row visibly
                plan.messages = [_Message(r.key, (r,), None) for r in rows]
                leased += [r.id for r in rows]
                continue
            budget = rates[target] - int(used.get(target, 0))
            if budget <= 0:
                plan.waiting = len(rows)
                continue
            plan.messages, plan.waiting = _messages(rows, budget, contacts, s.digest_max)
            reserve += [dict(contact=target, at=now, key=m.key) for m in plan.messages]
            leased += [r.id for m in plan.messages for r in m.rows]
        if leased:
            lease_until = now + timedelta(seconds=s.lease)
            for i in range(0, len(leased), 500):
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_(leased[i : i + 500]))
                    .values(next_attempt_at=lease_until)
                )
        if reserve:
            conn.execute(insert(SENDS), reserve)
    return plans


def _messages(
    rows: list[_Row], budget: int, contacts: dict[str, Contact], digest_max: int
) -> tuple[list[_Message], int]:
    """A target's due rows as at most `budget` messages: one per row while they fit, else the
    excess (up to `digest_max` rows) folded into a last digest. Returns the messages and the
    count of rows left waiting for the next window."""
    single = [_Message(r.key, (r,), contacts[r.contact]) for r in rows[:budget]]
    if len(rows) <= budget:
        return single, 0
    folded = rows[budget - 1 : budget - 1 + digest_max]
    waiting = len(rows) - (budget - 1) - len(folded)
    if len(folded) == 1:  # only one row over: it goes on its own after all
        return single, waiting
    merged = _merged([contacts[lv] for lv in dict.fromkeys(r.contact for r in folded)])
    digest = _Message(digest_key(r.key for r in folded), tuple(folded), merged, digest=True)
    return [*single[: budget - 1], digest], waiting


def _event(payload: str) -> dict[str, Any]:
    try:
        ev = json.loads(payload)
    except ValueError:
        return {"kind": "unreadable", "raw": payload[:500]}
    return ev if isinstance(ev, dict) else {"kind": "unreadable", "raw": payload[:500]}


# ---- send and settle ---------------------------------------------------------------------
def _timeout(s: NotifySettings) -> httpx.Timeout:
    return httpx.Timeout(s.read_timeout, connect=s.connect_timeout)


class _DeadlineExceeded(Exception):
    """The answer did not complete within `request_deadline` (a drip or a stall)."""


def _post(
    client: httpx.Client,
    contact: Contact,
    msg: _Message,
    names: _Names,
    now: datetime,
    s: NotifySettings,
    deadline: float,
) -> str | None:
    """Send one message; None when delivered, else the (redacted) reason it was not.

    The answer is streamed and the wall clock checked at every chunk, so a server that drips
    its body gives up at `deadline` (time.monotonic()); `_post_bounded` covers the rest."""
    try:
        url, secrets = _target(contact, now)
    except _MissingSecret as e:
        return str(e)
    shown = redact(contact.url, secrets)
    body = render_body(msg, contact, names, s)
    try:
        with client.stream(
            "POST",
            url,
            content=json.dumps(body, ensure_ascii=False, default=str).encode(),
            headers={
                "Idempotency-Key": msg.key,
                "Content-Type": "application/json; charset=utf-8",
            },
            timeout=_timeout(s),
        ) as r:
            chunks: list[bytes] = []
            size = 0
            if time.monotonic() > deadline:
                raise _DeadlineExceeded(f"no answer within {s.request_deadline:g} s")
            for chunk in r.iter_bytes():
                if time.monotonic() > deadline:
                    raise _DeadlineExceeded(f"answer not complete within {s.request_deadline:g} s")
                chunks.append(chunk)
                size += len(chunk)
                if size >= s.max_answer:
                    break
            status, raw = r.status_code, b"".join(chunks)[: s.max_answer]
            charset = r.charset_encoding or "utf-8"
    except Exception as e:  # timeouts, refused, a bad URL, the deadline …: a failed delivery
        return redact(f"POST {shown}: {type(e).__name__}: {e}", secrets)
    try:
        answer = raw.decode(charset, errors="replace")
    except LookupError:
        answer = raw.decode("utf-8", errors="replace")
    if not 200 <= status < 300:
        return redact(f"POST {shown}: HTTP {status}: {_line(answer, 200)}", secrets)
    if contact.format == "dingtalk":
        try:
            data = json.loads(answer)
        except ValueError:
            return redact(f"POST {shown}: answer is not JSON: {_line(answer, 200)}", secrets)
        code = data.get("errcode") if isinstance(data, dict) else None
        if code != 0:
            errmsg = data.get("errmsg", "") if isinstance(data, dict) else ""
            return redact(f"POST {shown}: errcode {code}: {_line(errmsg, 200)}", secrets)
    return None


def _post_bounded(
    client: httpx.Client,
    contact: Contact,
    msg: _Message,
    names: _Names,
    now: datetime,
    s: NotifySettings,
) -> str | None:
    """`_post` under a hard wall-clock deadline, whatever the server does.

    httpx has no total timeout and its read timeout restarts at every byte (a server dripping
    its headers is not caught by streaming either), so the request runs in its own daemon
    thread and is abandoned at the deadline. The abandoned thread ends by itself: at its next
    chunk, or when the batch's own client is closed under it, or by its read timeout."""
    deadline = time.monotonic() + s.request_deadline
    box: list[str | None] = []
    done = threading.Event()

    def run() -> None:
        try:
            box.append(_post(client, contact, msg, names, now, s, deadline))
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


def backoff(attempts: int, s: NotifySettings = DEFAULT_SETTINGS) -> float:
    """Seconds before the next try after `attempts` failures: doubling, capped, jittered."""
    base = min(s.backoff_cap, s.backoff_base * 2 ** max(0, attempts - 1))
    return base * random.uniform(1 - s.jitter, 1 + s.jitter)


def _deliver_contact(
    store: Store,
    plan: _Plan,
    names: _Names,
    client: httpx.Client | None,
    now: datetime,
    s: NotifySettings,
) -> ContactResult:
    """Send a target's messages in order; stop at the first failure (the rest share it).

    Without a shared client the batch has its own, closed when it ends: that also cuts any
    request it abandoned at the deadline."""
    http = client or httpx.Client(timeout=_timeout(s), follow_redirects=False)
    try:
        return _send_batch(store, plan, names, http, now, s)
    finally:
        if client is None:
            http.close()


def _send_batch(
    store: Store,
    plan: _Plan,
    names: _Names,
    client: httpx.Client,
    now: datetime,
    s: NotifySettings,
) -> ContactResult:
    started = time.monotonic()
    outcomes: list[tuple[_Message, str | None]] = []
    deferred: list[_Message] = []
    untried: list[str] = []
    first_error = ""
    requests = 0
    for i, msg in enumerate(plan.messages):
        if first_error:
            outcomes.append((msg, f"not tried after an earlier failure: {first_error}"))
            untried.append(msg.key)
            continue
        if time.monotonic() - started > s.call_budget:
            deferred = plan.messages[i:]
            break
        if msg.contact is None:
            err: str | None = f"no contact configured for level {msg.rows[0].contact!r}"
        else:
            err = _post_bounded(client, msg.contact, msg, names, now, s)
            requests += 1
        outcomes.append((msg, err))
        if err:
            first_error = err
            log.warning("notification to %s failed: %s", plan.label, err)
    # `now` may be long past when a batch ran in the background: whole seconds suffice.
    ended = now + timedelta(seconds=int(time.monotonic() - started))
    sent, failed, dead = _settle(store, plan, outcomes, deferred, untried, now, ended, s)
    digests = sum(1 for m, e in outcomes if m.digest and e is None)
    if digests:
        log.info("notified %s: %d rows folded into digest(s)", plan.label, digests)
    return ContactResult(
        contact=plan.label,
        messages=requests,
        sent=sent,
        failed=failed,
        dead=dead,
        deferred=sum(len(m.rows) for m in deferred),
        waiting=plan.waiting,
        digests=digests,
        error=first_error,
    )


def _settle(
    store: Store,
    plan: _Plan,
    outcomes: list[tuple[_Message, str | None]],
    deferred: list[_Message],
    untried: list[str],
    now: datetime,
    ended: datetime,
    s: NotifySettings,
) -> tuple[int, int, int]:
    """Write a target's outcomes: sent, retry later (backoff) or dead; release deferred.

    Sent rows carry the claim's `now`; the backoff counts from `ended` (a batch may have
    run for many seconds, in the background). Messages never sent give their rate-window
    slots back (`untried`, `deferred`)."""
    sent = failed = dead = 0
    with store.engine.begin() as conn:
        for msg, err in outcomes:
            if err is None:
                ids = [r.id for r in msg.rows]
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "pending")
                    .values(
                        status="sent",
                        sent_at=now,
                        attempts=OUTBOX.c.attempts + 1,
                        last_error="",
                    )
                )
                sent += len(ids)
                continue
            for r in msg.rows:
                tries = r.attempts + 1
                values: dict[str, Any] = {"attempts": tries, "last_error": err[:1000]}
                if tries >= s.max_attempts:
                    values["status"] = "dead"
                    dead += 1
                    log.error("notification %s to %s is dead: %s", r.key, r.contact, err)
                else:
                    values["next_attempt_at"] = ended + timedelta(seconds=backoff(tries, s))
                    failed += 1
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id == r.id, OUTBOX.c.status == "pending")
                    .values(**values)
                )
        if deferred:
            _release(conn, plan.target, deferred, now)
        if untried:
            _unreserve(conn, plan.target, untried, now)
    return sent, failed, dead


def _release(conn: Connection, target: str, msgs: list[_Message], now: datetime) -> None:
    """Un-claim messages never tried: due again now, their window slots given back."""
    ids = [r.id for m in msgs for r in m.rows]
    conn.execute(
        update(OUTBOX)
        .where(OUTBOX.c.id.in_(ids), OUTBOX.c.status == "pending")
        .values(next_attempt_at=now)
    )
    _unreserve(conn, target, [m.key for m in msgs], now)


def _unreserve(conn: Connection, target: str, keys: list[str], now: datetime) -> None:
    conn.execute(
        delete(SENDS).where(SENDS.c.contact == target, SENDS.c.key.in_(keys), SENDS.c.at == now)
    )


# Batches still running after their deliver_due call returned, per engine (so per daemon),
# per target: (label, future). Later calls skip those targets and report them once ended.
_Flight = tuple[str, Future[ContactResult]]
_IN_FLIGHT: weakref.WeakKeyDictionary[Engine, dict[str, _Flight]] = weakref.WeakKeyDictionary()
_IN_FLIGHT_LOCK = threading.Lock()


def _harvest(engine: Engine) -> tuple[list[_Flight], frozenset[str]]:
    """Batches that ended since the last call (taken out), and the targets still busy."""
    with _IN_FLIGHT_LOCK:
        mine = _IN_FLIGHT.get(engine, {})
        ended = [t for t, (_label, f) in mine.items() if f.done()]
        return [mine.pop(t) for t in ended], frozenset(mine)


def _ended(label: str, f: Future[ContactResult]) -> ContactResult:
    """A background batch's result; its failure (a database error) logged, not raised."""
    try:
        return f.result()
    except Exception as e:
        log.error("notification batch for %s failed: %s: %s", label, type(e).__name__, e)
        return ContactResult(contact=label, error=redact(f"{type(e).__name__}: {e}"))


def deliver_due(
    store: Store,
    deployment: Deployment,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    max_workers: int = 8,
    settings: NotifySettings | None = None,
) -> DeliveryReport:
    """Deliver every due outbox row once (the daemon calls this about every second).

    Returns within about `settings.return_after` seconds: a target still sending then goes
    on in the background (listed in `in_flight`), and its result comes with the first call
    after it ends. Never raises for a failing endpoint; a database error of this call's
    claim or of a batch that ended in time propagates (the daemon logs it and tries again).
    """
    s = settings or DEFAULT_SETTINGS
    now = now or datetime.now(UTC)
    engine = store.engine
    earlier, busy = _harvest(engine)
    results = [_ended(label, f) for label, f in earlier]
    plans = _claim(store, deployment, now, s, busy)
    names = _Names(deployment)
    results += [ContactResult(p.label, waiting=p.waiting) for p in plans.values() if not p.messages]
    active = [p for p in plans.values() if p.messages]
    if active:
        pool = ThreadPoolExecutor(
            max_workers=max(1, min(max_workers, len(active))), thread_name_prefix="notify"
        )
        try:
            futures = {
                p.target: pool.submit(_deliver_contact, store, p, names, client, now, s)
                for p in active
            }
        finally:
            pool.shutdown(wait=False)  # batches go on; the pool's threads end with them
        wait_futures(futures.values(), timeout=s.return_after)
        late = {t: (plans[t].label, f) for t, f in futures.items() if not f.done()}
        if late:
            with _IN_FLIGHT_LOCK:
                _IN_FLIGHT.setdefault(engine, {}).update(late)
        results += [f.result() for t, f in futures.items() if t not in late]
    with _IN_FLIGHT_LOCK:
        still = sorted(label for label, _f in _IN_FLIGHT.get(engine, {}).values())
    return DeliveryReport(tuple(sorted(results, key=lambda r: r.contact)), tuple(still))


# ---- for the console and the CLI ---------------------------------------------------------
def outbox_summary(store: Store, *, dead_limit: int = 50) -> dict[str, Any]:
    """Counts per status (and per contact) plus the newest dead rows, for the console."""
    with store.read_engine.connect() as conn:
        rows = conn.execute(
            select(OUTBOX.c.contact, OUTBOX.c.status, func.count()).group_by(
                OUTBOX.c.contact, OUTBOX.c.status
            )
        ).all()
        oldest = conn.execute(
            select(func.min(OUTBOX.c.created_at)).where(OUTBOX.c.status == "pending")
        ).scalar()
        dead = conn.execute(
            select(
                OUTBOX.c.id,
                OUTBOX.c.key,
                OUTBOX.c.contact,
                OUTBOX.c.case_id,
                OUTBOX.c.attempts,
                OUTBOX.c.last_error,
                OUTBOX.c.created_at,
            )
            .where(OUTBOX.c.status == "dead")
            .order_by(OUTBOX.c.id.desc())
            .limit(dead_limit)
        ).all()
    totals = {"pending": 0, "sent": 0, "dead": 0}
    by_contact: dict[str, dict[str, int]] = {}
    for contact, status, n in rows:
        totals[status] = totals.get(status, 0) + n
        by_contact.setdefault(contact, {"pending": 0, "sent": 0, "dead": 0})[status] = n
    return {
        **totals,
        "oldest_pending_at": oldest,
        "by_contact": by_contact,
        "dead_rows": [dict(r._mapping) for r in dead],
    }


def requeue_dead(
    store: Store, ids: Sequence[int] | None = None, *, now: datetime | None = None
) -> int:
    """Give dead rows another full round of tries (after fixing a contact); returns the count."""
    now = now or datetime.now(UTC)
    q = update(OUTBOX).where(OUTBOX.c.status == "dead")
    if ids is not None:
        q = q.where(OUTBOX.c.id.in_(list(ids)))
    with store.engine.begin() as conn:
        return conn.execute(q.values(status="pending", attempts=0, next_attempt_at=now)).rowcount
