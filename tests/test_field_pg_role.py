"""PostgreSQL: `tafang serve` connects as a login of tafang_field (migration 0006), which may
write as any officer of the squads (the API authenticated them by key) or as `feed`, and as
nobody else; the API works through it end to end. Real login roles on the real server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import DBAPIError
from tafang.store.cases import Actor, Store
from tafang.store.config import load_config
from tafang.store.db import make_engine
from tafang.store.identity import grant

from tests.conftest import roster_as
from tests.test_field_api import Api, serve
from tests.test_pg_roles import drop_logins


@pytest.fixture
def field_store(pg_url: str, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    """(the owner's store, the store as a tafang_field login)."""
    login = f"t{uuid.uuid4().hex[:8]}_serve"
    dep = load_config(roster_as(tmp_path / "config.toml", {}))
    owner = make_engine(pg_url)
    Store(owner, dep).sync_roster()
    assert grant(owner, dep, login, "field") == "field"
    as_field = create_engine(make_url(pg_url).set(username=login))
    try:
        yield Store(owner, dep), Store(as_field, dep)
    finally:
        as_field.dispose()
        owner.dispose()
        drop_logins(pg_url, [login])


@pytest.fixture
def field_api(field_store: tuple[Store, Store]) -> Iterator[Api]:
    yield from serve(field_store[1])


def test_the_field_login_writes_as_officers_only(
    field_store: tuple[Store, Store], field_api: Api
) -> None:
    owner, field = field_store
    d01 = Actor("d01", "t")
    cid = owner.create({"title": "占道", "grid": owner.d.tower.grids[0].code}, d01).id
    owner.act(cid, "dispatch", d01, to="1-03")
    r = field_api.post(f"/cases/{cid}/arrive", {"lat": 30.2, "lon": 120.1})
    assert r.status_code == 200, r.text
    feed = field_api.post(
        "/intake", {"source": "12345", "external_id": "pg-1", "title": "推送"}, caller="feed:12345"
    )
    assert feed.status_code == 200, feed.text
    assert owner.get(cid).status == "on_scene"
    # Straight through the store as that login, a dispatcher's move is refused by the trigger.
    with pytest.raises(DBAPIError, match="nobody acts as someone else"):
        field.act(cid, "handle", d01)
    assert owner.get(cid).status == "on_scene"
