"""Issue 13.3: the record can be rewritten — each attack done as a database owner would, on
SQLite and PostgreSQL (as a superuser: migration 0004's triggers do not bind one), and
`tafang audit verify` exits 1 naming the entry or the case.

Attacks: (1) an entry's operator changed and the record re-chained; (2) the entries after an
anchor deleted (head rewound); (3) the cases table changed behind the record
(`UPDATE cases SET status='closed'` and friends); (4) the witness: a keyed record rewritten
as plain, a forged witness line. Honest records (plain, keyed, plain-then-keyed) verify.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from tafang.console.cli import main
from tafang.sla.policy import Policy
from tafang.sla.witness import WitnessState, send_anchor
from tafang.store.cases import Actor, Refused, Store
from tafang.store.config import Deployment, load_config
from tafang.store.db import make_engine
from tafang.store.intake.run import ingest
from tafang.store.record import digest, verify
from tafang.store.record_key import ENV, RecordKey, RecordKeyError, load_record_key
from tafang.store.replay import check_cases

ROOT = Path(__file__).resolve().parent.parent
D01 = Actor("d01", "term-1")
CHK = Actor("c01", "term-7")
T0 = datetime(2026, 11, 25, 0, 59, 58, tzinfo=UTC)
REC = {
    "source": "ping_an",
    "title": "共享单车堵塞消防通道",
    "category": "0590",
    "grid": "N1-01",
    "received_at": "2026-11-25T08:59:58+08:00",
}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    f = tmp_path / "record-key"
    f.write_text("9f" * 32 + "\n")
    f.chmod(0o600)
    return f


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI's environment: this store, the shipped deployment, no key unless a test sets
    one, and no systemd credentials."""
    monkeypatch.setenv("TAFANG_DB", db_url)
    monkeypatch.setenv("TAFANG_CONFIG", str(ROOT / "config.toml"))
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    return db_url


def _store(url: str, d: Deployment | None = None) -> Store:
    d = d or load_config(ROOT / "config.toml")
    return Store(make_engine(url), d, clocks=Policy(d))


def _life(store: Store, n: int = 3) -> list[int]:
    """n ingested cases, moves on them: one closed, one dispatched, one escalated by hand."""
    lines = [json.dumps({**REC, "external_id": f"A{i}"}) for i in range(n)]
    ingest(store, lines, origin="t.jsonl", actor=D01, now=T0, workers=0)
    with store.engine.connect() as c:
        ids = list(c.execute(text("SELECT id FROM cases ORDER BY id")).scalars())
    t = T0
    for action, kw in (("ack", {}), ("dispatch", {"to": "2-03"}), ("arrive", {}), ("handle", {})):
        t += timedelta(minutes=1)
        store.act(ids[0], action, D01, now=t, **kw)
    store.act(ids[0], "close", CHK, now=t + timedelta(minutes=1))
    store.act(ids[1], "dispatch", D01, to="1-02", now=t)
    store.act(ids[2], "escalate", D01, reason="拥堵", now=t)
    return ids


