"""PostgreSQL holds the line: each operator's own SQL session (psycopg, as their login role)
cannot rewrite the record, act as someone else, close its own case or write what its group
role may not, whatever the application does. Real login roles on the real server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.exc import DBAPIError
from tafang.console.cli import main
from tafang.store.cases import Actor, Refused, Store
from tafang.store.config import Deployment, load_config
from tafang.store.db import make_engine
from tafang.store.identity import NotYou, grant, identify

from tests.conftest import roster_as

CODES = {"d01": "dispatcher", "s01": "supervisor", "c01": "checker", "v01": "viewer"}


def drop_logins(url: str, names: list[str]) -> None:
    """End the test logins' sessions and drop their roles (roles are cluster-wide)."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ANY(:n)"),
            {"n": names},
        )
        for n in names:
            c.execute(text(f'DROP ROLE IF EXISTS "{n}"'))
    admin.dispose()


@pytest.fixture
def logins(pg_url: str, tmp_path: Path) -> Iterator[dict[str, object]]:
    """Login roles (unique per test: roles are cluster-wide) for d01, s01, c01 and v01, on a
    roster that maps them, granted with `db grant`; dropped afterwards."""
    tag = uuid.uuid4().hex[:8]
    names = {code: f"t{tag}_{code}" for code in CODES}
    cfg = roster_as(tmp_path / "config.toml", names)
    dep = load_config(cfg)
    owner = make_engine(pg_url)
    Store(owner, dep).sync_roster()
    for code, role in CODES.items():
        assert grant(owner, dep, names[code], role) == code
    engines: list[Engine] = []

    def engine_as(code: str) -> Engine:
        e = create_engine(make_url(pg_url).set(username=names.get(code, code)))
        engines.append(e)
        return e

    try:
        yield {"dep": dep, "names": names, "as": engine_as, "owner": owner, "cfg": cfg}
    finally:
        for e in engines:
            e.dispose()
        owner.dispose()
        drop_logins(pg_url, list(names.values()))


def _handled_by_d01(store: Store) -> int:
    d01 = Actor("d01", "t1")
    cid = store.create({"title": "占道", "grid": store.d.tower.grids[0].code}, d01).id
    store.act(cid, "dispatch", d01, to="1-01")
    store.act(cid, "arrive", d01)
    store.act(cid, "handle", d01)
    return cid


def test_the_session_says_who_acts(logins: dict) -> None:
    dep: Deployment = logins["dep"]
    engine_as: Callable[[str], Engine] = logins["as"]
    me = identify(engine_as("d01"), dep)
    assert (me.operator, me.role, me.via) == ("d01", "dispatcher", "postgresql")
    with pytest.raises(NotYou, match="not you"):
        identify(engine_as("d01"), dep, "s01")


def test_a_dispatchers_own_sql_session_cannot_go_around_the_rules(logins: dict) -> None:
    dep: Deployment = logins["dep"]
    engine_as: Callable[[str], Engine] = logins["as"]
    store = Store(engine_as("d01"), dep)
    cid = _handled_by_d01(store)  # the app, as d01's login, works
    url = engine_as("d01").url.set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(url, autocommit=True) as conn:
        for sql in (
            "UPDATE audit SET operator = 'd02' WHERE case_id = %s",  # rewrite the record
            "DELETE FROM audit WHERE case_id = %s",
            "INSERT INTO escalations (case_id) VALUES (%s)",  # the daemon's alone
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql, (cid,))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="not s01"):
            conn.execute(  # act as someone else: a record entry under s01's name
                "INSERT INTO audit (seq, at, operator, terminal, action, case_id, detail, "
                "prev_hash, hash) VALUES (999999, now(), 's01', 'x', 'note', %s, '{}', '', '')",
                (cid,),
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="checker or supervisor"):
            conn.execute(  # close its own case behind the app's back
                "UPDATE cases SET status = 'closed', updated_by = 'd01' WHERE id = %s", (cid,)
            )
    assert store.get(cid).status == "handled"
    # Through the app under another name: the store lets s01 (a supervisor) note; the
    # database sees d01's session and refuses.
    with pytest.raises(DBAPIError, match="nobody acts as someone else"):
        store.act(cid, "note", Actor("s01", "t1"))
    store.engine.dispose()


def test_separation_holds_in_the_database_too(logins: dict) -> None:
    """s01 dispatched and handled the case: even as a supervisor, their session may not close
    it by hand; c01's session closes it through the app."""
    dep: Deployment = logins["dep"]
    engine_as: Callable[[str], Engine] = logins["as"]
    sup = Store(engine_as("s01"), dep)
    s01 = Actor("s01", "t9")
    cid = sup.create({"title": "噪声", "grid": dep.tower.grids[0].code}, s01).id
    for move, kw in (("dispatch", {"to": "1-01"}), ("arrive", {}), ("handle", {})):
        sup.act(cid, move, s01, **kw)
    with pytest.raises(Refused, match="监管分离"):
        sup.act(cid, "close", s01)
    with engine_as("s01").begin() as conn, pytest.raises(DBAPIError, match="监管分离"):
        conn.execute(
            text("UPDATE cases SET status = 'closed', updated_by = 's01' WHERE id = :i"),
            {"i": cid},
        )
    c = Store(engine_as("c01"), dep).act(cid, "close", Actor("c01", "t7"))
    assert c.status == "closed"


