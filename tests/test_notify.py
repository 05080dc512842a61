"""Outbox delivery against real HTTP servers on 127.0.0.1 and a real store file."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from tafang.sla.notify import (
    DeliveryReport,
    NotifySettings,
    deliver_due,
    digest_key,
    outbox_summary,
    redact,
    requeue_dead,
    robot_key,
)
from tafang.store.cases import Store
from tafang.store.config import Contact, Deployment
from tafang.store.db import make_engine
from tafang.store.models import Outbox
from tafang.store.outbox import enqueue
from werkzeug import Request, Response

OUTBOX = Outbox.__table__
T0 = datetime(2026, 3, 2, 1, 0, 0, tzinfo=UTC)  # 09:00 in Shanghai, a Monday
TOKEN = "tok-7f3a9c2e51d0"
SECRET = "SECabc123def456ghi789"


def deployment_with(base: Deployment, contacts: list[dict[str, Any]]) -> Deployment:
    return Deployment.model_validate({**base.model_dump(), "contacts": contacts})


def open_store(url: str, d: Deployment) -> Store:
    return Store(make_engine(url), d)


def event(case_id: int = 1043, level_name: str = "grid", **extra: Any) -> dict[str, Any]:
    ev: dict[str, Any] = {
        "kind": "escalation",
        "case_id": case_id,
        "title": "Bikes blocking the fire lane",
        "category": "0102",
        "grid": "99123401000101",
        "level": 1,
        "level_name": level_name,
        "clock": "respond",
        "due_at": (T0 - timedelta(seconds=12)).isoformat(),
        "lateness_ms": 12_345.0,
    }
    ev.update(extra)
    return ev


def put(
    store: Store, key: str, contact: str = "grid", now: datetime = T0, **ev: Any
) -> dict[str, Any]:
    e = event(level_name=contact, **ev)
    with store.write() as (conn, _head):
        enqueue(conn, key=key, contact=contact, case_id=e["case_id"], event=e, now=now)
    return e


def rows(store: Store) -> dict[str, Any]:
    with store.engine.connect() as conn:
        return {r.key: r for r in conn.execute(select(OUTBOX).order_by(OUTBOX.c.id))}


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_ROBOT_TOKEN", TOKEN)
    monkeypatch.setenv("T_ROBOT_SECRET", SECRET)


def test_json_contact_receives_event_once_with_idempotency_key(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    d = deployment_with(
        tiny, [{"level": "grid", "name": "Wardens", "url": httpserver.url_for("/hook")}]
    )
    store = open_store(sqlite_url, d)
    ev = put(store, "esc-1043-respond-1")
    httpserver.expect_request("/hook", method="POST").respond_with_json({"ok": True})

    report = deliver_due(store, d, now=T0)
    again = deliver_due(store, d, now=T0 + timedelta(seconds=1))

    assert report.sent == 1 and report.messages == 1
    assert again.messages == 0
    assert len(httpserver.log) == 1
    req, _ = httpserver.log[0]
    assert req.headers["Idempotency-Key"] == "esc-1043-respond-1"
    assert req.get_json() == {**ev, "key": "esc-1043-respond-1"}
    row = rows(store)["esc-1043-respond-1"]
    assert (row.status, row.attempts, row.sent_at) == ("sent", 1, T0)


def test_dingtalk_text_is_chinese_signed_and_mentions(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str, secrets_env: None
) -> None:
    contact = {
        "level": "enforcement",
        "name": "Bank leads",
        "url": httpserver.url_for("/robot/send"),
        "format": "dingtalk",
        "token_env": "T_ROBOT_TOKEN",
        "secret_env": "T_ROBOT_SECRET",
        "at_mobiles": ["13800000001"],
    }
    d = deployment_with(tiny, [contact])
    store = open_store(sqlite_url, d)
    put(store, "esc-1043-respond-1", contact="enforcement")
    httpserver.expect_request("/robot/send", method="POST").respond_with_json(
        {"errcode": 0, "errmsg": "ok"}
    )

    report = deliver_due(store, d, now=T0)

    assert report.sent == 1
    req, _ = httpserver.log[0]
    q = parse_qs(req.query_string.decode())
    assert q["access_token"] == [TOKEN]
    ts = q["timestamp"][0]
    assert ts == str(int(T0.timestamp() * 1000))
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert q["sign"] == [expected]
    assert req.headers["Idempotency-Key"] == "esc-1043-respond-1"
    body = req.get_json()
    assert body["msgtype"] == "text"
    assert body["at"] == {"atMobiles": ["13800000001"], "isAtAll": False}
    content = body["text"]["content"]
    assert content.startswith("【超时升级】案件 #1043 Bikes blocking the fire lane")
    assert "综合执法圈" in content and "W-1" in content and "0102 Litter" in content
    assert "响应" in content and "12 秒" in content and "@13800000001" in content


def test_untrusted_title_cannot_break_lines_or_smuggle_escapes(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    contact = {"level": "grid", "name": "W", "url": httpserver.url_for("/r"), "format": "dingtalk"}
    d = deployment_with(tiny, [contact])
    store = open_store(sqlite_url, d)
    put(store, "k1", title="evil\x1b[31m\n@all 升级至：指挥中心")
    httpserver.expect_request("/r").respond_with_json({"errcode": 0})

    deliver_due(store, d, now=T0)

    content = httpserver.log[0][0].get_json()["text"]["content"]
    first = content.splitlines()[0]
    assert "\x1b" not in content and "\u241b" in first  # ESC shown as ␛ (store.text.safe)
    assert not [c for c in content if unicodedata.category(c) == "Cc" and c != "\n"]
    assert first.startswith("【超时升级】案件 #1043 evil") and "升级至：指挥中心" in first


def test_http_500_is_retried_with_growing_backoff_never_dead(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    d = deployment_with(tiny, [{"level": "grid", "name": "W", "url": httpserver.url_for("/h")}])
    store = open_store(sqlite_url, d)
    put(store, "k500")
    httpserver.expect_request("/h").respond_with_data("boom", status=500)

    now = T0
    delays = []
    for attempt in range(1, 11):
        report = deliver_due(store, d, now=now)
        assert report.messages == 1, f"attempt {attempt} made no request"
        row = rows(store)["k500"]
        assert row.attempts == attempt
        assert "HTTP 500" in row.last_error
        assert row.status == "pending"  # no cap on attempts (issue 13): only on the interval
        # not due again a moment later: the backoff holds
        assert deliver_due(store, d, now=now + timedelta(seconds=1)).messages == 0
        delays.append((row.next_attempt_at - now).total_seconds())
        now = row.next_attempt_at
    for n, delay in enumerate(delays, 1):
        nominal = min(300.0, 2.0 * 2 ** (n - 1))
        assert 0.8 * nominal <= delay <= min(300.0, 1.2 * nominal), (n, delay)
    summary = outbox_summary(store)
    assert (summary["pending"], summary["sent"], summary["dead"]) == (1, 0, 0)

    # A row an older version left dead is put back by requeue_dead.
    with store.engine.begin() as conn:
        conn.execute(OUTBOX.update().values(status="dead"))
    assert outbox_summary(store)["dead_rows"][0]["key"] == "k500"
    assert requeue_dead(store, now=now) == 1
    httpserver.clear()
    httpserver.expect_request("/h").respond_with_json({})
    assert deliver_due(store, d, now=now).sent == 1


def test_dingtalk_errcode_is_a_failed_delivery(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    contact = {"level": "grid", "name": "W", "url": httpserver.url_for("/r"), "format": "dingtalk"}
    d = deployment_with(tiny, [contact])
    store = open_store(sqlite_url, d)
    put(store, "kerr")
    httpserver.expect_request("/r").respond_with_json(
        {"errcode": 310000, "errmsg": "keywords not in content"}
    )

    report = deliver_due(store, d, now=T0)

    row = rows(store)["kerr"]
    assert report.sent == 0 and report.failed == 1
    assert (row.status, row.attempts) == ("pending", 1)
    assert "errcode 310000" in row.last_error and "keywords not in content" in row.last_error
    assert row.next_attempt_at > T0


class SilentServer:
    """Accepts connections and never answers; notes when the client gives up."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.05)
        self.accepted = threading.Event()
        self.closed_by_client = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/hang"

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted.set()
            conn.settimeout(0.05)
            with conn:
                while not self.stop.is_set():
                    try:
                        if conn.recv(65536) == b"":
                            self.closed_by_client.set()
                            break
                    except TimeoutError:
                        continue

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    s = SilentServer()
    yield s
    s.close()


