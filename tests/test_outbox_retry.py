"""Issue 13.1: a notice is retried until delivered or given up by a person, never dropped.

Real HTTP receivers on 127.0.0.1 and a real store (SQLite file and PostgreSQL).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from tafang.sla.notify import NotifySettings, deliver_due
from tafang.sla.notify.alarm import raise_alarm
from tafang.sla.notify.settle import backoff
from tafang.store.cases import Actor, Refused, Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.models import AuditEntry
from tafang.store.notices import NoticeRefused, backlog, give_up, retry_now, undelivered
from tafang.store.record import verify
from werkzeug import Request, Response

from tests.test_notify import T0, deployment_with, put, rows

SUP = Actor("ops", "t1")  # tiny.toml's supervisor
NOBODY = Actor("x99", "t1")  # not on the roster
AUDIT = AuditEntry.__table__


def store_for(url: str, d: Deployment) -> Store:
    return Store(make_engine(url), d)


def grid_only(tiny: Deployment, url: str, **extra: Any) -> Deployment:
    return deployment_with(tiny, [{"level": "grid", "name": "W", "url": url, **extra}])


def test_a_notice_is_never_dropped_and_its_interval_is_capped(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    """Before: dead after 8 attempts (2 → 128 s), never retried when the receiver came back."""
    d = grid_only(tiny, httpserver.url_for("/h"))
    store = store_for(sqlite_url, d)
    put(store, "k500")
    httpserver.expect_request("/h").respond_with_data("boom", status=500)
    now = T0
    for attempt in range(1, 13):  # a long outage: more tries than the old cap of 8
        assert deliver_due(store, d, now=now).messages == 1, attempt
        row = rows(store)["k500"]
        assert (row.status, row.attempts) == ("pending", attempt)
        wait = (row.next_attempt_at - now).total_seconds()
        assert 0 < wait <= 300.0, (attempt, wait)
        now = row.next_attempt_at
    assert wait >= 0.8 * 300.0  # the cap is reached, not a shorter interval
    httpserver.clear()
    httpserver.expect_request("/h").respond_with_json({})
    assert deliver_due(store, d, now=now).sent == 1
    assert rows(store)["k500"].status == "sent"


def test_backoff_stays_within_the_cap_whatever_the_attempts() -> None:
    s = NotifySettings()
    waits = [backoff(n, s) for n in (1, 2, 9, 10, 100, 10_000) for _ in range(50)]
    assert max(waits) <= s.backoff_cap and min(waits) > 0


def test_rows_behind_the_first_failure_are_not_charged(
    tiny: Deployment, sqlite_url: str, httpserver: HTTPServer
) -> None:
    """Before: rows never posted (after an earlier failure in the batch) got an attempt."""
    d = grid_only(tiny, httpserver.url_for("/h"))
    store = store_for(sqlite_url, d)
    for k in ("k1", "k2", "k3"):
        put(store, k)
    httpserver.expect_request("/h").respond_with_data("down", status=503)
    report = deliver_due(store, d, now=T0)
    assert report.messages == 1 and len(httpserver.log) == 1
    r = rows(store)
    assert r["k1"].attempts == 1 and "HTTP 503" in r["k1"].last_error
    assert (r["k2"].attempts, r["k3"].attempts) == (0, 0)
    assert r["k2"].next_attempt_at == r["k3"].next_attempt_at == r["k1"].next_attempt_at
    assert r["k2"].last_error.startswith("not tried")
    httpserver.clear()
    httpserver.expect_request("/h").respond_with_json({})
    again = deliver_due(store, d, now=r["k1"].next_attempt_at)
    assert again.sent == 3
    assert [rows(store)[k].attempts for k in ("k1", "k2", "k3")] == [2, 1, 1]


def test_a_supervisor_gives_up_on_a_notice_with_a_reason_on_the_record(
    store: Store, tiny: Deployment, httpserver: HTTPServer
) -> None:
    d = grid_only(tiny, httpserver.url_for("/h"))
    s = Store(store.engine, d)
    put(s, "kgone")
    put(s, "kkeep", now=T0 + timedelta(seconds=5))
    httpserver.expect_request("/h").respond_with_data("no", status=500)
    deliver_due(s, d, now=T0)
    listed = undelivered(s)
    assert [n.key for n in listed] == ["kgone", "kkeep"] and listed[0].kind == "escalation"
    assert backlog(s).count == 2 and backlog(s).oldest == T0
    gone = listed[0]
    with pytest.raises(Refused):
        give_up(s, gone.id, NOBODY, "robot removed", T0)  # off the roster: refused
    with pytest.raises(NoticeRefused, match="reason"):
        give_up(s, gone.id, SUP, "  ", T0)
    give_up(s, gone.id, SUP, "group dissolved; phoned the duty lead", T0 + timedelta(minutes=1))
    with pytest.raises(NoticeRefused, match="no undelivered notice"):
        give_up(s, gone.id, SUP, "again", T0)
    row = rows(s)["kgone"]
    assert (row.status, row.given_up_by) == ("given_up", "ops")
    assert row.give_up_reason == "group dissolved; phoned the duty lead"
    with s.engine.connect() as conn:
        entry = conn.execute(select(AUDIT).order_by(AUDIT.c.seq.desc()).limit(1)).one()
    assert (entry.action, entry.operator) == ("outbox_give_up", "ops")
    detail = json.loads(entry.detail)
    assert (detail["key"], detail["case"], detail["notice"]) == ("kgone", 1043, gone.id)
    assert "phoned" in detail["reason"]
    assert verify(s.engine).ok
    # Retry now: the other one is due at once; the given-up one is never sent.
    later = T0 + timedelta(seconds=3)
    retry_now(s, listed[1].id, SUP, later)
    httpserver.clear()
    httpserver.expect_request("/h").respond_with_json({})
    assert deliver_due(s, d, now=later).sent == 1
    assert [r.get_json()["key"] for r, _ in httpserver.log] == ["kkeep"]
    assert backlog(s).count == 0 and undelivered(s) == []


def test_notices_stuck_too_long_alarm_the_centre_once_through_another_contact(
    tiny: Deployment, sqlite_url: str, httpserver: HTTPServer
) -> None:
    d = deployment_with(tiny, [{"level": "grid", "name": "W", "url": httpserver.url_for("/robot")}])
    d = Deployment.model_validate(
        {
            **d.model_dump(),
            "notices": {
                "alarm_after_minutes": 10,
                "alarm": {"level": "centre", "name": "值班手机", "url": httpserver.url_for("/sms")},
            },
        }
    )
    store = store_for(sqlite_url, d)
    put(store, "k1")
    put(store, "k2", now=T0 + timedelta(minutes=1))
    httpserver.expect_request("/robot").respond_with_data("down", status=502)
    httpserver.expect_request("/sms").respond_with_json({})
    assert raise_alarm(store, d, T0 + timedelta(minutes=9)) is None  # not yet
    key = raise_alarm(store, d, T0 + timedelta(minutes=10, seconds=1))
    assert key is not None
    assert raise_alarm(store, d, T0 + timedelta(minutes=12)) == key  # the same episode
    alarms = [r for r in rows(store).values() if r.contact == "alarm"]
    assert len(alarms) == 1
    deliver_due(store, d, now=T0 + timedelta(minutes=12))
    sms = [r.get_json() for r, _ in httpserver.log if r.path == "/sms"]
    assert len(sms) == 1 and sms[0]["kind"] == "outbox_stuck" and sms[0]["count"] == 1
    assert "未送达" in sms[0]["title"]
    assert rows(store)[key].status == "sent"
    # The alarm itself never counts as stuck.
    assert raise_alarm(store, d, T0 + timedelta(hours=5)) == key


@pytest.mark.slow  # a receiver that hangs: real request deadlines
def test_a_receiver_that_hangs_then_comes_back_gets_every_notice(
    tiny: Deployment, sqlite_url: str, httpserver: HTTPServer
) -> None:
    """The issue's run, shortened by the clock: 500s, then hanging, then back; none lost."""
    d = grid_only(tiny, httpserver.url_for("/h"))
    store = store_for(sqlite_url, d)
    s = NotifySettings(request_deadline=0.3, read_timeout=0.2, return_after=5.0)
    mode = {"now": "500"}

    def handler(req: Request) -> Response:
        if mode["now"] == "hang":
            import time

            time.sleep(0.5)
        if mode["now"] != "up":
            return Response("no", status=500)
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/h").respond_with_handler(handler)
    now = T0
    for i in range(24):
        put(store, f"n{i}", now=now)
        now += timedelta(seconds=6)
        if i == 16:
            mode["now"] = "hang"
        deliver_due(store, d, now=now, settings=s)
    mode["now"] = "up"
    for _ in range(20):
        now += timedelta(seconds=300)
        deliver_due(store, d, now=now, settings=s)
        if {r.status for r in rows(store).values()} == {"sent"}:
            break
    assert {r.status for r in rows(store).values()} == {"sent"}


def test_migration_0009_puts_dead_notices_back_and_downgrades(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Notices an older version left `dead` are due again after the upgrade."""
    from alembic import command
    from sqlalchemy import create_engine, text
    from tafang.store.db import alembic_config

    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0008")
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO outbox (key, contact, payload, status, attempts, next_attempt_at,"
                " last_error, created_at) VALUES ('old', 'grid', '{}', 'dead', 8,"
                " '2026-01-01 00:00:00', 'HTTP 500', '2026-01-01 00:00:00')"
            )
        )
    command.upgrade(cfg, "0009")
    with engine.connect() as c:
        row = c.execute(text("SELECT status, given_up_at FROM outbox")).one()
    assert (row.status, row.given_up_at) == ("pending", None)
    command.downgrade(cfg, "0008")
    with engine.connect() as c:
        cols = [r[1] for r in c.execute(text("PRAGMA table_info(outbox)"))]
    assert "given_up_at" not in cols
    engine.dispose()
