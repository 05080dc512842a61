"""`tafang serve`: the field API through a real uvicorn on 127.0.0.1, on SQLite and PostgreSQL.

Signature, replay window, idempotency by request id, the console's permission checks, the
clock stopping at the reported time, self-found cases and pushed intake.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from tafang.console.field_api import make_app
from tafang.console.field_auth import key_name, signed_headers
from tafang.store.cases import Actor, Store, utcnow
from tafang.store.changes import ChangeFeed
from tafang.store.models import DeadLetter, FieldRequest

KEYS = {"1-03": "k-103-secret", "1-05": "k-105-secret", "feed:12345": "k-feed-secret"}
DISPATCHER = Actor("d01", "test")
CHECKER = Actor("c01", "test")
GRID = "33010600700801"


class Api:
    """A client of the served API that signs as one caller."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=10)

    def post(
        self,
        path: str,
        body: Any = None,
        *,
        caller: str = "1-03",
        rid: str | None = None,
        key: str | None = None,
        at: float | None = None,
        raw: bytes | None = None,
    ) -> httpx.Response:
        data = raw if raw is not None else json.dumps(body or {}).encode()
        headers = signed_headers(
            key or KEYS.get(caller, "nope"),
            caller,
            "POST",
            path,
            data,
            rid or uuid.uuid4().hex,
            time.time() if at is None else at,
        )
        return self.http.post(path, content=data, headers=headers)


def serve(store: Store) -> Iterator[Api]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        make_app(store, key_of=KEYS.get), log_level="warning", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    api = Api(f"http://127.0.0.1:{port}")
    try:
        yield api
    finally:
        api.http.close()
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def api(store: Store) -> Iterator[Api]:
    store.sync_roster()
    yield from serve(store)


def dispatched(store: Store, to: str = "1-03", now: datetime | None = None) -> int:
    c = store.create({"title": "占道经营", "grid": GRID, "category": "0101"}, DISPATCHER, now=now)
    store.act(c.id, "dispatch", DISPATCHER, to=to, now=now)
    return c.id


def entries(store: Store, case_id: int, action: str) -> int:
    return sum(1 for e in store.timeline(case_id) if e.action == action)


def test_health_is_unsigned(api: Api) -> None:
    assert api.http.get("/health").json() == {"ok": True}


def test_signature_is_checked(store: Store, api: Api) -> None:
    cid = dispatched(store)
    body = json.dumps({}).encode()
    unsigned = api.http.post(f"/cases/{cid}/confirm", content=body)
    assert unsigned.status_code == 401 and "missing header" in unsigned.json()["reason"]
    wrong = api.post(f"/cases/{cid}/confirm", {}, key="not-the-key")
    assert wrong.status_code == 401 and wrong.json()["code"] == "signature"
    stranger = api.post(f"/cases/{cid}/confirm", {}, caller="9-99")
    assert stranger.status_code == 401 and "no key" in stranger.json()["reason"]
    # A body changed after signing does not match.
    h = signed_headers(
        KEYS["1-03"], "1-03", "POST", f"/cases/{cid}/arrive", b"{}", "r1", time.time()
    )
    tampered = api.http.post(f"/cases/{cid}/arrive", content=b'{"lat": 1}', headers=h)
    assert tampered.status_code == 401
    assert store.get(cid).status == "dispatched" and entries(store, cid, "confirm") == 0
    ok = api.post(f"/cases/{cid}/confirm", {})
    assert ok.status_code == 200, ok.text
    assert entries(store, cid, "confirm") == 1


def test_replay_older_than_five_minutes_is_refused(store: Store, api: Api) -> None:
    cid = dispatched(store)
    old = api.post(f"/cases/{cid}/arrive", {}, at=time.time() - 301)
    assert old.status_code == 401 and "from the server's clock" in old.json()["reason"]
    ahead = api.post(f"/cases/{cid}/arrive", {}, at=time.time() + 301)
    assert ahead.status_code == 401
    assert store.get(cid).status == "dispatched"