@pytest.mark.slow  # a race / fault test: still runs in .ci/run
def test_hanging_endpoint_does_not_delay_a_healthy_one(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str, silent: SilentServer
) -> None:
    d = deployment_with(
        tiny,
        [
            {"level": "grid", "name": "hangs", "url": silent.url},
            {"level": "enforcement", "name": "healthy", "url": httpserver.url_for("/ok")},
        ],
    )
    store = open_store(sqlite_url, d)
    put(store, "k-hang", contact="grid")
    put(store, "k-ok", contact="enforcement")
    seen: dict[str, bool] = {}

    def healthy(_req: Request) -> Response:
        # Served while the other contact's request is still hanging: proof of concurrency.
        seen["hang_started"] = silent.accepted.wait(1.0)
        seen["hang_still_open"] = not silent.closed_by_client.is_set()
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/ok").respond_with_handler(healthy)
    settings = NotifySettings(connect_timeout=0.5, read_timeout=0.6)

    report = deliver_due(store, d, now=T0, settings=settings)

    assert seen == {"hang_started": True, "hang_still_open": True}
    by = {c.contact: c for c in report.contacts}
    assert by["enforcement"].sent == 1
    assert by["grid"].failed == 1 and "Timeout" in by["grid"].error
    r = rows(store)
    assert r["k-ok"].status == "sent"
    assert r["k-hang"].status == "pending" and "ReadTimeout" in r["k-hang"].last_error


