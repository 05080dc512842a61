"""JSON Lines intake (store/intake/) on a real SQLite file and the real PostgreSQL."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from tafang.sla.escalate import sweep
from tafang.sla.policy import Policy
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.intake import (
    IngestResult,
    Normalised,
    Rejected,
    ingest,
    ingest_records,
    normalise,
)
from tafang.store.intake.reasons import show
from tafang.store.models import DeadLetter
from tafang.store.record import (
    AUDIT_ROW,
    Entry,
    Head,
    chain_rows,
    digest,
    dump_detail,
    encode_detail,
    rows_for,
    verify,
)

from tests.conftest import fresh_pg_url, migrated_sqlite

ROOT = Path(__file__).resolve().parent.parent
ACTOR = Actor("d01", "term-1")
NOW = datetime(2023, 6, 1, 1, 0, 0, tzinfo=UTC)
GRID = "33010600700801"  # label N1-01


def rec(i: int | str = 1, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "source": "ping_an",
        "external_id": f"PA-{i}",
        "title": "文二西路共享单车堵塞消防通道",
        "category": "0590",
        "grid": GRID,
        "priority": "normal",
        "received_at": "2023-06-01T08:59:58+08:00",
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not None}


def line(r: Any) -> bytes:
    return json.dumps(r, ensure_ascii=False).encode() + b"\n"


def run(store: Store, lines: list[bytes | str], origin: str = "test.jsonl") -> IngestResult:
    return ingest(store, lines, origin=origin, actor=ACTOR, now=NOW)


def only_case(store: Store):  # type: ignore[no-untyped-def]
    cases = store.cases("all")
    assert len(cases) == 1
    return cases[0]


def dead_letters(store: Store) -> list[Any]:
    with store.engine.connect() as c:
        return list(c.execute(select(DeadLetter.__table__).order_by(text("id"))))


def audit(store: Store, action: str) -> list[Any]:
    with store.engine.connect() as c:
        rows = c.execute(
            text("SELECT action, case_id, detail FROM audit WHERE action = :a ORDER BY seq"),
            {"a": action},
        )
        return [(r.action, r.case_id, json.loads(r.detail)) for r in rows]


# ---- the good path ----------------------------------------------------------------------
@pytest.mark.parametrize("label", [" n3-07 ", "n3-07", "N3-07\t"])
def test_a_grid_label_in_any_case_with_spaces_is_the_grid(store: Store, label: str) -> None:
    run(store, [line(rec(1, grid=label))])
    c = only_case(store)
    assert c.grid == store.d.grids_by_label["N3-07"].code and not c.triage


def test_good_file_becomes_cases_with_clocks_and_record(store: Store) -> None:
    seq0 = store.change_seq()
    res = run(
        store,
        [
            line(rec(1)),
            line(rec(2, grid="N3-07", priority="urgent", description="详情", lat=30.28, lon=120.1)),
            line(rec(3, source="smart_alarm", category="0404", priority="critical")),
        ],
    )
    assert res.summary == "accepted=3 duplicate=0 rejected=0 blank=0"
    assert (res.accepted, res.duplicate, res.rejected, res.errors) == (3, 0, 0, [])
    cases = {c.external_id: c for c in store.cases("all")}
    one, two = cases["PA-1"], cases["PA-2"]
    assert one.status == "new" and not one.triage and one.triage_reason == ""
    assert one.received_at == datetime(2023, 6, 1, 0, 59, 58, tzinfo=UTC)
    assert one.respond_due == one.received_at + timedelta(seconds=60)
    assert one.arrive_due == one.received_at + timedelta(seconds=300)
    assert one.next_check_at == one.respond_due
    assert two.grid == store.d.grids_by_label["N3-07"].code  # label mapped, not triage
    assert not two.triage
    assert two.respond_due == two.received_at + timedelta(seconds=45)  # urgent override
    assert (two.lat, two.lon, two.description) == (30.28, 120.1, "详情")
    assert all(c.updated_seq > seq0 for c in cases.values())
    assert store.change_seq() > seq0
    entries = audit(store, "ingest")
    assert len(entries) == 3
    assert entries[0][2] == {
        "source": "ping_an",
        "external_id": "PA-1",
        "origin": "test.jsonl",
        "triage": False,
    }
    assert {e[1] for e in entries} == {c.id for c in cases.values()}
    assert [t.action for t in store.timeline(one.id)] == ["ingest"]
    assert verify(store.engine).ok


def test_blank_lines_skipped_but_line_numbers_are_physical(store: Store) -> None:
    res = run(store, [b"\n", b"   \t\r\n", line(rec(1)), b"\n", b"{oops\n", "\u3000\n"])
    assert (res.accepted, res.duplicate, res.rejected, res.blank) == (1, 0, 1, 4)
    assert res.errors[0][0] == 5


def test_bom_and_str_lines_and_crlf(store: Store) -> None:
    res = run(store, ["\ufeff" + json.dumps(rec(1)) + "\r\n", json.dumps(rec(2))])
    assert res.accepted == 2


def test_numbers_coerced_for_keys_and_category(store: Store) -> None:
    res = run(store, [line(rec(None, external_id=12345, category=590, grid=int(GRID)))])
    assert res.accepted == 1
    c = only_case(store)
    assert (c.external_id, c.category, c.grid, c.triage) == ("12345", "0590", GRID, False)


def test_naive_time_is_read_in_the_deployment_time_zone_and_flagged(store: Store) -> None:
    """Feeds in China often send local times: read as such, but a dispatcher is told."""
    r = rec(1, received_at="2023-06-01 08:59:58", reported_at="2023-06-01T08:50:00")
    run(store, [line(r)])
    c = only_case(store)
    assert c.received_at == datetime(2023, 6, 1, 0, 59, 58, tzinfo=UTC)
    assert c.reported_at == datetime(2023, 6, 1, 0, 50, tzinfo=UTC)
    assert c.respond_due == c.received_at + timedelta(seconds=60)
    assert c.triage
    assert c.triage_reason == (
        "reported_at '2023-06-01T08:50:00' has no UTC offset (read as Asia/Shanghai); "
        "received_at '2023-06-01 08:59:58' has no UTC offset (read as Asia/Shanghai)"
    )
    assert json.loads(c.raw) == {
        "reported_at": "2023-06-01T08:50:00",
        "received_at": "2023-06-01 08:59:58",
    }


def test_received_at_defaults_to_now_and_starts_the_clocks(store: Store) -> None:
    run(store, [line(rec(1, received_at=None))])
    c = only_case(store)
    assert c.received_at == NOW and c.respond_due == NOW + timedelta(seconds=60)
    assert not c.triage


# ---- duplicates -------------------------------------------------------------------------
def test_duplicates_within_one_input_and_across_runs(store: Store) -> None:
    first = run(store, [line(rec(1)), line(rec(2)), line(rec(1, title="again"))])
    assert (first.accepted, first.duplicate, first.rejected) == (2, 1, 0)
    assert store.get(store.cases("all")[0].id).title == "文二西路共享单车堵塞消防通道"
    seq = store.change_seq()
    second = run(store, [line(rec(1, title="changed")), line(rec(3))])
    assert (second.accepted, second.duplicate) == (1, 1)
    assert {c.external_id: c.title for c in store.cases("all")}["PA-1"] != "changed"
    third = run(store, [line(rec(1)), line(rec(2)), line(rec(3))])
    assert third.summary == "accepted=0 duplicate=3 rejected=0 blank=0"
    assert store.change_seq() == seq + 1  # the all-duplicate run changed nothing
    assert len(audit(store, "ingest")) == 3
    # The same id from another channel is another case.
    assert run(store, [line(rec(1, source="grid_app"))]).accepted == 1


def test_duplicates_across_batches(store: Store) -> None:
    lines = [line(rec(i % 7)) for i in range(30)]
    res = ingest(store, lines, origin="b", actor=ACTOR, now=NOW, batch=4)
    assert (res.accepted, res.duplicate) == (7, 23)
    assert verify(store.engine).ok


# ---- triage -----------------------------------------------------------------------------
def test_odd_values_are_accepted_flagged_and_kept_raw(store: Store) -> None:
    r = rec(
        1,
        source="wechat",
        grid="999",
        category="x",
        priority="asap",
        reported_at="yesterday",
        received_at="not a time",
        lat="north",
        lon=500,
    )
    res = run(store, [line(r)])
    assert res.summary == "accepted=1 duplicate=0 rejected=0 blank=0"
    c = only_case(store)
    assert c.triage
    assert (c.grid, c.category, c.priority, c.reported_at) == (None, None, "normal", None)
    assert c.received_at == NOW
    assert c.lat is None and c.lon is None
    for part in (
        "unknown source channel 'wechat'",
        "unknown grid '999'",
        "unknown category 'x'",
        "unknown priority 'asap'",
        "unreadable reported_at 'yesterday'",
        "unreadable received_at 'not a time'",
        "lat is not a usable number: 'north'",
        "lon is not a usable number: '500'",
    ):
        assert part in c.triage_reason
    assert c.triage_reason.startswith("unknown source channel 'wechat'; unknown grid '999'")
    raw = json.loads(c.raw)
    assert raw == {
        "grid": "999",
        "category": "x",
        "priority": "asap",
        "reported_at": "yesterday",
        "received_at": "not a time",
        "lat": "north",
        "lon": 500,
    }
    assert audit(store, "ingest")[0][2]["triage"] is True


@pytest.mark.parametrize("odd", [["urgent"], {"level": 1}, 3, True])
def test_a_priority_of_the_wrong_type_is_triage_not_a_dead_letter(store: Store, odd: Any) -> None:
    """Only a line that cannot be a case is rejected (DESIGN §4): this one can."""
    res = run(store, [line(rec(1, priority=odd))])
    assert res.summary == "accepted=1 duplicate=0 rejected=0 blank=0"
    c = only_case(store)
    assert c.triage and c.priority == "normal" and "priority" in c.triage_reason
    assert json.loads(c.raw)["priority"] == odd


def test_unknown_fields_are_kept_under_extra(store: Store) -> None:
    extra = {"device_id": "SA-00042", "photos": ["a.jpg", "b.jpg"], "meta": {"x": [1, None]}}
    run(store, [line(rec(1, **extra))])
    c = only_case(store)
    assert json.loads(c.raw) == {"extra": extra}
    assert not c.triage  # unknown fields are kept, not a problem


def test_title_not_text_is_flagged_but_description_carries_it(store: Store) -> None:
    run(store, [line(rec(1, title=["x"], description="d"))])
    c = only_case(store)
    assert c.triage and "title is not text (an array)" in c.triage_reason
    assert json.loads(c.raw)["title"] == ["x"]


# ---- rejections -------------------------------------------------------------------------
REJECTS = [
    (b'{"source": "ping_an" "external_id": "1"}', "not valid JSON: Expecting ',' delimiter"),
    (b"[1, 2]", "not a JSON object (got an array)"),
    (b'"just a string"', "not a JSON object (got a string)"),
    (b"null", "not a JSON object (got null)"),
    (line(rec(1, source=None)), "missing required field 'source'"),
    (line(rec(1, external_id=None)), "missing required field 'external_id'"),
    (line(rec(1, external_id="  ")), "required field 'external_id' is empty"),
    (line(rec(1, external_id=["a"])), "field 'external_id' must be a string or number"),
    (line(rec(1, title="", description=" ")), "neither 'title' nor 'description' has any text"),
    (line(rec(1, source="s" * 65)), "field 'source' is 65 characters long; the limit is 64"),
    (line(rec(1, description="长" * 1_000_001)), "field 'description' is 1000001 characters"),
    (b"\xff\xfe{not json", "not UTF-8 text (bad byte at column 1); not valid JSON"),
]


@pytest.mark.parametrize(("raw", "reason"), REJECTS, ids=[r for _, r in REJECTS])
def test_each_rejection_names_line_and_reason_and_keeps_the_line(
    store: Store, raw: bytes, reason: str
) -> None:
    res = run(store, [line(rec(100)), b"\n", raw, line(rec(101))], origin="feed.jsonl")
    assert (res.accepted, res.duplicate, res.rejected) == (2, 0, 1)
    assert len(res.errors) == 1
    n, why = res.errors[0]
    assert n == 3 and why.startswith(reason), why
    (dl,) = dead_letters(store)
    assert (dl.origin, dl.line_no, dl.reason) == ("feed.jsonl", 3, why)
    assert dl.raw == raw.rstrip(b"\n").decode("utf-8", "backslashreplace")
    assert audit(store, "reject") == [
        ("reject", None, {"origin": "feed.jsonl", "line": 3, "reason": why})
    ]
    assert verify(store.engine).ok


def test_json_error_reason_names_the_column(store: Store) -> None:
    res = run(store, [b'{"source": "a", "external_id": 1 "x": 2}'])
    assert res.errors == [(1, "not valid JSON: Expecting ',' delimiter at column 34")]


def test_a_line_cut_short_is_named_so_at_its_end(store: Store) -> None:
    """A record cut off mid-way (a copy that stopped, a full disk): the reason says the line
    ends too soon and where, not json's "line 2 column 1" of the text after the newline."""
    res = run(
        store, [b'{"source": "a", "external_id": "1", "title": "x"\n', b'{"source": "a", "tit\n']
    )
    cut = "before the JSON does (cut short?)"
    assert res.errors == [
        (1, f"not valid JSON: the line ends at column 48 {cut}"),
        (2, f"not valid JSON: the line ends at column 20 {cut}"),
    ]
    res = run(store, [b'{"source": "a\x01", "external_id": "2"}'])
    assert res.errors == [(1, "not valid JSON: Invalid control character at column 14")]


