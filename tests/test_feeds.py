"""HTTP feeds into intake, against real HTTP servers on 127.0.0.1 and a real store file."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select, update
from tafang.sla.feeds import feed_status, map_item, poll_due
from tafang.store.cases import Store
from tafang.store.config import Deployment, Feed
from tafang.store.db import make_engine
from tafang.store.models import DeadLetter, FeedCursor
from werkzeug import Request, Response

T0 = datetime(2026, 3, 2, 1, 0, 0, tzinfo=UTC)
CURSORS = FeedCursor.__table__
DEAD = DeadLetter.__table__
MAPPING = {"external_id": "id", "title": "summary", "grid": "gridCode", "received_at": "createdAt"}


def with_feeds(base: Deployment, feeds: list[dict[str, Any]]) -> Deployment:
    return Deployment.model_validate({**base.model_dump(), "feeds": feeds})


def feed(url: str, channel: str = "hotline", **kw: Any) -> dict[str, Any]:
    return {
        "channel": channel,
        "url": url,
        "interval": 10,
        "items_path": "data.items",
        "mapping": MAPPING,
        "timeout": 2,
        **kw,
    }


def item(i: int, **kw: Any) -> dict[str, Any]:
    return {
        "id": i,
        "summary": f"Report {i}",
        "gridCode": "W-1",
        "createdAt": "2026-03-02T08:59:00+08:00",
        "weather": "rain",
        **kw,
    }


class FakeFeed:
    """A paging JSON feed: answers the items with id above ?since=."""

    def __init__(self, items: list[Any] | None = None) -> None:
        self.items: list[Any] = items or []
        self.seen: list[str | None] = []
        self.lock = threading.Lock()

    def __call__(self, req: Request) -> Response:
        since = req.args.get("since")
        with self.lock:
            self.seen.append(since)
            out = [
                x
                for x in self.items
                if since is None or not isinstance(x, dict) or int(x.get("id", 0)) > int(since)
            ]
        body = {"code": 0, "data": {"items": out}}
        return Response(json.dumps(body), content_type="application/json")


def open_store(url: str, d: Deployment) -> Store:
    return Store(make_engine(url), d)


def cursor_row(store: Store, name: str = "hotline") -> Any:
    with store.engine.connect() as conn:
        return conn.execute(select(CURSORS).where(CURSORS.c.feed == name)).one()


def test_items_become_cases_and_the_cursor_is_stored(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    src = FakeFeed([item(1), item(2), item(3)])
    httpserver.expect_request("/feed").respond_with_handler(src)
    d = with_feeds(tiny, [feed(httpserver.url_for("/feed"))])
    store = open_store(sqlite_url, d)

    report = poll_due(store, d, now=T0)

    (r,) = report.feeds
    assert (r.ok, r.fetched, r.accepted, r.rejected, r.cursor) == (True, 3, 3, 0, "3")
    cases = store.cases("all")
    assert [(c.source, c.external_id, c.title) for c in cases] == [
        ("hotline", "1", "Report 1"),
        ("hotline", "2", "Report 2"),
        ("hotline", "3", "Report 3"),
    ]
    assert cases[0].grid == "99123401000101" and not cases[0].triage
    row = cursor_row(store)
    assert (row.cursor, row.failures, row.last_error) == ("3", 0, "")
    assert row.next_poll_at == T0 + timedelta(seconds=10)
    assert src.seen == [None]

    assert poll_due(store, d, now=T0 + timedelta(seconds=5)).feeds == ()
    again = poll_due(store, d, now=T0 + timedelta(seconds=10))
    assert again.feeds[0].fetched == 0 and src.seen == [None, "3"]


def test_restart_neither_loses_nor_repeats(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    src = FakeFeed([item(1), item(2), item(3)])
    httpserver.expect_request("/feed").respond_with_handler(src)
    d = with_feeds(tiny, [feed(httpserver.url_for("/feed"))])
    store = open_store(sqlite_url, d)
    poll_due(store, d, now=T0)
    store.engine.dispose()

    src.items += [item(4), item(5)]
    store = open_store(sqlite_url, d)  # a restarted daemon on the same file
    r = poll_due(store, d, now=T0 + timedelta(seconds=10)).feeds[0]
    assert src.seen[-1] == "3"
    assert (r.accepted, r.duplicate, r.cursor) == (2, 0, "5")

    # A crash after intake committed but before the cursor moved: the page comes again,
    # and intake drops it as duplicates.
    with store.engine.begin() as conn:
        conn.execute(update(CURSORS).values(cursor="3"))
    r = poll_due(store, d, now=T0 + timedelta(seconds=20)).feeds[0]
    assert (r.accepted, r.duplicate, r.cursor) == (0, 2, "5")
    ids = [c.external_id for c in store.cases("all")]
    assert ids == ["1", "2", "3", "4", "5"]


def test_garbage_json_backs_off_while_another_feed_goes_on(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    good = FakeFeed([item(1)])
    bad_calls: list[int] = []

    def garbage(_req: Request) -> Response:
        bad_calls.append(1)
        return Response("<html>502 upstream</html>", content_type="text/html")

    httpserver.expect_request("/good").respond_with_handler(good)
    httpserver.expect_request("/bad").respond_with_handler(garbage)
    d = with_feeds(
        tiny,
        [
            feed(httpserver.url_for("/bad"), channel="hotline"),
            feed(httpserver.url_for("/good"), channel="front_desk"),
        ],
    )
    store = open_store(sqlite_url, d)

    rep = poll_due(store, d, now=T0)

    by = {f.feed: f for f in rep.feeds}
    assert by["front_desk"].ok and by["front_desk"].accepted == 1
    assert not by["hotline"].ok and "not JSON" in by["hotline"].error
    bad = cursor_row(store, "hotline")
    assert (bad.failures, bad.cursor) == (1, "")
    assert "not JSON" in bad.last_error
    assert bad.next_poll_at == T0 + timedelta(seconds=20)

    poll_due(store, d, now=T0 + timedelta(seconds=10))  # good is due, bad is backing off
    assert len(good.seen) == 2 and len(bad_calls) == 1
    poll_due(store, d, now=T0 + timedelta(seconds=20))
    bad = cursor_row(store, "hotline")
    assert len(bad_calls) == 2 and bad.failures == 2
    assert bad.next_poll_at == T0 + timedelta(seconds=20 + 40)
    status = {s["feed"]: s for s in feed_status(store, d)}
    assert status["hotline"]["failures"] == 2 and status["front_desk"]["failures"] == 0

    # The feed recovers: failures reset, polling back to its interval.
    httpserver.clear()
    httpserver.expect_request("/bad").respond_with_handler(FakeFeed([item(7)]))
    httpserver.expect_request("/good").respond_with_handler(good)
    r = {f.feed: f for f in poll_due(store, d, now=T0 + timedelta(seconds=60)).feeds}
    assert r["hotline"].ok and r["hotline"].accepted == 1
    assert cursor_row(store, "hotline").failures == 0


@pytest.mark.parametrize(
    ("answer", "expect"),
    [
        (Response("oops", status=500), "HTTP 500"),
        (Response('{"data": {}}', content_type="application/json"), "no 'data.items'"),
        (Response('{"data": {"items": {"a": 1}}}', content_type="application/json"), "not a list"),
        (Response("[1, 2", content_type="application/json"), "not JSON"),
    ],
)
def test_failing_answers_are_recorded(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str, answer: Response, expect: str
) -> None:
    httpserver.expect_request("/feed").respond_with_response(answer)
    d = with_feeds(tiny, [feed(httpserver.url_for("/feed"))])
    store = open_store(sqlite_url, d)

    r = poll_due(store, d, now=T0).feeds[0]

    assert not r.ok and expect in r.error
    assert expect in cursor_row(store).last_error
    assert store.cases("all") == []


def test_refused_and_timeout_are_failures_with_the_secret_hidden(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    def slow(_req: Request) -> Response:
        threading.Event().wait(0.6)
        return Response("[]", content_type="application/json")

    httpserver.expect_request("/slow").respond_with_handler(slow)
    d = with_feeds(
        tiny,
        [
            feed("http://127.0.0.1:9/feed?apikey=s3cr3t-key", channel="hotline"),
            feed(
                httpserver.url_for("/slow") + "?apikey=s3cr3t-key",
                channel="front_desk",
                timeout=0.2,
            ),
        ],
    )
    store = open_store(sqlite_url, d)

    rep = poll_due(store, d, now=T0)

    by = {f.feed: f for f in rep.feeds}
    assert "ConnectError" in by["hotline"].error
    assert "Timeout" in by["front_desk"].error
    for name in ("hotline", "front_desk"):
        assert "s3cr3t-key" not in cursor_row(store, name).last_error
    assert all("s3cr3t" not in s["url"] for s in feed_status(store, d))


def test_items_that_cannot_be_cases_go_to_dead_letters(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    src = FakeFeed(
        [
            item(1),
            {"id": 2, "gridCode": "W-1"},
            "just a string",
            {"summary": "no id at all"},
            item(5, gridCode="nowhere"),
        ]
    )
    httpserver.expect_request("/feed").respond_with_handler(src)
    d = with_feeds(tiny, [feed(httpserver.url_for("/feed"))])
    store = open_store(sqlite_url, d)

    r = poll_due(store, d, now=T0).feeds[0]

    assert (r.accepted, r.rejected, r.cursor) == (2, 3, "5")
    with store.engine.connect() as conn:
        dead = conn.execute(select(DEAD).order_by(DEAD.c.id)).all()
    assert [d.origin for d in dead] == ["feed:hotline"] * 3
    assert [d.line_no for d in dead] == [2, 3, 4]
    assert "title" in dead[0].reason
    assert "not a JSON object" in dead[1].reason
    assert "external_id" in dead[2].reason
    flagged = {c.external_id: c for c in store.cases("all")}
    assert flagged["5"].triage and "unknown grid" in flagged["5"].triage_reason


def test_map_item_renames_keeps_unknown_and_defaults_source() -> None:
    f = Feed(
        channel="ping_an",
        url="http://x",
        mapping={"title": "summary", "grid": "loc.grid", "external_id": "eventNo"},
    )
    rec = map_item({"eventNo": 104.0, "summary": "s", "loc": {"grid": "N3-07"}, "x": 1}, f)
    assert rec == {
        "external_id": "104",
        "title": "s",
        "grid": "N3-07",
        "source": "ping_an",
        "loc": {"grid": "N3-07"},
        "x": 1,
    }
    assert map_item({"id": 7, "title": "t", "source": "hotline"}, f)["external_id"] == "7"
    assert map_item({"id": 7, "title": "t", "source": "hotline"}, f)["source"] == "hotline"
    assert map_item([1, 2], f) == [1, 2]