def _verify(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["audit", "verify", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _rechain(engine: Engine, seq: int, operator: str) -> None:
    """Attack 1: change entry `seq`'s operator and recompute the plain SHA-256 chain after
    it, head included — all a database owner without the key can do."""
    with engine.begin() as c:
        c.execute(text("UPDATE audit SET operator = :o WHERE seq = :s"), {"o": operator, "s": seq})
    with engine.begin() as c:
        from sqlalchemy import select
        from tafang.store.record import AUDIT

        rows = c.execute(select(AUDIT).where(AUDIT.c.seq >= seq).order_by(AUDIT.c.seq)).all()
        prev = c.execute(
            text("SELECT hash FROM audit WHERE seq = :s"), {"s": seq - 1}
        ).scalar_one_or_none()
        prev = prev or ""
        for r in rows:
            h = digest(r.seq, prev, r.at, r.operator, r.terminal, r.action, r.case_id, r.detail)
            c.execute(
                text("UPDATE audit SET prev_hash = :p, hash = :h WHERE seq = :s"),
                {"p": prev, "h": h, "s": r.seq},
            )
            prev = h
        c.execute(text("UPDATE audit_head SET hash = :h"), {"h": prev})


def _close_entry(engine: Engine) -> int:
    with engine.connect() as c:
        return c.execute(text("SELECT seq FROM audit WHERE action = 'close'")).scalar_one()


# ---- attack 1: an entry's operator changed, the record re-chained ---------------------------
def test_rechained_record_passes_a_plain_chain_and_says_so(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bug as filed, and what is left of it without a key: the chain verifies, and the
    output says a plain chain can be re-chained by whoever writes the database."""
    store = _store(env)
    _life(store)
    seq = _close_entry(store.engine)
    _rechain(store.engine, seq, "s01")
    assert verify(store.engine).ok  # a plain chain cannot tell
    code, out, _ = _verify(capsys=capsys)
    assert code == 0 and "plain SHA-256 chain, no record key" in out
    store.engine.dispose()


def test_rechained_record_is_caught_by_the_key(
    env: str, key_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(ENV, str(key_file))
    store = _store(env)
    _life(store)
    code, out, _ = _verify(capsys=capsys)
    assert code == 0 and "keyed from entry 1" in out
    seq = _close_entry(store.engine)
    _rechain(store.engine, seq, "s01")
    code, out, err = _verify("--json", capsys=capsys)
    assert code == 1
    assert f"entry {seq}" in err and "operator s01" in err and "MAC" in err
    d = json.loads(out)
    assert d["ok"] is False and d["broken"]["seq"] == seq and d["checked"] == seq - 1
    store.engine.dispose()


def test_moving_the_keyed_start_is_caught(
    env: str, key_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The owner moves `keyed_from` past the entry to pass the keyed part off as plain."""
    monkeypatch.setenv(ENV, str(key_file))
    store = _store(env)
    _life(store)
    seq = _close_entry(store.engine)
    with store.engine.begin() as c:
        c.execute(text("UPDATE audit_head SET keyed_from = 100000"))
    _rechain(store.engine, seq, "s01")
    code, _, err = _verify(capsys=capsys)
    assert code == 1 and "entry 1" in err and "mark" in err
    store.engine.dispose()


# ---- the key: where it comes from, the migration point, refusals ----------------------------
def test_plain_entries_before_the_key_still_verify(
    env: str, key_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = _store(env)
    ids = _life(plain)
    with plain.engine.connect() as c:
        before = c.execute(text("SELECT seq FROM audit_head")).scalar_one()
    plain.engine.dispose()
    monkeypatch.setenv(ENV, str(key_file))
    keyed = _store(env)
    keyed.act(ids[1], "arrive", D01, now=T0 + timedelta(hours=1))
    assert verify(keyed.engine, key=keyed.record_key).keyed_from == before + 1
    code, out, _ = _verify(capsys=capsys)
    assert code == 0 and f"keyed from entry {before + 1}" in out
    # Without the key: no write (no plain hole in a keyed record), and no verdict (exit 2).
    monkeypatch.delenv(ENV)
    keyless = _store(env)
    with pytest.raises(Refused, match="no record key"):
        keyless.act(ids[1], "handle", D01, now=T0 + timedelta(hours=2))
    code, _, err = _verify(capsys=capsys)
    assert code == 2 and "record key" in err
    # Another key: refused too, naming both ids.
    other = key_file.parent / "other-key"
    other.write_text("ab" * 32)
    monkeypatch.setenv(ENV, str(other))
    with pytest.raises(Refused, match="is not this record's"):
        _store(env).act(ids[1], "handle", D01, now=T0 + timedelta(hours=2))
    other.write_text("short")  # a key too short to be one: exit 2, the file named
    code, _, err = _verify(capsys=capsys)
    assert code == 2 and "at least 16" in err and str(other) in err
    keyed.engine.dispose()


def test_key_sources_and_a_short_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    assert load_record_key(None) is None
    cfg = tmp_path / "cfg-key"
    cfg.write_bytes(b"c" * 32)
    assert load_record_key(str(cfg)).id == RecordKey(b"c" * 32).id
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "record-key").write_bytes(b"s" * 32 + b"\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    assert load_record_key(str(cfg)).id == RecordKey(b"s" * 32).id  # the credential wins
    envf = tmp_path / "env-key"
    envf.write_bytes(b"e" * 32)
    monkeypatch.setenv(ENV, str(envf))
    got = load_record_key(str(cfg))
    assert got.id == RecordKey(b"e" * 32).id and ENV in got.source  # the environment wins
    assert "e" * 32 not in repr(got)
    envf.write_bytes(b"short")
    with pytest.raises(RecordKeyError, match="at least 16"):
        load_record_key(None)
    import hmac

    k = RecordKey(b"k" * 40)
    assert k.mac(b"body") == hmac.new(b"k" * 40, b"body", "sha256").hexdigest()


# ---- attack 2: the entries after an anchor deleted -----------------------------------------
def _cut_after(engine: Engine, seq: int) -> None:
    with engine.begin() as c:
        h = c.execute(text("SELECT hash FROM audit WHERE seq = :s"), {"s": seq}).scalar_one()
        c.execute(text("DELETE FROM audit WHERE seq > :s"), {"s": seq})
        c.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": seq, "h": h})


def test_entries_cut_after_an_anchor_are_caught_by_a_later_witness(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(env)
    ids = _life(store)
    state = WitnessState()
    witness = tmp_path / "witness.jsonl"
    d = store.d.model_copy(
        update={"record": store.d.record.model_copy(update={"witness_file": str(witness)})}
    )
    wstore = Store(store.engine, d, clocks=store.clocks)
    early = send_anchor(wstore, T0, state)
    store.act(ids[1], "arrive", D01, now=T0 + timedelta(hours=1))
    store.act(ids[1], "handle", D01, now=T0 + timedelta(hours=2))
    late = send_anchor(wstore, T0 + timedelta(hours=3), state)
    assert early and late and late.seq == early.seq + 2
    assert len(witness.read_text().splitlines()) == 2
    assert _verify("--witness", str(witness), capsys=capsys)[0] == 0
    _cut_after(store.engine, early.seq)
    anchor = f"{early.seq}:{early.mac}"
    assert _verify("--anchor", anchor, "--chain-only", capsys=capsys)[0] == 0  # the bug
    code, out, err = _verify("--anchor", anchor, "--witness", str(witness), "--json", capsys=capsys)
    assert code == 1
    missing = f"entries {early.seq + 1}..{late.seq} are missing"
    assert missing in err and json.loads(out)["witness"]["ok"] is False
    store.engine.dispose()


# ---- attack 3: the cases table changed behind the record ------------------------------------
ATTACKS = [
    ("UPDATE cases SET status = 'closed' WHERE id = :b", "status", 1),
    ("UPDATE cases SET assignee = '1-01' WHERE id = :b", "assignee", 1),
    ("UPDATE cases SET escalation_level = 0 WHERE id = :c", "escalation_level", 2),
    ("UPDATE cases SET closed_at = NULL WHERE id = :a", "closed_at", 0),
    ("UPDATE cases SET supervised = TRUE WHERE id = :a", "supervised", 0),
    ("DELETE FROM cases WHERE id = :b", "", 1),
]


@pytest.mark.parametrize(
    ("sql", "field", "victim"), ATTACKS, ids=[a[1] or "delete" for a in ATTACKS]
)
def test_cases_changed_behind_the_record_are_named(
    env: str, sql: str, field: str, victim: int, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(env)
    ids = _life(store)
    assert check_cases(store.engine).ok
    with store.engine.begin() as c:
        c.execute(text(sql), dict(zip("abc", ids, strict=True)))
    code, out, err = _verify("--json", capsys=capsys)
    cid = ids[victim]
    assert code == 1 and f"case {cid}" in err
    broken = json.loads(out)["broken"]
    assert broken["case"] == cid and broken["field"] == (field or None)
    if field:
        assert f"{field} is" in err
    else:
        assert "missing from the cases table" in err
    store.engine.dispose()


def test_a_case_inserted_without_the_record_is_named(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _store(env)
    ids = _life(store)
    with store.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO cases (id, source, external_id, title, description, location, "
                "priority, reporter, received_at, raw, triage, triage_reason, status, "
                "escalation_level, supervised, version, updated_at, updated_by, "
                "updated_terminal, updated_seq) SELECT :n, source, 'FAKE', title, description, "
                "location, priority, reporter, received_at, raw, triage, triage_reason, "
                "'closed', 0, supervised, 1, updated_at, updated_by, updated_terminal, "
                "updated_seq FROM cases WHERE id = :a"
            ),
            {"n": ids[-1] + 10, "a": ids[0]},
        )
    code, _, err = _verify(capsys=capsys)
    assert code == 1 and f"case {ids[-1] + 10}" in err and "no record entry created it" in err
    store.engine.dispose()


def test_honest_lives_replay_clean(store: Store) -> None:
    """Every move of the registry that a life can take, replayed equal to the table."""
    ids = _life(store, 4)
    t = T0 + timedelta(hours=1)
    store.act(ids[0], "reopen", store_sup(), reason="复查不合格", now=t)
    store.act(ids[1], "arrive", D01, now=t)
    store.act(ids[1], "handle", D01, now=t + timedelta(minutes=1))
    store.act(ids[1], "rework", CHK, reason="未清理", now=t + timedelta(minutes=2))
    store.act(ids[2], "hold", store_sup(), reason="等待", now=t)
    store.act(ids[2], "resume", store_sup(), now=t + timedelta(minutes=5))
    store.act(ids[3], "ack", D01, now=t)
    store.act(ids[3], "merge", D01, into=ids[1], reason="重复", now=t)
    store.act(ids[2], "supervise", store_sup(), reason="督办", now=t)
    store.act(ids[2], "note", D01, reason="备注", now=t)
    c = check_cases(store.engine)
    assert c.ok, c.reason
    assert c.cases == 4


def store_sup() -> Actor:
    return Actor("s01", "term-9")


# ---- the daemon's witness job: the file and the centre's robot ------------------------------
def test_witness_job_writes_the_file_and_queues_the_robot(
    env: str,
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(ENV, str(key_file))
    base = load_config(ROOT / "config.toml")
    witness = tmp_path / "w" / "witness.jsonl"
    witness.parent.mkdir()
    rec = base.record.model_copy(
        update={"witness_file": str(witness), "witness_robot_interval": 3600}
    )
    store = _store(env, base.model_copy(update={"record": rec}))
    ids = _life(store)
    state = WitnessState()
    a = send_anchor(store, T0, state)
    assert send_anchor(store, T0 + timedelta(minutes=1), state).seq == a.seq  # idle: no line
    lines = witness.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["sig"] == a.sig and a.sig
    assert witness.stat().st_mode & 0o777 == 0o600
    with store.engine.connect() as c:
        rows = c.execute(
            text("SELECT contact, payload FROM outbox WHERE key LIKE 'record-anchor-%'")
        ).all()
    assert len(rows) == 1 and rows[0].contact == "centre"
    assert f"{a.seq}:{a.mac}" in json.loads(rows[0].payload)["title"]
    from tafang.sla.notify.render import Names, render_text

    text_ = render_text(json.loads(rows[0].payload), Names(store.d), store.d.contact_for(4))
    assert text_.startswith("【记录锚点】") and f"--anchor {a.seq}:{a.mac}" in text_
    # The robot hears of a moved head again only after witness_robot_interval.
    store.act(ids[1], "arrive", D01, now=T0 + timedelta(hours=1))
    send_anchor(store, T0 + timedelta(minutes=2), state)
    assert len(witness.read_text().splitlines()) == 2
    with store.engine.connect() as c:
        n = c.execute(text("SELECT count(*) FROM outbox WHERE key LIKE 'record-anchor-%'")).scalar()
    assert n == 1
    # Config's witness file is read by `audit verify` without --witness.
    monkeypatch.setenv("TAFANG_CONFIG", str(_config_with_witness(tmp_path, witness)))
    code, out, _ = _verify(capsys=capsys)
    assert code == 0 and "2 witness anchors match" in out
    # A forged witness line (to cover a rewrite) is not the key's.
    forged = dict(json.loads(lines[0]), mac="0" * 64)
    with witness.open("a") as f:
        f.write(json.dumps(forged) + "\n")
    code, _, err = _verify(capsys=capsys)
    assert code == 1 and "forged" in err
    store.engine.dispose()


def _config_with_witness(tmp_path: Path, witness: Path) -> Path:
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        (ROOT / "config.toml").read_text(encoding="utf-8")
        + f'\n[record]\nwitness_file = "{witness}"\n',
        encoding="utf-8",
    )
    return cfg


def test_a_keyed_record_rewritten_as_plain_is_caught_by_the_witness(
    env: str,
    key_file: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The owner clears the key binding and re-chains everything plain: the chain then looks
    like a never-keyed one; the witness's MACs do not match."""
    monkeypatch.setenv(ENV, str(key_file))
    witness = tmp_path / "witness.jsonl"
    base = load_config(ROOT / "config.toml")
    rec = base.record.model_copy(update={"witness_file": str(witness)})
    store = _store(env, base.model_copy(update={"record": rec}))
    _life(store)
    a = send_anchor(store, T0, WitnessState())
    with store.engine.begin() as c:
        c.execute(text("UPDATE audit_head SET keyed_from = NULL, key_id = NULL, key_mark = NULL"))
    _rechain(store.engine, 1, "d01")
    code, out, _ = _verify("--chain-only", capsys=capsys)
    assert code == 0 and "not keyed yet" in out  # the chain alone: only a warning
    code, _, err = _verify("--witness", str(witness), capsys=capsys)
    assert code == 1 and f"entry {a.seq} does not match the witness anchor" in err
    store.engine.dispose()


# ---- figures: attacks detected / tried ------------------------------------------------------
def test_torn_last_witness_line_is_skipped(tmp_path: Path) -> None:
    from tafang.store.witness import WitnessError, read_anchors

    w = tmp_path / "w.jsonl"
    w.write_text('{"at":"x","seq":1,"mac":"ab"}\n{"at":"x","se')
    assert [a.seq for a in read_anchors(w)] == [1]
    w.write_text('{"at":"x","se\n{"at":"x","seq":1,"mac":"ab"}\n')
    with pytest.raises(WitnessError, match="line 1"):
        list(read_anchors(w))


def test_imported_history_replays_from_its_first_move(store: Store) -> None:
    """`ingest --history` puts one `import` entry a batch on the record: an imported case's
    first state is the history file's (not compared); what later moves change is."""
    old = {**REC, "received_at": "2023-03-01T09:00:00+08:00"}
    lines = [
        json.dumps(
            {
                **old,
                "external_id": "H1",
                "status": "dispatched",
                "assignee": "1-03",
                "acknowledged_at": "2023-03-01T09:00:30+08:00",
                "dispatched_at": "2023-03-01T09:02:00+08:00",
            }
        ),
        json.dumps(
            {
                **old,
                "external_id": "H2",
                "status": "closed",
                "acknowledged_at": "2023-03-01T09:00:30+08:00",
                "dispatched_at": "2023-03-01T09:02:00+08:00",
                "arrived_at": "2023-03-01T09:04:00+08:00",
                "handled_at": "2023-03-01T10:00:00+08:00",
                "closed_at": "2023-03-01T11:00:00+08:00",
                "assignee": "1-03",
            }
        ),
    ]
    r = ingest(store, lines, origin="history", actor=store_sup(), history=True)
    assert r.accepted == 2, r
    with store.engine.connect() as c:
        h1, _ = c.execute(text("SELECT id FROM cases ORDER BY id")).scalars()
    c = check_cases(store.engine)
    assert c.ok and c.imported == 2, c.reason
    store.act(h1, "arrive", D01, now=T0)
    assert check_cases(store.engine).ok
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE cases SET arrived_at = NULL WHERE id = :i"), {"i": h1})
    c = check_cases(store.engine)
    assert (c.case_id, c.field) == (h1, "arrived_at")


@pytest.mark.slow  # real processes: the daemon's witness job and `tafang audit verify`
def test_attacks_through_real_processes(
    env: str, key_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault-suite form: a keyed store with a witness file written by a real daemon run
    (`tafang daemon --once`), then each attack and a real `tafang audit verify`."""
    import subprocess
    import sys

    monkeypatch.setenv(ENV, str(key_file))
    witness = tmp_path / "witness.jsonl"
    cfg = _config_with_witness(tmp_path, witness)
    monkeypatch.setenv("TAFANG_CONFIG", str(cfg))
    store = _store(env, load_config(cfg))
    ids = _life(store)

    def tafang(*argv: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "tafang", *argv]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    assert tafang("daemon", "--once").returncode == 0, "daemon --once failed"
    assert len(witness.read_text().splitlines()) == 1
    assert tafang("audit", "verify").returncode == 0
    tried = detected = 0
    with store.engine.begin() as c:  # 3: the cases table behind the record's back
        c.execute(text("UPDATE cases SET status = 'closed' WHERE id = :i"), {"i": ids[1]})
    r = tafang("audit", "verify")
    tried, detected = tried + 1, detected + (r.returncode == 1 and f"case {ids[1]}" in r.stderr)
    with store.engine.begin() as c:
        c.execute(text("UPDATE cases SET status = 'dispatched' WHERE id = :i"), {"i": ids[1]})
    seq = _close_entry(store.engine)  # 1: an operator changed, the record re-chained
    _rechain(store.engine, seq, "s01")
    r = tafang("audit", "verify")
    tried, detected = tried + 1, detected + (r.returncode == 1 and f"entry {seq}" in r.stderr)
    _cut_after(store.engine, seq - 2)  # 2: the tail cut after an anchor, head rewound
    r = tafang("audit", "verify", "--chain-only")
    tried, detected = tried + 1, detected + (r.returncode == 1 and "missing" in r.stderr)
    assert (detected, tried) == (3, 3)
    store.engine.dispose()


def test_field_reports_replay_clean_and_their_tampering_is_named(store: Store) -> None:
    """Issue 11's field API: times reported from the field (arrive / handle keep them, the
    entry says `reported_at`), `field_*` entries, and self-found cases (created handled)."""
    from tafang.store.field import SelfFound, self_found

    ids = _life(store)
    t = T0 + timedelta(hours=1)
    where = {"lat": 30.28, "lon": 120.1}  # what the field sent goes in the move's own entry
    store.act(ids[1], "arrive", D01, now=t, at=t - timedelta(minutes=3), detail=where)
    store.act(ids[1], "handle", D01, now=t + timedelta(minutes=9), at=t + timedelta(minutes=5))
    found = SelfFound("2-03", "占道经营", t - timedelta(minutes=30), t - timedelta(minutes=10))
    sf = self_found(store, found, D01, now=t).id  # a dispatcher types it in for the officer
    c = check_cases(store.engine)
    assert c.ok, c.reason
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE cases SET handled_at = :t WHERE id = :i"), {"t": t, "i": sf})
    c = check_cases(store.engine)
    assert (c.case_id, c.field) == (sf, "handled_at")