def test_deeply_nested_and_huge_numbers_do_not_crash(store: Store) -> None:
    res = run(store, [b"[" * 100_000, b'{"a": 1' + b"0" * 5000 + b"}"])
    assert res.rejected == 2  # too deep; no source (the 5,001-digit number is read, as text)
    assert [r for _, r in res.errors] == [
        "JSON nested more than 64 levels deep; the limit is 64",
        "missing required field 'source'",
    ]


# ---- hostile text -----------------------------------------------------------------------
HOSTILE = [
    "古荡街道 文三西路 共享单车",
    "emoji 🚲🔥👮‍♀️",
    "[red]FAKE[/red] [@click=app.quit]x[/] [b]",
    "\x1b[31mred\x1b[0m \x07 bell \r carriage",
    "tab\tnew\nline",
    "x" * 100_000,
]


@pytest.mark.parametrize("value", HOSTILE, ids=["cjk", "emoji", "markup", "ansi", "ws", "100kB"])
def test_hostile_text_round_trips_exactly(store: Store, value: str) -> None:
    r = rec(1, title=value, description=value, location=value, reporter=value)
    res = run(store, [line(r)])
    assert res.accepted == 1
    c = only_case(store)
    assert (c.title, c.description, c.location, c.reporter) == (value,) * 4
    assert not c.triage