def test_same_request_id_same_answer_done_once(store: Store, api: Api) -> None:
    cid = dispatched(store)
    first = api.post(f"/cases/{cid}/arrive", {"lat": 30.3, "lon": 120.1}, rid="arr-1")
    again = api.post(f"/cases/{cid}/arrive", {"lat": 30.3, "lon": 120.1}, rid="arr-1")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert entries(store, cid, "arrive") == 1
    [arrived] = [e.detail for e in store.timeline(cid) if e.action == "arrive"]
    assert (arrived["lat"], arrived["lon"]) == (30.3, 120.1)
    # A refusal is kept too: the same id gets the same refusal, even once it would pass.
    other = dispatched(store)
    early = api.post(f"/cases/{other}/handle", {"note": "x"}, rid="h-1")
    assert early.status_code == 409
    api.post(f"/cases/{other}/arrive", {})
    assert api.post(f"/cases/{other}/handle", {"note": "x"}, rid="h-1").json() == early.json()
    assert store.get(other).status == "on_scene"
    # The id belongs to its request: reused elsewhere it is refused.
    reused = api.post(f"/cases/{other}/confirm", {}, rid="arr-1")
    assert reused.status_code == 422 and reused.json()["code"] == "request_id"
    with store.engine.connect() as conn:
        n = conn.execute(select(func.count()).select_from(FieldRequest.__table__)).scalar_one()
    assert n == 3  # arr-1, h-1 and the arrival between them


def test_permissions_are_the_consoles(store: Store, api: Api) -> None:
    cid = dispatched(store, to="1-03")
    theirs = api.post(f"/cases/{cid}/arrive", {}, caller="1-05")
    assert theirs.status_code == 403 and theirs.json()["code"] == "not_yours"
    not_a_field_move = api.post(f"/cases/{cid}/close", {})
    assert not_a_field_move.status_code == 404
    feed = api.post(f"/cases/{cid}/arrive", {}, caller="feed:12345")
    assert feed.status_code == 403
    no_reason = api.post(f"/cases/{cid}/support", {})
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "needs_reason"
    missing = api.post("/cases/999999/arrive", {})
    assert missing.status_code == 404
    bad = api.post(f"/cases/{cid}/arrive", raw=b"{not json")
    assert bad.status_code == 400 and "not JSON" in bad.json()["reason"]
    badpos = api.post(f"/cases/{cid}/arrive", {"lat": "north"})
    assert badpos.status_code == 400
    assert store.get(cid).status == "dispatched"
    assert entries(store, cid, "arrive") == 0
    # A case sent to the officer's squad is theirs too.
    c2 = store.create({"title": "噪音", "grid": GRID}, DISPATCHER)
    store.act(c2.id, "dispatch", DISPATCHER, to="sq1")
    assert api.post(f"/cases/{c2.id}/confirm", {}, caller="1-05").status_code == 200
    # Handled from the field, the officer may not close it; a checker may (监管分离 holds).
    assert api.post(f"/cases/{cid}/arrive", {}).status_code == 200
    done = api.post(f"/cases/{cid}/handle", {"note": "已劝离", "photos": ["https://p/1.jpg"]})
    assert done.status_code == 200 and done.json()["case"]["status"] == "handled"
    [handled] = [e.detail for e in store.timeline(cid) if e.action == "handle"]
    assert handled["photos"] == ["https://p/1.jpg"] and handled["reason"] == "已劝离"
    assert store.act(cid, "close", CHECKER).status == "closed"


def test_the_clock_stops_at_the_reported_time(store: Store, api: Api) -> None:
    t0 = utcnow() - timedelta(minutes=10)
    cid = dispatched(store, now=t0)
    future = api.post(f"/cases/{cid}/arrive", {"at": (utcnow() + timedelta(hours=1)).isoformat()})
    assert future.status_code == 422 and future.json()["code"] == "reported_future"
    before = api.post(f"/cases/{cid}/arrive", {"at": (t0 - timedelta(minutes=1)).isoformat()})
    assert before.status_code == 422 and before.json()["code"] == "reported_early"
    assert store.get(cid).status == "dispatched"
    arrived = t0 + timedelta(minutes=4)
    ok = api.post(f"/cases/{cid}/arrive", {"at": arrived.timestamp()})
    assert ok.status_code == 200, ok.text
    case = store.get(cid)
    assert case.arrived_at == arrived and case.arrived_at <= case.arrive_due
    # A time without an offset is the deployment's local time (Asia/Shanghai, UTC+8).
    shanghai = (t0 + timedelta(minutes=6, hours=8)).replace(tzinfo=None).isoformat()
    handled = api.post(f"/cases/{cid}/handle", {"at": shanghai, "note": "ok"})
    assert handled.status_code == 200, handled.text
    assert store.get(cid).handled_at == t0 + timedelta(minutes=6)


