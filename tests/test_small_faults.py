"""The smaller faults of issue 13.5, each reproduced first: a disk-full ingest said nothing of
what it had committed; the default SQLite store was world-readable; a read-only command on a
missing store created the directory and a database; the Markdown report passed `<script>` and
`[a](javascript:…)` from a feed through raw. Also the date and id edges of the command line.
The CLI runs in this process on a real SQLite file (tests/test_scripting.py `tafang`); the full
disk is a real tmpfs mounted by the test (root only, else skipped)."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import text
from tafang.store.db import make_engine, stored_revision

from tests.conftest import fresh_pg_url, require_pg
from tests.test_scripting import REC, tafang

HOSTILE_SOURCE = "[a](javascript:alert(1))<script>x</script>"


def _lines(tmp_path: Path, recs: list[dict[str, object]], name: str = "in.jsonl") -> Path:
    f = tmp_path / name
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs), "utf-8")
    return f


# ---- the Markdown report ----------------------------------------------------------------------
def test_the_markdown_report_shows_feed_text_literally(tmp_path: Path) -> None:
    rec = {**REC, "source": HOSTILE_SOURCE, "received_at": "2026-11-25T09:00:00+08:00"}
    assert tafang(tmp_path, "ingest", str(_lines(tmp_path, [rec])))[0] == 0
    code, out, err = tafang(tmp_path, "report", "daily", "--date", "2026-11-25")
    assert code == 0, err
    assert "javascript" in out  # the channel is there, as text
    assert "<script" not in out and "</script" not in out
    assert "](javascript" not in out and re.search(r"(?<!\\)\[a(?<!\\)\]", out) is None
    assert "&lt;script&gt;" in out and "\\[a\\]\\(javascript:alert\\(1\\)\\)" in out


# ---- read-only commands create nothing ------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["case", "show", "1"],
        ["cases"],
        ["report", "daily"],
        ["audit", "verify"],
        ["outbox"],
        ["inspection", "list"],
        ["risk", "due"],
        ["handover"],
    ],
    ids=lambda a: "-".join(a),
)
def test_a_read_only_command_on_a_missing_store_creates_nothing(
    tmp_path: Path, argv: list[str]
) -> None:
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    code, _, err = tafang(tmp_path, "--db", str(missing), *argv)
    assert code == 2, err
    assert f"no store at {missing}" in err and "tafang db upgrade" in err
    assert not (tmp_path / "nonexistent").exists()


def test_a_store_that_is_not_tafangs_is_a_usage_error_not_worth_retrying(tmp_path: Path) -> None:
    """A directory, a file that is no database, someone else's SQLite file: exit 2 saying so.
    Exit 3 means "unreachable, try again" and systemd restarts on it, forever."""
    import sqlite3

    folder = tmp_path / "folder"
    folder.mkdir()
    junk = tmp_path / "junk.bin"
    junk.write_bytes(os.urandom(4096))
    foreign = tmp_path / "foreign.db"
    with sqlite3.connect(foreign) as con:
        con.execute("CREATE TABLE cases (x)")
    recs = _lines(tmp_path, [REC])
    for path, argv in (
        (folder, ["cases"]),
        (junk, ["cases"]),
        (junk, ["db", "upgrade"]),
        (foreign, ["ingest", str(recs)]),
        (foreign, ["db", "upgrade"]),
    ):
        code, _, err = tafang(tmp_path, "--db", str(path), *argv)
        assert code == 2, (path, argv, err)
        assert f"{path} is not a Tafang store" in err and "sqlalche.me" not in err
    with sqlite3.connect(foreign) as con:  # left as it was
        assert [r[0] for r in con.execute("SELECT name FROM sqlite_master")] == ["cases"]


@pytest.mark.parametrize("opt", ["--db", "--config"])
def test_an_empty_store_or_config_option_is_a_usage_error(tmp_path: Path, opt: str) -> None:
    """`tafang --db "$DB" ingest` with DB unset must not write to the default store."""
    code, _, err = tafang(tmp_path, opt, "", "cases")
    assert code == 2 and f"argument {opt}: is empty" in err


def test_a_time_from_another_year_shows_its_year(tmp_path: Path) -> None:
    """`case show` gave month-day only: a feed's wrong year (2021, 1800) read as this year."""
    old = {**REC, "received_at": "2021-03-04T05:06:07+08:00"}
    assert tafang(tmp_path, "ingest", str(_lines(tmp_path, [old])))[0] == 0
    code, out, _ = tafang(tmp_path, "case", "show", "1")
    assert code == 0 and "2021-03-04 05:06:07" in out


@pytest.mark.parametrize("move", ["void", "hold", "supervise", "return"])
def test_a_move_without_its_reason_is_a_usage_error(tmp_path: Path, move: str) -> None:
    """Like a dispatch without --to: 2 (usage), not 1 (the store refused)."""
    assert tafang(tmp_path, "ingest", str(_lines(tmp_path, [REC])))[0] == 0
    code, _, err = tafang(tmp_path, "case", move, "1", "--reason", "  ")
    assert code == 2 and f"case {move} needs --reason" in err