def test_nul_is_exact_on_sqlite_and_escaped_on_postgresql(store: Store) -> None:
    res = run(store, [line(rec(1, title="a\x00b", description="ok"))])
    assert res.accepted == 1
    c = only_case(store)
    if store.engine.dialect.name == "sqlite":
        assert c.title == "a\x00b" and not c.triage
    else:
        assert c.title == "a\\u0000b" and c.triage
        assert "title held characters the store cannot keep" in c.triage_reason
        assert json.loads(c.raw)["title"] == "a\x00b"  # the exact value is kept
    assert verify(store.engine).ok


def test_lone_surrogate_is_escaped_flagged_and_kept_exactly_in_raw(store: Store) -> None:
    raw = b'{"source": "ping_an", "external_id": "S1", "title": "x\\udc00y"}'
    res = run(store, [raw])
    assert res.accepted == 1
    c = only_case(store)
    assert c.title == "x\\udc00y"
    assert c.triage and "title held characters" in c.triage_reason
    assert json.loads(c.raw) == {"title": "x\udc00y"}
    assert run(store, [raw]).duplicate == 1


# An identifier must be kept exactly, or two reports share a dedupe key and one is lost.
UNKEEPABLE_KEYS = [
    # (line, a line whose key the lossy form would have equalled, reason)
    (
        b'{"source": "hotline", "external_id": "bad\xff", "title": "x"}',
        '{"source": "hotline", "external_id": "bad\ufffd", "title": "x"}'.encode(),
        "external_id holds bytes that are not UTF-8",
    ),
    (
        b'{"source": "hot\xe4line", "external_id": "1", "title": "x"}',
        '{"source": "hot\ufffdline", "external_id": "1", "title": "x"}'.encode(),
        "source holds bytes that are not UTF-8",
    ),
    (
        b'{"source": "hotline", "external_id": "k\\ud800", "title": "x"}',
        b'{"source": "hotline", "external_id": "k\\\\ud800", "title": "x"}',
        "external_id holds a lone surrogate (\\ud800), which is not a character",
    ),
    (
        b'{"source": "hotline", "external_id": "k\\u0000", "title": "x"}',
        b'{"source": "hotline", "external_id": "k\\\\u0000", "title": "x"}',
        "external_id holds NUL (\\u0000), which cannot be part of an identifier",
    ),
]