class DripServer:
    """Answers every request 200 but sends its bytes one at a time, `every` seconds apart:
    httpx's read timeout (per read) never fires. `headers_too` drips the header block too."""

    HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"

    def __init__(self, every: float = 0.3, headers_too: bool = False) -> None:
        self.every, self.headers_too = every, headers_too
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.05)
        self.requests = 0
        self.accepted = threading.Event()
        self.closed_by_client = threading.Event()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}/drip"

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                conn.recv(65536)  # the request (small: one message)
            except OSError:
                return
            self.requests += 1
            self.accepted.set()
            head = b"" if self.headers_too else self.HEAD
            drip = (self.HEAD if self.headers_too else b"") + b" " * 100
            try:
                conn.sendall(head)
                for i in range(len(drip)):
                    if self.stop.wait(self.every):
                        return
                    conn.sendall(drip[i : i + 1])
            except OSError:  # the client hung up
                self.closed_by_client.set()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        for t in self.threads:
            t.join(2)
        self.sock.close()


@pytest.fixture
def drip() -> Iterator[DripServer]:
    s = DripServer()
    yield s
    s.close()


def until(check: Any, *, limit: float = 8.0, step: float = 0.05) -> Any:
    """Poll `check()` until it is truthy (short steps, bounded total); return its value."""
    end = time.monotonic() + limit
    while True:
        value = check()
        if value or time.monotonic() > end:
            return value
        time.sleep(step)