def test_a_read_only_command_on_an_empty_database_does_not_migrate_it(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    code, _, err = tafang(tmp_path, "--db", str(empty), "cases")
    assert code == 2 and "no schema" in err
    engine = make_engine(f"sqlite:///{empty}", upgrade=False)
    with engine.connect() as conn:  # opened (the WAL header written), not migrated
        assert conn.execute(text("SELECT count(*) FROM sqlite_master")).scalar() == 0
    engine.dispose()


def test_a_read_only_command_on_a_postgresql_database_without_schema_makes_none(
    tmp_path: Path,
) -> None:
    require_pg()
    database = fresh_pg_url(migrated=False)
    url = next(database)
    try:
        code, _, err = tafang(tmp_path, "--db", url, "cases")
        assert code == 2 and "no schema" in err, err
        engine = make_engine(url, upgrade=False)
        assert stored_revision(engine) is None  # not migrated by a read
        engine.dispose()
    finally:
        next(database, None)


# ---- the default store is private --------------------------------------------------------------
def test_the_default_store_is_0600_in_a_0700_directory(tmp_path: Path) -> None:
    data = tmp_path / "xdg-data"
    os.environ["XDG_DATA_HOME"] = str(data)  # platformdirs' user data dir, for this call
    try:
        from tafang.store.db import default_url

        url = default_url()
        assert url.startswith(f"sqlite:///{data}")
        assert not data.exists()  # naming the store makes nothing
        engine = make_engine(url)
        with engine.begin() as conn:  # a write, so the WAL file exists beside it
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            files = sorted(p.name for p in (data / "tafang").iterdir())
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (data / "tafang").iterdir()}
        engine.dispose()
    finally:
        del os.environ["XDG_DATA_HOME"]
    assert "tafang.db" in files
    assert stat.S_IMODE((data / "tafang").stat().st_mode) == 0o700
    assert set(modes.values()) == {0o600}, modes  # the -wal and -shm too


def test_an_existing_store_keeps_its_mode(tmp_path: Path) -> None:
    f = tmp_path / "shared.db"
    make_engine(f"sqlite:///{f}").dispose()
    f.chmod(0o640)
    make_engine(f"sqlite:///{f}").dispose()
    assert stat.S_IMODE(f.stat().st_mode) == 0o640


# ---- dates and ids at the edges -----------------------------------------------------------------
@pytest.mark.parametrize(
    "argv",
    [
        ["report", "daily", "--date", "9999-12-31"],
        ["report", "monthly", "--date", "9999-12-31"],
        ["report", "weekly", "--date", "0001-01-01"],
        ["report", "range", "--from", "0001-01-01", "--to", "9999-12-31"],
        ["roster", "--date", "9999-12-31"],
        ["inspection", "report", "--from", "0001-01-01"],
        ["risk", "report", "--to", "9999-12-31"],
        ["partner", "report", "--from", "0001-01-02"],
        ["inspection", "done", "99999999999999999999"],
        ["inspection", "show", "9" * 5000],
        ["cases", "--limit", "99999999999999999999"],
    ],
    ids=lambda a: "-".join(x[:12] for x in a),
)
def test_edge_dates_and_ids_are_usage_errors(tmp_path: Path, argv: list[str]) -> None:
    assert tafang(tmp_path, "db", "upgrade")[0] == 0
    code, out, err = tafang(tmp_path, *argv)
    assert (code, out) == (2, ""), err
    assert "out of range" in err or "must be a" in err
    assert "Traceback" not in err


def test_the_widest_days_allowed_are_reports(tmp_path: Path) -> None:
    assert tafang(tmp_path, "db", "upgrade")[0] == 0
    for argv in (
        ["report", "monthly", "--date", "2999-12-31"],
        ["report", "weekly", "--date", "1900-01-01"],
        ["report", "range", "--from", "1900-01-01", "--to", "1900-01-31"],
        ["report", "range", "--from", "2999-12-01", "--to", "2999-12-31"],
    ):
        code, _, err = tafang(tmp_path, *argv)
        assert code == 0, (argv, err)


def test_a_nul_in_an_import_path_is_a_usage_error(tmp_path: Path) -> None:
    for argv in (["ingest", "in\x00.jsonl"], ["enterprise", "import", "in\x00.csv"]):
        code, _, err = tafang(tmp_path, *argv)
        assert code == 2 and "cannot read" in err, err


# ---- a full disk ------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 6 MiB filesystem (tmpfs), mounted for the test and unmounted after it."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    # A developer's machine without root skips; CI (root) must run it, as it does PostgreSQL.
    skip = pytest.fail if os.environ.get("CI") else pytest.skip
    if os.geteuid() != 0:
        skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True
    )
    if done.returncode != 0:
        skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.slow
def test_a_disk_full_ingest_says_what_it_committed(tmp_path: Path, small_disk: Path) -> None:
    db = small_disk / "t.db"
    recs = [{**REC, "external_id": f"PA-{i}", "description": "详情 " * 20} for i in range(40_000)]
    src = _lines(tmp_path, recs)
    code, out, err = tafang(tmp_path, "--db", str(db), "ingest", "--json", str(src))
    assert code == 3, err  # the store failed: worth retrying once there is room
    assert "database or disk is full" in err
    d = json.loads(out)
    assert 0 < d["accepted"] < len(recs) and d["accepted"] % 5000 == 0, d
    assert d["stopped_at_line"] == d["accepted"] + 1
    assert f"stopped at {src.name}:{d['stopped_at_line']}" in err
    engine = make_engine(f"sqlite:///{db}", upgrade=False)
    with engine.connect() as conn:  # exactly what the summary said, no half batch
        assert conn.execute(text("SELECT count(*) FROM cases")).scalar() == d["accepted"]
    engine.dispose()