@pytest.mark.parametrize(("bad", "literal", "reason"), UNKEEPABLE_KEYS, ids=range(4))
def test_a_key_that_cannot_be_kept_exactly_is_rejected_not_merged(
    store: Store, bad: bytes, literal: bytes, reason: str
) -> None:
    res = run(store, [literal, bad])
    assert (res.accepted, res.duplicate, res.rejected) == (1, 0, 1)
    assert res.errors == [(2, reason)]
    (dl,) = dead_letters(store)
    assert dl.reason == reason
    assert dl.raw == bad.decode("utf-8", "backslashreplace").replace("\x00", "\\u0000")
    # The other way round, and again: still one case, one rejection each time, no duplicate.
    again = run(store, [bad, literal])
    assert (again.accepted, again.duplicate, again.rejected) == (0, 1, 1)
    assert len(store.cases("all")) == 1


def test_two_ids_with_different_bad_bytes_are_two_rejections_not_a_duplicate(
    store: Store,
) -> None:
    lines = [
        b'{"source": "hotline", "external_id": "bad%s", "title": "x"}\n' % b
        for b in (b"\xff", b"\xfe")
    ]
    res = run(store, lines)
    assert (res.accepted, res.duplicate, res.rejected) == (0, 0, 2)
    assert [d.raw for d in dead_letters(store)] == [
        '{"source": "hotline", "external_id": "bad\\xff", "title": "x"}',
        '{"source": "hotline", "external_id": "bad\\xfe", "title": "x"}',
    ]


def test_bad_bytes_elsewhere_than_the_key_still_make_a_case(store: Store) -> None:
    res = run(store, [b'{"source": "hotline", "external_id": "\xef\xbf\xbd", "title": "\xff"}'])
    assert res.accepted == 1
    c = only_case(store)
    assert c.external_id == "\ufffd" and c.title == "\ufffd" and c.triage


def test_str_lines_with_a_surrogate_in_the_key_are_rejected(store: Store) -> None:
    s = b'{"source": "a", "external_id": "\xff", "title": "t"}'.decode("utf-8", "surrogateescape")
    res = ingest_records(store, [(1, json.loads(s))], origin="f", actor=ACTOR, now=NOW)
    assert res.errors == [
        (1, "external_id holds a lone surrogate (\\udcff), which is not a character")
    ]


def test_invalid_utf8_bytes_are_accepted_with_the_line_kept(store: Store) -> None:
    raw = b'{"source": "ping_an", "external_id": "G1", "title": "\xff\xfe bikes"}'
    res = run(store, [raw + b"\n"])
    assert res.accepted == 1
    c = only_case(store)
    assert c.title == "\ufffd\ufffd bikes"
    assert c.triage and "not valid UTF-8" in c.triage_reason
    assert json.loads(c.raw)["line"] == raw.decode("utf-8", "backslashreplace")


def test_str_lines_with_surrogateescape_never_crash(store: Store) -> None:
    s = b'{"source": "a", "external_id": "1", "title": "\xff"}'.decode("utf-8", "surrogateescape")
    res = run(store, [s, "\udcff{broken"])
    assert (res.accepted, res.rejected) == (1, 1)
    assert dead_letters(store)[0].raw == "\\udcff{broken"


# ---- records from feeds -----------------------------------------------------------------
def test_ingest_records_shares_the_checks(store: Store) -> None:
    res = ingest_records(
        store,
        [(1, rec(1)), (2, rec(1)), (3, {"source": "x"}), (None, [1])],  # type: ignore[list-item]
        origin="feed:ping_an",
        actor=ACTOR,
        now=NOW,
    )
    assert (res.accepted, res.duplicate, res.rejected) == (1, 1, 2)
    assert res.errors == [
        (3, "missing required field 'external_id'"),
        (None, "not a JSON object (got an array)"),
    ]
    assert [json.loads(d.raw) for d in dead_letters(store)] == [{"source": "x"}, [1]]