@pytest.mark.slow  # a race / fault test: still runs in .ci/run
def test_dripping_endpoint_does_not_hold_back_the_others_or_the_next_round(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str, drip: DripServer
) -> None:
    d = deployment_with(
        tiny,
        [
            {"level": "grid", "name": "drips", "url": drip.url},
            {"level": "enforcement", "name": "healthy", "url": httpserver.url_for("/ok")},
        ],
    )
    store = open_store(sqlite_url, d)
    put(store, "k-drip", contact="grid")
    put(store, "k-ok-1", contact="enforcement")
    httpserver.expect_request("/ok").respond_with_json({})
    # The drip would take 30 s; the request's hard deadline is 2 s, the call waits 0.5 s.
    settings = NotifySettings(
        connect_timeout=0.5,
        read_timeout=1.0,
        request_deadline=2.0,
        return_after=0.5,
        backoff_base=100.0,
    )

    first = deliver_due(store, d, now=T0, settings=settings)

    # Returned with the healthy contact done while the drip is still going.
    assert drip.accepted.is_set() and not drip.closed_by_client.is_set()
    assert [(c.contact, c.sent) for c in first.contacts] == [("enforcement", 1)]
    assert first.in_flight == ("grid",)
    assert rows(store)["k-ok-1"].status == "sent"

    # The next round serves the healthy contact at once and leaves the busy one alone, even
    # past its lease (the in-flight batch, not only the lease, stops a double send).
    put(store, "k-ok-2", contact="enforcement", now=T0 + timedelta(seconds=1))
    second = deliver_due(store, d, now=T0 + timedelta(seconds=70), settings=settings)
    assert [(c.contact, c.sent) for c in second.contacts] == [("enforcement", 1)]
    assert second.in_flight == ("grid",)
    assert drip.requests == 1

    # The drip hits the deadline; the first call after that reports it, and its row waits
    # for a retry (backoff), still sent once only.
    reports: list[DeliveryReport] = []

    def grid_reported() -> bool:
        reports.append(deliver_due(store, d, now=T0 + timedelta(seconds=71), settings=settings))
        return any(c.contact == "grid" for c in reports[-1].contacts)

    assert until(grid_reported)
    grid = next(c for c in reports[-1].contacts if c.contact == "grid")
    assert grid.failed == 1 and "DeadlineExceeded" in grid.error
    assert reports[-1].in_flight == ()
    row = rows(store)["k-drip"]
    assert row.status == "pending" and row.attempts == 1
    assert "within 2 s" in row.last_error and row.next_attempt_at > T0 + timedelta(seconds=71)
    assert drip.requests == 1
    assert until(drip.closed_by_client.is_set, limit=3.0)  # the request was really cut


@pytest.mark.slow  # a race / fault test: still runs in .ci/run
def test_request_deadline_holds_when_even_the_headers_drip(
    tiny: Deployment, sqlite_url: str
) -> None:
    slow = DripServer(every=0.2, headers_too=True)
    try:
        d = deployment_with(tiny, [{"level": "grid", "name": "drips", "url": slow.url}])
        store = open_store(sqlite_url, d)
        put(store, "k-slow-head")
        settings = NotifySettings(read_timeout=1.0, request_deadline=0.8, return_after=5.0)

        report = deliver_due(store, d, now=T0, settings=settings)

        assert report.in_flight == ()
        assert report.failed == 1 and "DeadlineExceeded" in report.contacts[0].error
        assert not slow.stop.is_set() and slow.requests == 1
        # The batch's own client is closed at its end: the abandoned request ends too.
        assert until(slow.closed_by_client.is_set, limit=3.0)
    finally:
        slow.close()


def test_secrets_never_reach_last_error_or_logs(
    httpserver: HTTPServer,
    tiny: Deployment,
    sqlite_url: str,
    secrets_env: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def echo_url(req: Request) -> Response:  # a proxy that quotes the URL back, as some do
        return Response(f"bad gateway for {req.url}", status=502)

    base = {"format": "dingtalk", "token_env": "T_ROBOT_TOKEN", "secret_env": "T_ROBOT_SECRET"}
    d = deployment_with(
        tiny,
        [
            {**base, "level": "grid", "name": "echo", "url": httpserver.url_for("/e")},
            {**base, "level": "risk", "name": "refused", "url": "http://127.0.0.1:9/robot"},
        ],
    )
    store = open_store(sqlite_url, d)
    put(store, "k-echo", contact="grid")
    put(store, "k-refused", contact="risk")
    httpserver.expect_request("/e").respond_with_handler(echo_url)
    caplog.set_level(logging.DEBUG)

    report = deliver_due(store, d, now=T0)

    assert report.failed == 2
    req = httpserver.log[0][0]
    sign = parse_qs(req.query_string.decode())["sign"][0]
    # Our process's logs (the werkzeug test server is the receiver: it may log its URL).
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]
    texts = [*ours, *(r.last_error for r in rows(store).values())]
    texts += [c.error for c in report.contacts]
    assert "HTTP 502" in rows(store)["k-echo"].last_error
    assert any("HTTP Request: POST" in m for m in ours)  # httpx still logs, minus the query
    for t in texts:
        for secret in (TOKEN, SECRET, sign, sign.replace("+", "%2B")):
            assert secret not in t


def test_redact_drops_query_strings_and_known_values() -> None:
    msg = "POST https://oapi.dingtalk.com/robot/send?access_token=abc123&sign=x%2By failed abcd9"
    assert redact(msg, ["abcd9"]) == "POST https://oapi.dingtalk.com/robot/send?… failed ***"


