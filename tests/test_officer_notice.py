"""Telling the officer: dispatch, reassign, rework and escalation reach the squad's robot
(a real HTTP server on 127.0.0.1) with the officer @-mentioned by mobile; escalation contacts
per circle, named in the message. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from tafang.sla.notify import deliver_due
from tafang.sla.policy import Policy
from tafang.store.cases import Actor, Store, utcnow
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.models import Outbox

DISPATCHER = Actor("d01", "test")
CHECKER = Actor("c01", "test")
GRID = "33010600700801"  # N1-01, enforcement circle E-N1
MOBILE_103 = "13800000103"
MOBILE_201 = "13900000201"
MOBILE_LEADER = "13800000101"  # 1-01, the leader of squad 1


def deployment(base: Deployment, url: str) -> Deployment:
    data = base.model_dump()
    sq1, sq2 = data["squads"][0], data["squads"][1]
    sq1["robot"] = {"name": "一中队群", "url": f"{url}/sq1", "format": "dingtalk"}
    sq2["robot"] = {"name": "二中队群", "url": f"{url}/sq2", "format": "wecom", "key_env": "T_SQ2"}
    next(o for o in sq1["officers"] if o["code"] == "1-03")["mobile"] = MOBILE_103
    next(o for o in sq1["officers"] if o["code"] == "1-01")["mobile"] = MOBILE_LEADER
    sq2["officers"][0]["mobile"] = MOBILE_201
    data["contacts"] = [
        {"level": "enforcement", "name": "执法圈值班", "url": f"{url}/enf"},
        {
            "level": "enforcement",
            "circle": "E-N1",
            "name": "北一执法圈值班",
            "url": f"{url}/en1",
            "format": "dingtalk",
        },
    ]
    return Deployment.model_validate(data)


@pytest.fixture
def told(
    db_url: str, gudang: Deployment, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Store, Deployment]]:
    monkeypatch.setenv("T_SQ2", "wecom-key")
    d = deployment(gudang, httpserver.url_for("").rstrip("/"))
    engine = make_engine(db_url)
    yield Store(engine, d, clocks=Policy(d)), d
    engine.dispose()


def received(httpserver: HTTPServer, path: str) -> list[dict[str, Any]]:
    return [json.loads(r.get_data()) for r, _ in httpserver.log if r.path == path]


def deliver(store: Store, d: Deployment, httpserver: HTTPServer) -> None:
    for p in ("/sq1", "/sq2", "/enf", "/en1"):
        httpserver.expect_request(p, method="POST").respond_with_json({"errcode": 0})
    deliver_due(store, d, now=utcnow())


def test_dispatch_reassign_rework_tell_the_officer(
    told: tuple[Store, Deployment], httpserver: HTTPServer
) -> None:
    store, d = told
    c = store.create({"title": "占道经营", "grid": GRID, "category": "0101"}, DISPATCHER)
    store.act(c.id, "dispatch", DISPATCHER, to="1-03")
    deliver(store, d, httpserver)
    [msg] = received(httpserver, "/sq1")
    assert msg["at"]["atMobiles"] == [MOBILE_103]
    text = msg["text"]["content"]
    assert f"【派遣】案件 #{c.id} 占道经营" in text
    assert "1-03" in text and "N1-01" in text and "0101" in text
    assert "时限：" in text and f"@{MOBILE_103}" in text

    store.act(c.id, "reassign", DISPATCHER, to="2-01")
    deliver(store, d, httpserver)
    [wecom] = received(httpserver, "/sq2")
    assert wecom["text"]["mentioned_mobile_list"] == [MOBILE_201]
    assert "【改派】" in wecom["text"]["content"]

    store.act(c.id, "arrive", DISPATCHER)
    store.act(c.id, "handle", DISPATCHER)
    store.act(c.id, "rework", CHECKER, reason="未清理干净")
    deliver(store, d, httpserver)
    [_, rework] = received(httpserver, "/sq2")
    assert "【返工】" in rework["text"]["content"] and "未清理干净" in rework["text"]["content"]
    with store.engine.connect() as conn:
        rows = conn.execute(select(Outbox.__table__.c.contact, Outbox.__table__.c.status)).all()
    assert sorted(rows) == [("squad:sq1", "sent"), ("squad:sq2", "sent"), ("squad:sq2", "sent")]


def test_escalation_goes_to_the_circles_contact_and_tells_the_officer(
    told: tuple[Store, Deployment], httpserver: HTTPServer
) -> None:
    store, d = told
    c = store.create({"title": "路面塌陷", "grid": GRID, "category": "0101"}, DISPATCHER)
    store.act(c.id, "dispatch", DISPATCHER, to="1-03")
    store.act(c.id, "escalate", DISPATCHER, reason="现场需要支援")
    deliver(store, d, httpserver)
    [circle] = received(httpserver, "/en1")
    text = circle["text"]["content"]
    assert "北一执法圈值班" in text and "所在圈：" in text
    name = next(x.name for x in d.tower.enforcement_circles if x.code == "E-N1")
    assert f"所在圈：{name}" in text
    assert received(httpserver, "/enf") == []  # the level's general contact is not told
    escalated = received(httpserver, "/sq1")[-1]
    assert "【上报】" in escalated["text"]["content"]
    assert escalated["at"]["atMobiles"] == [MOBILE_103]


def test_a_squad_without_robot_is_not_queued(db_url: str, gudang: Deployment) -> None:
    engine = make_engine(db_url)
    store = Store(engine, gudang, clocks=Policy(gudang))
    c = store.create({"title": "x", "grid": GRID}, DISPATCHER)
    store.act(c.id, "dispatch", DISPATCHER, to="1-03")
    with engine.connect() as conn:
        assert conn.execute(select(Outbox.__table__.c.id)).all() == []
    engine.dispose()


def test_a_request_for_support_tells_the_squad_and_its_leader(
    told: tuple[Store, Deployment], httpserver: HTTPServer
) -> None:
    store, d = told
    c = store.create({"title": "群体聚集", "grid": GRID}, DISPATCHER)
    store.act(c.id, "dispatch", DISPATCHER, to="sq1")
    store.act(c.id, "support", Actor("1-03", "app", field=True), reason="人手不足")
    deliver(store, d, httpserver)
    [_dispatch, msg] = received(httpserver, "/sq1")
    assert msg["at"]["atMobiles"] == [MOBILE_LEADER]
    assert "【请求支援】" in msg["text"]["content"] and "1-03" in msg["text"]["content"]


def test_the_sweeps_escalation_tells_the_officer_once(
    told: tuple[Store, Deployment], httpserver: HTTPServer
) -> None:
    from datetime import timedelta

    from tafang.sla.escalate import sweep

    store, d = told
    t0 = utcnow() - timedelta(hours=1)
    c = store.create({"title": "井盖缺失", "grid": GRID}, DISPATCHER, now=t0)
    store.act(c.id, "dispatch", DISPATCHER, to="1-03", now=t0)  # arrival clock breached since
    policy = Policy(d)
    done = sweep(store, policy, utcnow())
    assert [r.case_id for r in done] == [c.id]
    sweep(store, policy, utcnow())  # nothing new is due: no second notice
    with store.engine.connect() as conn:
        q = select(Outbox.__table__.c.contact, Outbox.__table__.c.payload)
        rows = [(contact, json.loads(p)) for contact, p in conn.execute(q)]
    told_rows = [ev for contact, ev in rows if contact == "squad:sq1"]
    assert [ev["kind"] for ev in told_rows] == ["dispatch", "escalation_told"]
    last = told_rows[-1]
    assert last["mention"] == [MOBILE_103] and last["level"] == done[0].level
    assert last["circle"] == d.circle_at(done[0].level, GRID)


def test_a_case_sent_to_a_squad_tells_the_squad_with_its_leaders(
    told: tuple[Store, Deployment], httpserver: HTTPServer
) -> None:
    store, d = told
    c = store.create({"title": "夜间施工", "grid": GRID}, DISPATCHER)
    store.act(c.id, "dispatch", DISPATCHER, to="sq1")
    deliver(store, d, httpserver)
    [msg] = received(httpserver, "/sq1")
    assert msg["at"]["atMobiles"] == [MOBILE_LEADER]
    assert "【派遣】" in msg["text"]["content"] and "一中队" in msg["text"]["content"]