def test_normalise_is_pure_and_says_why(gudang: Deployment) -> None:
    ok = normalise(rec(1, grid="N1-01"), gudang, now=NOW)
    assert isinstance(ok, Normalised) and ok.values["grid"] == GRID and ok.triage == ()
    assert ok.key == ("ping_an", "PA-1")
    bad = normalise({"source": "a"}, gudang)
    assert bad == Rejected("missing required field 'external_id'")


# ---- concurrency -------------------------------------------------------------------------
CHILD = """
import sys
from tafang.store.cases import Actor, Store
from tafang.store.db import make_engine
from tafang.store.config import load_config
from tafang.store.db import make_engine
from tafang.store.intake import ingest
store = Store(make_engine(sys.argv[1]), load_config(sys.argv[2]))
with open(sys.argv[3], "rb") as f:
    r = ingest(store, f, origin=sys.argv[3], actor=Actor("p", "t"), batch=50)
print(r.accepted, r.duplicate, r.rejected)
"""


@pytest.mark.slow  # a race test: still runs in .ci/run
def test_two_processes_ingesting_one_file_make_no_duplicates(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "same.jsonl"
    path.write_bytes(b"".join(line(rec(i)) for i in range(600)))
    url = store.engine.url.render_as_string(hide_password=False)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, url, str(ROOT / "config.toml"), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    counts = [tuple(map(int, out.split())) for out, _ in outs]
    assert sum(c[0] for c in counts) == 600
    assert sum(c[1] for c in counts) == 600
    assert len(store.cases("all")) == 600
    assert verify(store.engine).ok


# ---- fuzz --------------------------------------------------------------------------------
_json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
)
_field_value = st.one_of(
    _json_scalar,
    st.lists(_json_scalar, max_size=3),
    st.dictionaries(st.text(max_size=5), _json_scalar, max_size=3),
)
_mutation = st.dictionaries(
    st.sampled_from(
        [
            "source",
            "external_id",
            "title",
            "description",
            "category",
            "grid",
            "priority",
            "reported_at",
            "received_at",
            "lat",
            "lon",
            "extra_field",
        ]
    ),
    _field_value,
    max_size=4,
)


@st.composite
def _line(draw: st.DrawFn) -> bytes | str:
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return line(rec(draw(st.integers(0, 20))))
    if kind == 1:
        r = rec(draw(st.integers(0, 20)))
        r.update(draw(_mutation))
        try:
            return json.dumps(r, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
        except ValueError:
            return b"{}"
    if kind == 2:
        return draw(st.binary(max_size=60))
    if kind == 3:
        return draw(st.text(max_size=60))
    if kind == 4:
        return line(draw(_field_value))
    good = line(rec(draw(st.integers(0, 20))))
    cut = draw(st.integers(0, len(good)))
    return good[:cut] + draw(st.binary(max_size=4)) + good[cut:]


def _non_blank(lines: list[bytes | str]) -> int:
    n = 0
    for x in lines:
        s = x.decode("utf-8", "replace") if isinstance(x, bytes) else x
        n += bool(s.strip().strip("\ufeff").strip())  # a lone BOM is blank too
    return n


@pytest.fixture(params=["sqlite", "postgresql"])
def store_per_example(
    request: pytest.FixtureRequest, tmp_path: Path, gudang: Deployment
) -> Iterator[Callable[[], Store]]:
    """A fresh store for each Hypothesis example, so no example sees another's cases; the
    previous example's store is closed (and its PostgreSQL database dropped) first, so a run
    of examples holds one database's connections, not fifty."""
    cleanup = ExitStack()
    n = itertools.count()

    def make() -> Store:
        cleanup.close()
        if request.param == "sqlite":
            url = migrated_sqlite(tmp_path / f"example{next(n)}.db")
        else:
            database = fresh_pg_url()
            url = next(database)
            cleanup.callback(next, database, None)  # drops it
        engine = make_engine(url)
        cleanup.callback(engine.dispose)
        return Store(engine, gudang, clocks=Policy(gudang))

    with cleanup:
        yield make


@pytest.mark.slow
@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lines=st.lists(_line(), max_size=25))
def test_fuzz_never_crashes_and_counts_every_line(
    store_per_example: Callable[[], Store], lines: list[bytes | str]
) -> None:
    store = store_per_example()
    first = ingest(store, lines, origin="fuzz", actor=ACTOR, now=NOW, batch=7)
    assert first.accepted + first.duplicate + first.rejected == _non_blank(lines)
    assert first.accepted + first.duplicate + first.rejected + first.blank == len(lines)
    assert len(first.errors) == first.rejected
    again = ingest(store, lines, origin="fuzz", actor=ACTOR, now=NOW, batch=7)
    assert again.accepted == 0
    assert again.duplicate == first.accepted + first.duplicate
    assert again.rejected == first.rejected


def test_record_verifies_after_a_mixed_ingest(store: Store) -> None:
    lines = [line(rec(i)) for i in range(50)] + [b"{bad", b"[]", line(rec(3))]
    res = ingest(store, lines, origin="mix", actor=ACTOR, now=NOW, batch=8)
    assert (res.accepted, res.duplicate, res.rejected) == (50, 1, 2)
    v = verify(store.engine)
    assert v.ok and v.checked == 52