def test_rate_limit_folds_excess_into_one_digest_and_survives_restart(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    contact = {
        "level": "centre",
        "name": "Control room",
        "url": httpserver.url_for("/r"),
        "format": "dingtalk",
    }
    d = deployment_with(tiny, [contact])
    store = open_store(sqlite_url, d)
    keys = [f"esc-{i:03d}" for i in range(50)]
    for i, k in enumerate(keys):
        put(store, k, contact="centre", case_id=2000 + i, now=T0 + timedelta(milliseconds=i))
    httpserver.expect_request("/r").respond_with_json({"errcode": 0})

    report = deliver_due(store, d, now=T0 + timedelta(seconds=1))

    assert len(httpserver.log) == 20
    bodies = [r.get_json() for r, _ in httpserver.log]
    assert [b["msgtype"] for b in bodies].count("text") == 19
    digest = [(r, b) for (r, _), b in zip(httpserver.log, bodies, strict=True)]
    digest = [(r, b) for r, b in digest if b["msgtype"] == "markdown"]
    assert len(digest) == 1
    req, body = digest[0]
    assert req.headers["Idempotency-Key"] == digest_key(keys[19:])
    assert "共 31 件" in body["markdown"]["text"] and "#2049" in body["markdown"]["text"]
    assert report.sent == 50 and report.messages == 20
    assert all(r.status == "sent" for r in rows(store).values())

    # A restart (new Store on the same file) still sees the full window.
    store.engine.dispose()
    store = open_store(sqlite_url, d)
    for k in ("late-1", "late-2", "late-3"):
        put(store, k, contact="centre", now=T0 + timedelta(seconds=10))
    held = deliver_due(store, d, now=T0 + timedelta(seconds=10))
    assert held.messages == 0 and held.waiting == 3
    assert len(httpserver.log) == 20
    freed = deliver_due(store, d, now=T0 + timedelta(seconds=62))
    assert freed.sent == 3 and freed.messages == 3
    assert len(httpserver.log) == 23


def test_json_digest_carries_every_folded_key(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    contact = {"level": "grid", "name": "W", "url": httpserver.url_for("/h"), "rate_per_minute": 3}
    d = deployment_with(tiny, [contact])
    store = open_store(sqlite_url, d)
    keys = [f"k{i}" for i in range(6)]
    for i, k in enumerate(keys):
        put(store, k, now=T0 + timedelta(milliseconds=i))
    httpserver.expect_request("/h").respond_with_json({})

    deliver_due(store, d, now=T0 + timedelta(seconds=1))

    assert len(httpserver.log) == 3
    last = httpserver.log[-1][0].get_json()
    assert last["kind"] == "digest" and last["keys"] == keys[2:] and last["count"] == 4
    assert [e["key"] for e in last["events"]] == keys[2:]


def test_level_without_contact_fails_visibly(tiny: Deployment, sqlite_url: str) -> None:
    d = deployment_with(tiny, [])
    store = open_store(sqlite_url, d)
    put(store, "orphan", contact="risk")

    report = deliver_due(store, d, now=T0)

    assert report.failed == 1 and report.messages == 0
    assert "no contact configured for level 'risk'" in rows(store)["orphan"].last_error


@pytest.mark.slow  # a race / fault test: still runs in .ci/run
def test_two_daemons_on_postgresql_send_each_row_once(
    httpserver: HTTPServer, tiny: Deployment, pg_url: str
) -> None:
    """Daemon B starts while daemon A is mid-send: A's lease hides the rows from B."""
    contact = {
        "level": "grid",
        "name": "W",
        "url": httpserver.url_for("/h"),
        "rate_per_minute": 100,
    }
    d = deployment_with(tiny, [contact])
    a, b = open_store(pg_url, d), open_store(pg_url, d)
    try:
        keys = [f"pg-{i}" for i in range(30)]
        for i, k in enumerate(keys):
            put(a, k, now=T0 + timedelta(milliseconds=i))
        a_sending = threading.Event()
        b_done = threading.Event()

        def answer(_req: Request) -> Response:
            if not a_sending.is_set():
                a_sending.set()
                b_done.wait(1.0)  # hold A's first send until B has had its go
            return Response("{}", content_type="application/json")

        httpserver.expect_request("/h").respond_with_handler(answer)
        reports = []

        def run_b() -> None:
            a_sending.wait(2.0)
            reports.append(deliver_due(b, d, now=T0 + timedelta(seconds=1)))
            b_done.set()

        tb = threading.Thread(target=run_b)
        tb.start()
        reports.append(deliver_due(a, d, now=T0 + timedelta(seconds=1)))
        tb.join(5)

        delivered: list[str] = []
        for req, _ in httpserver.log:
            body = json.loads(req.data)
            delivered += body.get("keys") or [body["key"]]
        assert sorted(delivered) == sorted(keys)
        assert len(httpserver.log) == 30
        assert sum(r.sent for r in reports) == 30
        assert outbox_summary(a)["sent"] == 30
    finally:
        a.engine.dispose()
        b.engine.dispose()


def test_summary_counts_by_contact(tmp_path: Path, tiny: Deployment) -> None:
    store = open_store(f"sqlite:///{tmp_path / 's.db'}", tiny)
    put(store, "a", contact="grid")
    put(store, "b", contact="risk")
    s = outbox_summary(store)
    assert s["pending"] == 2 and s["by_contact"]["risk"]["pending"] == 1
    assert s["oldest_pending_at"] == T0


def test_levels_sharing_one_robot_share_its_rate_window(
    httpserver: HTTPServer,
    tiny: Deployment,
    sqlite_url: str,
    secrets_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("T_OTHER", "tok-other-000")
    robot = {
        "url": httpserver.url_for("/robot/send"),
        "format": "dingtalk",
        "token_env": "T_ROBOT_TOKEN",
        "at_mobiles": [],
    }
    d = deployment_with(
        tiny,
        [
            {**robot, "level": "grid", "name": "Wardens", "at_mobiles": ["13800000001"]},
            {**robot, "level": "enforcement", "name": "Bank leads"},
            # Same URL, another robot (another token): a window of its own.
            {**robot, "level": "centre", "name": "Control", "token_env": "T_OTHER"},
        ],
    )
    store = open_store(sqlite_url, d)
    keys = []
    for i in range(30):
        level = ("grid", "enforcement")[i % 2]
        keys.append(f"esc-{i:03d}")
        put(store, keys[-1], contact=level, case_id=3000 + i, now=T0 + timedelta(milliseconds=i))
    httpserver.expect_request("/robot/send").respond_with_json({"errcode": 0})

    report = deliver_due(store, d, now=T0 + timedelta(seconds=1))

    assert len(httpserver.log) == 20
    bodies = [r.get_json() for r, _ in httpserver.log]
    digests = [b for b in bodies if b["msgtype"] == "markdown"]
    assert len(digests) == 1
    md = digests[0]["markdown"]["text"]
    assert "共 11 件" in md and "Bank leads、Wardens" in md and "@13800000001" in md
    assert "#3029" in md and "升级至综合执法圈" in md and "升级至网格" in md
    assert report.sent == 30 and report.messages == 20
    assert all(r.status == "sent" for r in rows(store).values())

    # Within the same minute either level waits; the other robot on the same URL does not.
    put(store, "late-enf", contact="enforcement", case_id=3100, now=T0 + timedelta(seconds=5))
    put(store, "late-centre", contact="centre", case_id=3101, now=T0 + timedelta(seconds=5))
    held = deliver_due(store, d, now=T0 + timedelta(seconds=5))
    by = {c.contact: c for c in held.contacts}
    assert by["enforcement"].waiting == 1 and by["enforcement"].messages == 0
    assert by["centre"].sent == 1
    assert len(httpserver.log) == 21


def test_robot_key_is_url_and_token_name_not_level() -> None:
    base = {"url": "https://oapi.dingtalk.com/robot/send", "token_env": "TOK"}
    a = robot_key(Contact.model_validate({**base, "level": "grid", "name": "A"}))
    b = robot_key(
        Contact.model_validate({**base, "level": "risk", "name": "B", "format": "dingtalk"})
    )
    c = robot_key(Contact.model_validate({**base, "level": "grid", "name": "A", "token_env": "X"}))
    assert a == b != c
    assert len(a) <= 32 and "dingtalk" not in a


# ---- WeCom (企业微信) group robots ----------------------------------------------------------
WECOM_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"


@pytest.fixture
def wecom_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_WECOM_KEY", WECOM_KEY)


def wecom(url: str, level: str = "enforcement", **extra: Any) -> dict[str, Any]:
    return {
        "level": level,
        "name": "执法圈企业微信群",
        "url": url,
        "format": "wecom",
        "key_env": "T_WECOM_KEY",
        **extra,
    }


def test_wecom_text_has_the_key_in_the_query_and_mentions_mobiles(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str, wecom_env: None
) -> None:
    url = httpserver.url_for("/cgi-bin/webhook/send")
    d = deployment_with(tiny, [wecom(url, at_mobiles=["13800000001", "13900000002"])])
    store = open_store(sqlite_url, d)
    put(store, "esc-1043-respond-1", contact="enforcement")
    httpserver.expect_request("/cgi-bin/webhook/send", method="POST").respond_with_json(
        {"errcode": 0, "errmsg": "ok"}
    )

    report = deliver_due(store, d, now=T0)

    assert report.sent == 1
    req, _ = httpserver.log[0]
    assert parse_qs(req.query_string.decode()) == {"key": [WECOM_KEY]}  # unsigned: key only
    assert req.headers["Idempotency-Key"] == "esc-1043-respond-1"
    body = req.get_json()
    assert set(body) == {"msgtype", "text"} and body["msgtype"] == "text"
    assert body["text"]["mentioned_mobile_list"] == ["13800000001", "13900000002"]
    content = body["text"]["content"]
    assert content.startswith("【超时升级】案件 #1043 Bikes blocking the fire lane")
    assert "综合执法圈" in content and "0102 Litter" in content and "响应" in content
    assert len(content.encode()) <= 2048


def test_wecom_key_may_come_from_a_systemd_credential(
    httpserver: HTTPServer,
    tiny: Deployment,
    sqlite_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("T_WECOM_KEY", raising=False)
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "T_WECOM_KEY").write_text(WECOM_KEY + "\n", encoding="utf-8")
    d = deployment_with(tiny, [wecom(httpserver.url_for("/w"))])
    store = open_store(sqlite_url, d)
    put(store, "k-cred", contact="enforcement")
    httpserver.expect_request("/w").respond_with_json({"errcode": 0})

    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    missing = deliver_due(store, d, now=T0)
    assert missing.failed == 1 and len(httpserver.log) == 0
    assert "T_WECOM_KEY is not set" in rows(store)["k-cred"].last_error

    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    report = deliver_due(store, d, now=rows(store)["k-cred"].next_attempt_at)
    assert report.sent == 1
    assert parse_qs(httpserver.log[0][0].query_string.decode()) == {"key": [WECOM_KEY]}


def test_wecom_errcode_is_retried_then_sent(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str, wecom_env: None
) -> None:
    d = deployment_with(tiny, [wecom(httpserver.url_for("/w"))])
    store = open_store(sqlite_url, d)
    put(store, "k-45009", contact="enforcement")
    httpserver.expect_ordered_request("/w").respond_with_json(
        {"errcode": 45009, "errmsg": "api freq out of limit"}
    )
    httpserver.expect_ordered_request("/w").respond_with_json({"errcode": 0, "errmsg": "ok"})

    first = deliver_due(store, d, now=T0)
    row = rows(store)["k-45009"]
    assert first.sent == 0 and first.failed == 1
    assert (row.status, row.attempts) == ("pending", 1)
    assert "errcode 45009" in row.last_error and "api freq out of limit" in row.last_error
    assert row.next_attempt_at > T0
    assert deliver_due(store, d, now=T0 + timedelta(milliseconds=100)).messages == 0  # backoff

    second = deliver_due(store, d, now=row.next_attempt_at)
    row = rows(store)["k-45009"]
    assert second.sent == 1 and (row.status, row.attempts) == ("sent", 2)
    assert len(httpserver.log) == 2
    assert httpserver.log[0][0].get_json() == httpserver.log[1][0].get_json()


def test_wecom_rate_window_is_per_robot_key_and_folds_into_markdown(
    httpserver: HTTPServer,
    tiny: Deployment,
    sqlite_url: str,
    wecom_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every WeCom robot has the same URL: its key (by env name) tells robots apart."""
    monkeypatch.setenv("T_WECOM_OTHER", "other-key-0000")
    url = httpserver.url_for("/cgi-bin/webhook/send")
    d = deployment_with(
        tiny,
        [
            wecom(url, at_mobiles=["13800000001"]),
            wecom(url, level="centre", name="指挥中心", key_env="T_WECOM_OTHER"),
        ],
    )
    store = open_store(sqlite_url, d)
    for i in range(25):
        put(store, f"e-{i:02d}", contact="enforcement", case_id=4000 + i)
        put(store, f"c-{i:02d}", contact="centre", case_id=5000 + i)
    httpserver.expect_request("/cgi-bin/webhook/send").respond_with_json({"errcode": 0})

    report = deliver_due(store, d, now=T0 + timedelta(seconds=1))

    by_key: dict[str, list[dict[str, Any]]] = {}
    for req, _ in httpserver.log:
        by_key.setdefault(req.args["key"], []).append(req.get_json())
    assert sorted(by_key) == sorted([WECOM_KEY, "other-key-0000"])
    for bodies in by_key.values():
        assert len(bodies) == 20
        assert [b["msgtype"] for b in bodies].count("text") == 19
        (digest,) = [b for b in bodies if b["msgtype"] == "markdown"]
        assert set(digest["markdown"]) == {"content"} and "共 6 件" in digest["markdown"]["content"]
    assert report.sent == 50 and report.messages == 40

    put(store, "e-late", contact="enforcement", case_id=4100, now=T0 + timedelta(seconds=5))
    held = deliver_due(store, d, now=T0 + timedelta(seconds=5))
    assert held.messages == 0 and held.waiting == 1
    assert deliver_due(store, d, now=T0 + timedelta(seconds=62)).sent == 1


def test_wecom_key_never_reaches_last_error_or_logs(
    httpserver: HTTPServer,
    tiny: Deployment,
    sqlite_url: str,
    wecom_env: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def echo_url(req: Request) -> Response:  # a proxy that quotes the URL back
        return Response(f"bad gateway for {req.url} key {req.args.get('key')}", status=502)

    d = deployment_with(
        tiny,
        [
            wecom(httpserver.url_for("/e")),
            wecom("http://127.0.0.1:9/cgi-bin/webhook/send", level="risk"),
        ],
    )
    store = open_store(sqlite_url, d)
    put(store, "k-echo", contact="enforcement")
    put(store, "k-refused", contact="risk")
    httpserver.expect_request("/e").respond_with_handler(echo_url)
    caplog.set_level(logging.DEBUG)

    report = deliver_due(store, d, now=T0)

    assert report.failed == 2
    assert httpserver.log[0][0].args["key"] == WECOM_KEY  # it was sent …
    ours = [r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug")]
    texts = [
        *ours,
        *(r.last_error for r in rows(store).values()),
        *(c.error for c in report.contacts),
    ]
    assert "HTTP 502" in rows(store)["k-echo"].last_error
    assert any("HTTP Request: POST" in m for m in ours)
    for t in texts:  # … and never shown
        assert WECOM_KEY not in t and WECOM_KEY.replace("-", "%2D") not in t


def test_wecom_contact_config_is_checked() -> None:
    base = {"level": "grid", "name": "W", "url": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send"}
    ok = Contact.model_validate({**base, "format": "wecom", "key_env": "K"})
    assert ok.token_env == "K"
    for bad in (
        {"format": "wecom"},  # no key
        {"format": "wecom", "key_env": "K", "secret_env": "S"},  # WeCom does not sign
        {"format": "dingtalk", "key_env": "K"},  # key_env is WeCom's
        {"format": "wecom", "key_env": "K", "token_env": "T"},  # one name for the key
    ):
        with pytest.raises(ValueError):
            Contact.model_validate({**base, **bad})


def test_wecom_bodies_fit_its_byte_limits() -> None:
    from tafang.sla.notify.wecom import fit_bytes

    text = "案" * 1000  # 3000 bytes
    cut = fit_bytes(text, 2048)
    assert len(cut.encode()) <= 2048 and cut.endswith("…") and cut.startswith("案" * 600)
    assert fit_bytes("short", 2048) == "short"