def test_a_viewer_reads_only(logins: dict) -> None:
    dep: Deployment = logins["dep"]
    engine_as: Callable[[str], Engine] = logins["as"]
    cid = _handled_by_d01(Store(engine_as("d01"), dep))
    viewer = engine_as("v01")
    with viewer.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit")).scalar_one() > 0
    with viewer.begin() as conn, pytest.raises(DBAPIError, match="permission denied"):
        conn.execute(text("UPDATE cases SET title = 'x' WHERE id = :i"), {"i": cid})


def test_a_login_granted_nothing_on_the_roster_is_refused_by_the_trigger(
    logins: dict, pg_url: str
) -> None:
    """A role someone made a dispatcher by hand, without `db grant` (no roster mapping)."""
    name = f"t{uuid.uuid4().hex[:8]}_stray"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE ROLE "{name}" LOGIN IN ROLE tafang_dispatcher'))
    try:
        stray = create_engine(make_url(pg_url).set(username=name))
        store = Store(stray, logins["dep"])
        with pytest.raises(Refused, match="not on the roster"):
            store.create({"title": "x"}, identify(stray, logins["dep"]).actor("t"))
        with pytest.raises(DBAPIError, match="not on the roster"):  # a script going around
            store.create({"title": "x"}, Actor("d01", "t"))
        stray.dispose()
    finally:
        admin.dispose()
        drop_logins(pg_url, [name])


def test_hostile_cli_calls_exit_1_with_a_reason(
    logins: dict, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TAFANG_OPERATOR", raising=False)
    engine_as: Callable[[str], Engine] = logins["as"]
    cid = str(_handled_by_d01(Store(engine_as("d01"), logins["dep"])))

    def run(code: str, *argv: str) -> tuple[int, str]:
        url = engine_as(code).url.render_as_string(False)
        rc = main(["--db", url, "--config", str(logins["cfg"]), *argv])
        return rc, capsys.readouterr().err

    rc, err = run("d01", "--operator", "s01", "case", "hold", cid, "-r", "owner away")
    assert rc == 1 and "is not you" in err
    rc, err = run("d01", "case", "close", cid)
    assert rc == 1 and "close needs a supervisor or checker" in err
    rc, err = run("v01", "case", "note", cid)
    assert rc == 1 and "roles rule" in err
    rc, err = run("c01", "case", "close", cid)
    assert rc == 0, err


def test_db_grant_refuses_a_login_off_the_roster_or_a_role_the_roster_does_not_give(
    logins: dict, capsys: pytest.CaptureFixture[str], pg_url: str
) -> None:
    cfg = str(logins["cfg"])
    names = logins["names"]
    assert main(["--db", pg_url, "--config", cfg, "db", "grant", "mallory", "dispatcher"]) == 1
    assert 'login = "mallory"' in capsys.readouterr().err
    assert main(["--db", pg_url, "--config", cfg, "db", "grant", names["d01"], "admin"]) == 1
    assert "not a admin" in capsys.readouterr().err
    assert main(["--db", pg_url, "--config", cfg, "db", "grant", names["d01"], "dispatcher"]) == 0
    assert "acts as d01" in capsys.readouterr().out


def test_the_daemon_login_escalates_and_a_dispatcher_login_may_not(
    logins: dict, pg_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The daemon's own role writes escalations and the outbox (the sweep and `daemon --once`
    as that login); a dispatcher's session may not write escalations."""
    from datetime import UTC, datetime, timedelta

    from tafang.sla.escalate import sweep
    from tafang.sla.policy import Policy

    dep: Deployment = logins["dep"]
    name = f"t{uuid.uuid4().hex[:8]}_daemon"
    assert grant(logins["owner"], dep, name, "daemon") == "daemon"
    daemon = create_engine(make_url(pg_url).set(username=name))
    try:
        old = datetime.now(UTC) - timedelta(minutes=10)
        d01 = Store(logins["as"]("d01"), dep)
        cid = d01.create(
            {"title": "无人受理", "grid": dep.tower.grids[0].code}, Actor("d01", "t"), now=old
        ).id
        with pytest.raises(DBAPIError, match="permission denied"):
            sweep(d01, Policy(dep), datetime.now(UTC))
        res = sweep(Store(daemon, dep), Policy(dep), datetime.now(UTC))
        assert [r.case_id for r in res] == [cid]
        assert Store(daemon, dep).timeline(cid)[-1].operator == "daemon"
        url = daemon.url.render_as_string(False)
        rc = main(["--db", url, "--config", str(logins["cfg"]), "daemon", "--once"])
        assert rc == 0, capsys.readouterr().err
    finally:
        daemon.dispose()
        drop_logins(pg_url, [name])