def test_worker_processes_give_the_same_cases_as_one_process(
    store: Store, gudang: Deployment, tmp_path: Path
) -> None:
    lines = [line(rec(i, grid="N3-07" if i % 3 else "999")) for i in range(40)]
    lines += [b"{bad\n", line(rec(5)), b"\n", line(rec(41, title="a\x00b"))]
    par = ingest(store, lines, origin="p", actor=ACTOR, now=NOW, batch=6, workers=2)
    seq = Store(make_engine(migrated_sqlite(tmp_path / "seq.db")), gudang)
    one = ingest(seq, lines, origin="p", actor=ACTOR, now=NOW, batch=6, workers=0)
    assert (par.accepted, par.duplicate, par.rejected) == (one.accepted, one.duplicate, 1)
    assert (
        par.errors
        == one.errors
        == [(41, "not valid JSON: Expecting property name enclosed in double quotes at column 2")]
    )
    keep = ("source", "external_id", "title", "grid", "triage_reason", "received_at", "respond_due")

    def shape(s: Store) -> list[tuple[Any, ...]]:
        return sorted(
            tuple(getattr(c, k) for k in keep) for c in s.cases("all") if c.external_id != "PA-41"
        )

    assert shape(store) == shape(seq)
    assert verify(store.engine).ok and verify(seq.engine).ok


@pytest.mark.parametrize(
    ("received_at", "why"),
    [
        ("2099-01-01T00:00:00+08:00", "is more than a day in the future"),
        ("9999-12-31T23:59:59+00:00", "is more than a day in the future"),
        ("2023-06-02T01:00:01+00:00", "is more than a day in the future"),
        ("1800-01-01T00:00:00+08:00", "is more than 3653 days in the past"),
        ("1970-01-01T00:00:00Z", "is more than 3653 days in the past"),
    ],
)
def test_a_receipt_not_believed_is_taken_as_now_and_flagged(
    store: Store, received_at: str, why: str
) -> None:
    """A wrong clock at the sender, a day ahead or ten years back: believed, the first sweep
    sent a year-1800 case to the command centre."""
    res = run(store, [line(rec(1, received_at=received_at))])
    assert res.accepted == 1
    c = only_case(store)
    assert c.received_at == NOW and c.respond_due == NOW + timedelta(seconds=60)
    assert c.next_check_at == c.respond_due
    assert c.triage
    assert c.triage_reason == f"received_at '{received_at}' {why} (taken as the time of intake)"
    assert json.loads(c.raw) == {"received_at": received_at}
    assert sweep(store, store.clocks, NOW + timedelta(seconds=1)) == []
    assert store.get(c.id).escalation_level == 0


@pytest.mark.parametrize(
    "received_at",
    [
        ("2023-06-02T01:00:00+00:00", datetime(2023, 6, 2, 1, 0, tzinfo=UTC)),  # a day ahead: ok
        ("2023-05-25T01:00:00+00:00", datetime(2023, 5, 25, 1, 0, tzinfo=UTC)),  # 7 days back
        ("2023-05-29T09:00:00+08:00", datetime(2023, 5, 29, 1, 0, tzinfo=UTC)),  # catching up
    ],
    ids=["a-day-ahead", "seven-days-back", "three-days-back"],
)
def test_received_at_in_the_past_week_or_just_ahead_is_kept(
    store: Store, received_at: tuple[str, datetime]
) -> None:
    """A feed catching up after an outage keeps its times: its cases escalate honestly."""
    run(store, [line(rec(1, received_at=received_at[0], reported_at=received_at[0]))])
    c = only_case(store)
    assert c.received_at == received_at[1] and c.reported_at == received_at[1]
    assert not c.triage and json.loads(c.raw) == {}


@pytest.mark.parametrize("received_at", ["2023-05-25T00:59:59+00:00", "2020-01-01T08:00:00+08:00"])
def test_a_receipt_over_a_week_back_is_kept_but_flagged(store: Store, received_at: str) -> None:
    """A backfill of last month is reported on its own days, and a dispatcher sees it is old."""
    run(store, [line(rec(1, received_at=received_at, reported_at=received_at))])
    c = only_case(store)
    want = datetime.fromisoformat(received_at).astimezone(UTC)
    assert c.received_at == want and c.reported_at == want
    assert c.triage_reason == (
        f"reported_at '{received_at}' is more than 7 days in the past; "
        f"received_at '{received_at}' is more than 7 days in the past"
    )
    assert json.loads(c.raw) == {"received_at": received_at, "reported_at": received_at}


def test_a_report_time_in_the_future_is_kept_raw_and_flagged(store: Store) -> None:
    ahead = "2023-06-03T00:00:00+00:00"  # two days after NOW
    run(store, [line(rec(1, reported_at=ahead))])
    c = only_case(store)
    assert c.reported_at is None
    assert c.triage_reason == f"reported_at '{ahead}' is more than a day in the future"
    assert json.loads(c.raw) == {"reported_at": ahead}


def test_a_report_time_older_than_believable_is_kept_raw_and_flagged(store: Store) -> None:
    run(store, [line(rec(1, reported_at="1800-01-01T00:00:00+08:00"))])
    c = only_case(store)
    assert c.reported_at is None and c.received_at == datetime(2023, 6, 1, 0, 59, 58, tzinfo=UTC)
    assert c.triage_reason == (
        "reported_at '1800-01-01T00:00:00+08:00' is more than 3653 days in the past"
    )
    assert json.loads(c.raw) == {"reported_at": "1800-01-01T00:00:00+08:00"}