def test_self_found_lands_handled_and_waits_for_the_check(store: Store, api: Api) -> None:
    found = utcnow() - timedelta(minutes=20)
    body = {
        "title": "共享单车乱停",
        "grid": "N1-01",
        "category": "0590",
        "found_at": found.isoformat(),
        "handled_at": (found + timedelta(minutes=5)).isoformat(),
        "note": "已摆放整齐",
        "photos": ["https://p/a.jpg"],
        "lat": 30.29,
        "lon": 120.1,
    }
    r = api.post("/self-found", body, caller="1-05")
    assert r.status_code == 201, r.text
    case = store.get(r.json()["case"]["id"])
    assert (case.status, case.assignee, case.handled_at) == (
        "handled",
        "1-05",
        found + timedelta(minutes=5),
    )
    with store.engine.connect() as conn:
        flag = conn.execute(select(store_cases().c.self_found).where(store_cases().c.id == case.id))
        assert flag.scalar_one() is True
    # 监管分离: the officer who handled it may not close it; a checker does.
    refused = api.post(f"/cases/{case.id}/handle", {})
    assert refused.status_code in (403, 409)
    assert store.act(case.id, "close", CHECKER).status == "closed"
    # Reporting for someone else, or handled before found: refused, nothing written.
    n = len(store.cases("all"))
    assert (
        api.post(
            "/self-found",
            {
                **body,
                "handled_at": found.isoformat(),
                "found_at": (found + timedelta(minutes=1)).isoformat(),
            },
            caller="1-05",
        ).status_code
        == 422
    )
    assert api.post("/self-found", {"title": ""}, caller="1-05").status_code == 422
    assert len(store.cases("all")) == n


def store_cases() -> Any:
    from tafang.store.models import Case

    return Case.__table__


def test_intake_push(store: Store, api: Api) -> None:
    rec = {"source": "12345", "external_id": "A-1", "title": "噪音扰民", "grid": GRID}
    r = api.post("/intake", rec, caller="feed:12345")
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    again = api.post("/intake", rec, caller="feed:12345")  # a new request id: intake dedupes
    assert again.json()["duplicate"] == 1
    bad = api.post("/intake", {"title": "no source"}, caller="feed:12345")
    assert bad.status_code == 422 and bad.json()["rejected"] == 1
    with store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(DeadLetter.__table__)).scalar() == 1
    assert api.post("/intake", raw=b"\x00garbage[", caller="feed:12345").status_code == 422
    assert api.post("/intake", rec, caller="1-03").status_code == 403
    lines = b"\n".join(json.dumps({**rec, "external_id": f"B-{i}"}).encode() for i in range(3))
    assert api.post("/intake", raw=lines, caller="feed:12345").json()["accepted"] == 3


def test_the_console_hears_a_field_move_within_a_second(store: Store, api: Api) -> None:
    cid = dispatched(store)
    feed = ChangeFeed(store.engine, poll=0.05)
    try:
        feed.wait(0)  # primes its view of the store
        seq = store.change_seq()
        assert api.post(f"/cases/{cid}/arrive", {}).status_code == 200
        assert feed.wait(1.0)
        assert store.change_seq() > seq
    finally:
        feed.close()


def test_key_names() -> None:
    assert key_name("2-03") == "TAFANG_FIELD_KEY_2_03"
    assert key_name("feed:12345") == "TAFANG_FIELD_KEY_FEED_12345"


def test_concurrent_retries_are_done_once_with_one_answer(store: Store, api: Api) -> None:
    cid = dispatched(store)
    path = f"/cases/{cid}/arrive"
    data = b"{}"
    headers = signed_headers(KEYS["1-03"], "1-03", "POST", path, data, "same-id", time.time())
    clients = [httpx.Client(base_url=api.base, timeout=10) for _ in range(6)]
    go = threading.Barrier(len(clients))
    answers: list[tuple[int, str]] = []

    def send(c: httpx.Client) -> None:
        go.wait()
        r = c.post(path, content=data, headers=headers)
        answers.append((r.status_code, r.text))

    threads = [threading.Thread(target=send, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    for c in clients:
        c.close()
    assert len(answers) == len(clients)
    assert len(set(answers)) == 1 and answers[0][0] == 200, answers
    assert entries(store, cid, "arrive") == 1