@pytest.mark.parametrize("epoch", [1733212800, 1733212800000, 1685581200.5, True, ["2023"]])
def test_a_time_that_is_not_text_is_unreadable(store: Store, epoch: Any) -> None:
    """Seconds or milliseconds, UTC or local: a number is not read as a time (DESIGN §4)."""
    run(store, [line(rec(1, received_at=epoch, reported_at=epoch))])
    c = only_case(store)
    assert c.received_at == NOW and c.respond_due == NOW + timedelta(seconds=60)
    assert c.reported_at is None
    shown = show(epoch)
    assert c.triage_reason == (
        f"unreadable reported_at {shown}; "
        f"unreadable received_at {shown} (taken as the time of intake)"
    )
    assert json.loads(c.raw) == {"reported_at": epoch, "received_at": epoch}


def test_history_reads_times_as_given(store: Store) -> None:
    """`ingest --history` is past cases as they were: old, numeric and local times stand."""
    lines = [
        line(rec(1, received_at="2000-01-01T08:00:00+08:00", reported_at="1999-12-31 23:00")),
        line(rec(2, received_at=946684800, acknowledged_at="2000-01-01T00:01:00+00:00")),
    ]
    res = ingest(store, lines, origin="h", actor=ACTOR, now=NOW, history=True)
    assert res.accepted == 2
    one, two = sorted(store.cases("all"), key=lambda c: c.external_id)
    assert one.received_at == two.received_at == datetime(2000, 1, 1, tzinfo=UTC)
    assert one.reported_at == datetime(1999, 12, 31, 15, tzinfo=UTC)
    assert not one.triage and not two.triage


def test_normalise_reads_times_against_the_intake_time(gudang: Deployment) -> None:
    r = rec(1, received_at="2023-05-20T00:00:00+00:00")
    late = normalise(r, gudang, now=NOW)  # 12 days back: kept, flagged
    assert isinstance(late, Normalised) and late.triage
    assert late.values["received_at"] == datetime(2023, 5, 20, tzinfo=UTC)
    earlier = datetime(2023, 5, 21, tzinfo=UTC)
    ok = normalise(r, gudang, now=earlier)
    assert isinstance(ok, Normalised) and not ok.triage
    assert ok.values["received_at"] == datetime(2023, 5, 20, tzinfo=UTC)
    hist = normalise(r, gudang, now=NOW, history=True)
    assert isinstance(hist, Normalised) and not hist.triage


# ---- streams -----------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["rb", "r"])
def test_a_pipe_is_committed_as_lines_arrive_with_their_own_receipt_time(
    store: Store, mode: str
) -> None:
    r, w = os.pipe()
    seen_before_second: list[int] = []

    def writer() -> None:
        with os.fdopen(w, "wb") as out:
            out.write(line(rec("S1", received_at=None)))
            out.flush()
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and not store.cases("all"):
                time.sleep(0.05)
            seen_before_second.append(len(store.cases("all")))
            time.sleep(0.05)
            out.write(line(rec("S2", received_at=None)))

    t = threading.Thread(target=writer)
    t.start()
    with os.fdopen(r, mode) as stream:
        res = ingest(store, stream, origin="stdin", actor=ACTOR)
    t.join()
    assert res.summary == "accepted=2 duplicate=0 rejected=0 blank=0"
    assert seen_before_second == [1]  # S1 was committed while the pipe stayed open
    one, two = sorted(store.cases("all"), key=lambda c: c.external_id)
    assert one.external_id == "PA-S1" and one.received_at < two.received_at
    assert verify(store.engine).ok


def test_a_pipe_keeps_line_numbers_and_partial_last_line(store: Store) -> None:
    r, w = os.pipe()

    def writer() -> None:
        with os.fdopen(w, "wb") as out:
            out.write(line(rec(1)) + b"\n{bad\n" + line(rec(2))[:20])
            out.flush()
            time.sleep(0.3)
            out.write(line(rec(2))[20:].rstrip(b"\n"))  # no newline at the end

    t = threading.Thread(target=writer)
    t.start()
    with os.fdopen(r, "rb") as stream:
        res = ingest(store, stream, origin="stdin", actor=ACTOR, now=NOW, batch=2)
    t.join()
    assert (res.accepted, res.rejected) == (2, 1)
    assert res.errors[0][0] == 3


# ---- the fast record path (store.record.chain_rows, details made in the worker) ----------
_ANY_TEXT = st.text(
    alphabet=st.characters(codec=None, blacklist_categories=()), max_size=30
)  # quotes, backslashes, control characters, CJK, lone surrogates


@settings(max_examples=200, deadline=None)
@given(
    seq=st.integers(min_value=0, max_value=2**70),
    prev=_ANY_TEXT,
    operator=_ANY_TEXT,
    terminal=_ANY_TEXT,
    action=_ANY_TEXT,
    case_id=st.none() | st.integers(min_value=-(2**64), max_value=2**64),
    detail=_ANY_TEXT,
    micro=st.integers(min_value=0, max_value=999_999),
)
def test_digest_is_sha256_of_its_json_definition(
    seq: int,
    prev: str,
    operator: str,
    terminal: str,
    action: str,
    case_id: int | None,
    detail: str,
    micro: int,
) -> None:
    at = datetime(2023, 6, 1, 1, 0, 0, micro, tzinfo=UTC)
    body = json.dumps(
        [
            seq,
            prev,
            at.isoformat(timespec="microseconds"),
            operator,
            terminal,
            action,
            case_id,
            detail,
        ],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    want = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
    assert digest(seq, prev, at, operator, terminal, action, case_id, detail) == want


@settings(max_examples=100, deadline=None)
@given(
    operator=_ANY_TEXT,
    terminal=_ANY_TEXT,
    items=st.lists(
        st.tuples(
            st.sampled_from(["ingest", "reject", '引"\\']),
            st.none() | st.integers(min_value=0, max_value=2**40),
            st.dictionaries(_ANY_TEXT, _ANY_TEXT | st.booleans() | st.integers(), max_size=4),
        ),
        max_size=6,
    ),
)
def test_chain_rows_makes_the_rows_of_rows_for(
    operator: str, terminal: str, items: list[tuple[str, int | None, dict[str, Any]]]
) -> None:
    at = datetime(2023, 6, 1, 9, 0, 0, 5, tzinfo=timezone(timedelta(hours=8)))
    a, b = Head(7, "ab" * 32, 3), Head(7, "ab" * 32, 3)
    slow = rows_for(a, [Entry(at, operator, terminal, act, cid, d) for act, cid, d in items])
    ready = [(act, cid, dump_detail(d)) for act, cid, d in items]
    fast = chain_rows(b, at, operator, terminal, [(*r, encode_detail(r[2])) for r in ready])
    assert [tuple(r[c] for c in AUDIT_ROW) for r in slow] == fast
    assert (a.seq, a.hash) == (b.seq, b.hash)
    # rows_for also takes a detail already dumped
    c = Head(7, "ab" * 32, 3)
    assert rows_for(c, [Entry(at, operator, terminal, *r) for r in ready]) == slow


@pytest.mark.parametrize("workers", [0, 1])
def test_ingested_store_verifies_and_tampering_is_detected(store: Store, workers: int) -> None:
    origin = 'C:\\feeds\\"古荡"\n\x01.jsonl'  # everything the detail's JSON must escape
    lines = [
        line(rec(i, title=f"标题 {i}", source="ping_an" if i % 2 else '街道"\\')) for i in range(30)
    ]
    lines += [b"{bad\n", line(rec(5)), line(rec(31, external_id='é"\\\u2028x'))]
    res = ingest(
        store,
        lines,
        origin=origin,
        actor=Actor('o"p', "终端\\1"),
        now=NOW,
        batch=7,
        workers=workers,
    )
    assert (res.accepted, res.duplicate, res.rejected) == (31, 1, 1)
    v = verify(store.engine)
    assert v.ok and v.checked == 32
    with store.engine.connect() as c:
        rows = c.execute(text("SELECT seq, case_id, detail FROM audit ORDER BY seq")).all()
        by_id = {
            r.id: r for r in c.execute(text("SELECT id, source, external_id, triage FROM cases"))
        }
    for r in rows:
        d = json.loads(r.detail)
        assert r.detail == dump_detail(d)  # the worker's detail is dump_detail's text
        assert d["origin"] == origin
        if r.case_id is not None:
            case = by_id[r.case_id]
            assert d == {
                "source": case.source,
                "external_id": case.external_id,
                "origin": origin,
                "triage": bool(case.triage),
            }
    target = rows[5].seq
    with store.engine.begin() as c:
        c.execute(
            text("UPDATE audit SET detail = replace(detail, 'PA-', 'PB-') WHERE seq = :s"),
            {"s": target},
        )
    v = verify(store.engine)
    assert not v.ok and v.bad_seq == target and "altered" in v.reason


def test_big_integers_and_nested_values_read_as_json_reads_them(store: Store) -> None:
    big = 123456789012345678901234567890
    lines = [
        b'{"source":"ping_an","external_id":%d,"title":"t","x":%d}\n' % (big, big),
        b'{"source":"ping_an","external_id":"n","title":"t","x":{"y":[%d,1.5]}}\n' % big,
        b'{"source":"ping_an","external_id":"f","title":"t","lat":1e400,"z":NaN}\n',
        b'{"source":"ping_an","external_id":"f2","title":"t","lat":30.25}\n',
    ]
    res = run(store, lines)
    assert res.accepted == 4
    cases = {c.external_id: c for c in store.cases("all")}
    assert str(big) in cases
    assert json.loads(cases[str(big)].raw)["extra"] == {"x": big}
    assert json.loads(cases["n"].raw)["extra"] == {"x": {"y": [big, 1.5]}}
    assert cases["f"].lat is None and cases["f"].triage
    assert cases["f2"].lat == 30.25 and not cases["f2"].triage


def test_dedupe_right_whatever_the_store_holds_around_a_batch(store: Store) -> None:
    # Odd ids first; then batches whose id range holds a few, or many, other ids.
    run(store, [line(rec(f"{i:03d}")) for i in range(1, 200, 2)])
    few = run(store, [line(rec(f"{i:03d}")) for i in range(10, 16)])
    assert (few.accepted, few.duplicate) == (3, 3)
    many = run(store, [line(rec("000")), line(rec("150")), line(rec("199"))])
    assert (many.accepted, many.duplicate) == (2, 1)
    again = run(store, [line(rec(f"{i:03d}")) for i in range(0, 200)])
    assert (again.accepted, again.duplicate) == (200 - 100 - 3 - 2, 105)
    assert len(store.cases("all")) == 200
