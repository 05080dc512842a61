"""Input the intake contract accepts must be accepted, and every line counted (issue 13.4).

Each test is first a reproduction of what broke: a non-scalar value in a triaged field, a
5,000-digit integer in an unknown field, 980-level nesting judged differently by path, lines
of \\x1c-\\x1f / NEL / U+3000 counted nowhere, one external_id spelled four ways making four
cases, a huge line read whole. On a real SQLite file and the real PostgreSQL (`store`), through
the file path, the forked worker, a real pipe and the feed path (`ingest_records`).
"""

from __future__ import annotations

import io
import json
import os
import threading
import tracemalloc
import unicodedata
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from tafang.sla.feeds import poll_due
from tafang.sla.policy import Policy
from tafang.store.cases import Store
from tafang.store.config import Deployment
from tafang.store.db import make_engine
from tafang.store.intake import ingest, ingest_records
from tafang.store.intake.bounded import LineSplitter, Oversized, read_lines, take
from tafang.store.intake.lines import parse_json
from werkzeug import Response

from tests.conftest import migrated_sqlite
from tests.test_intake import ACTOR, NOW, dead_letters, line, only_case, rec, run

DEEP = "[" * 980 + "]" * 980
TOO_DEEP = "JSON nested more than 64 levels deep; the limit is 64"


# ---- any value in a triaged field: accepted, flagged, raw kept ------------------------------
ODD = [{"level": "urgent"}, ["urgent"], {"a": [1, {"b": None}]}, [], {}]


TRIAGED = ("priority", "grid", "category", "reported_at", "received_at", "lat", "lon")


@pytest.mark.parametrize("odd", ODD, ids=["object", "array", "nested", "empty-array", "empty"])
def test_a_non_scalar_in_a_triaged_field_is_triage_with_the_raw_value(
    store: Store, odd: Any
) -> None:
    res = run(store, [line(rec(1, **dict.fromkeys(TRIAGED, odd)))])
    assert (res.accepted, res.rejected) == (1, 0), res.errors
    c = only_case(store)
    assert c.triage and c.priority == "normal"
    raw = json.loads(c.raw)
    for name in TRIAGED:
        assert name in c.triage_reason
        assert raw[name] == odd


@pytest.mark.parametrize("name", ["title", "location", "reporter", "description"])
def test_a_non_scalar_text_field_is_triage_when_the_other_text_is_there(
    store: Store, name: str
) -> None:
    r = {**rec(1, description="详情"), name: {"zh": "标题"}}
    res = run(store, [line(r)])
    assert res.accepted == 1, res.errors
    c = only_case(store)
    assert c.triage and json.loads(c.raw)[name] == {"zh": "标题"}


# ---- numbers and nesting: the same answer on every path -------------------------------------
def test_a_5000_digit_integer_in_an_unknown_field_is_kept_not_rejected(store: Store) -> None:
    digits = "9" * 5000
    raw_line = json.dumps(rec(1))[:-1] + f', "serial": {digits}, "n": -{digits}}}\n'
    res = run(store, [raw_line.encode()])
    assert (res.accepted, res.rejected) == (1, 0), res.errors
    extra = json.loads(only_case(store).raw)["extra"]
    assert extra == {"serial": digits, "n": "-" + digits}  # its digits, as text


def _deep_line(i: int, depth: int) -> bytes:
    inner = "[" * (depth - 1) + "]" * (depth - 1)
    return (json.dumps(rec(i))[:-1] + f', "x": {inner}}}\n').encode()


def test_nesting_within_the_limit_is_accepted_beyond_it_rejected(store: Store) -> None:
    res = run(store, [_deep_line(1, 64), _deep_line(2, 65), b'{"t": "[[[[' + b"[" * 100 + b'"}\n'])
    assert res.accepted == 1  # 64 levels, the record included
    assert res.errors[0] == (2, TOO_DEEP)
    assert res.errors[1] == (3, "missing required field 'source'")  # brackets in a string


def _paths(store: Store, lines: list[bytes], tmp_path: Path) -> dict[str, Any]:
    """The same lines through each way into intake: what each made of them."""
    out: dict[str, Any] = {}
    f = tmp_path / "in.jsonl"
    f.write_bytes(b"".join(lines))
    for name, workers in (("unpooled", 0), ("pooled", 1)):
        with f.open("rb") as fh:
            r = ingest(store, fh, origin=name, actor=ACTOR, now=NOW, batch=2, workers=workers)
        out[name] = (r.accepted + r.duplicate, r.rejected, r.blank, r.errors)
    rfd, wfd = os.pipe()
    threading.Thread(target=lambda: (os.write(wfd, b"".join(lines)), os.close(wfd))).start()
    with os.fdopen(rfd, "rb") as pipe:
        r = ingest(store, pipe, origin="pipe", actor=ACTOR, now=NOW, batch=2)
    out["pipe"] = (r.accepted + r.duplicate, r.rejected, r.blank, r.errors)
    return out


def test_980_levels_are_rejected_alike_on_every_path(store: Store, tmp_path: Path) -> None:
    lines = [line(rec(1)), _deep_line(2, 980), b"\x1c\n", line(rec(3)), _deep_line(4, 2)]
    seen = _paths(store, lines, tmp_path)
    expected = (3, 1, 1, [(2, TOO_DEEP)])
    assert seen == {"unpooled": expected, "pooled": expected, "pipe": expected}
    x: list[Any] = []
    for _ in range(978):
        x = [x]
    r = ingest_records(store, [(7, rec(5, x=x))], origin="feed:x", actor=ACTOR, now=NOW)
    assert r.errors == [(7, TOO_DEEP)]


def test_parse_json_depth_does_not_depend_on_the_call_stack() -> None:
    def nested(k: int) -> Any:
        return parse_json(DEEP) if k == 0 else nested(k - 1)

    assert nested(0).reason == nested(900).reason == TOO_DEEP


# ---- every line counted -----------------------------------------------------------------
SEPARATORS = ["", "   ", "\t", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\u3000", "\u2028", "\ufeff"]


def test_every_line_is_accepted_duplicate_rejected_or_blank(store: Store) -> None:
    lines = [line(rec(1)), line(rec(1)), b"{oops\n"]
    lines += [(s + "\n").encode() for s in SEPARATORS]
    lines += [b"\x1c{}\x1d\n", json.dumps(rec(2)).encode()]  # last: no newline
    res = run(store, lines)
    assert (res.accepted, res.duplicate, res.rejected, res.blank) == (2, 1, 2, len(SEPARATORS))
    assert res.summary == f"accepted=2 duplicate=1 rejected=2 blank={len(SEPARATORS)}"
    assert [n for n, _ in res.errors] == [3, 3 + len(SEPARATORS) + 1]


def test_lines_are_split_on_newline_only_not_on_what_splitlines_knows(
    store: Store, tmp_path: Path
) -> None:
    sep = "\x1c\x1d\x1e\x1f\x85\u2028\u2029\x0b\x0c\r"
    body = json.dumps(rec(1, title=f"a{sep}b"), ensure_ascii=False) + "\n"
    data = (body + "\u3000\n" + json.dumps(rec(2))).encode()
    seen = _paths(store, [data], tmp_path)
    assert {k: v[:3] for k, v in seen.items()} == dict.fromkeys(seen, (2, 0, 1))
    titles = {c.title for c in store.cases("all")}
    assert f"a{sep}b" in titles


# ---- the dedupe key: NFKC, stripped; the value as received kept --------------------------------
def test_one_external_id_in_four_spellings_is_one_case(store: Store) -> None:
    ids = ["café-１２", unicodedata.normalize("NFD", "café-12"), " café-12\u3000", "café-12"]
    res = run(store, [line(rec(None, external_id=x)) for x in ids])
    assert (res.accepted, res.duplicate) == (1, 3)
    c = only_case(store)
    assert c.external_id == "café-12"
    assert json.loads(c.raw)["external_id"] == "café-１２"  # as received
    res = run(store, [line(rec(None, external_id="CAFÉ-12"))])  # case is kept
    assert res.accepted == 1


def test_a_full_width_source_is_the_channel(store: Store) -> None:
    res = run(store, [line(rec(1, source="ｐｉｎｇ＿ａｎ"))])
    assert res.accepted == 1
    c = only_case(store)
    assert (c.source, c.triage) == ("ping_an", False)
    assert json.loads(c.raw) == {"source": "ｐｉｎｇ＿ａｎ"}


# ---- a line too long: rejected, never read whole ------------------------------------------------
def test_a_long_line_is_rejected_with_its_size_and_read_in_bounded_steps(
    store: Store, tmp_path: Path
) -> None:
    size = 48 * 1024 * 1024
    f = tmp_path / "big.jsonl"
    with f.open("wb") as fh:
        fh.write(line(rec(1)))
        fh.write(b'{"source": "ping_an", "title": "' + b"x" * size + b'"}\n')
        fh.write(line(rec(2)))
    tracemalloc.start()
    try:
        with f.open("rb") as fh:
            res = ingest(store, fh, origin="big.jsonl", actor=ACTOR, now=NOW, workers=0)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (res.accepted, res.rejected) == (2, 1)
    limit = 4 * 1024 * 1024
    assert res.errors == [(2, f"line is {size + 35} bytes long; the limit is {limit}")]
    assert peak < 3 * limit, peak  # the line (48 MiB) was never held whole
    (dl,) = dead_letters(store)
    assert dl.raw.startswith('{"source": "ping_an", "title": "xxx')
    assert dl.raw.endswith(f"…({size + 35} bytes; not kept)") and len(dl.raw) < 2000


def test_the_limit_is_the_configs(tmp_path: Path, gudang: Deployment) -> None:
    d = gudang.model_copy(
        update={"intake": gudang.intake.model_copy(update={"max_line_bytes": 1024})}
    )
    store = Store(make_engine(migrated_sqlite(tmp_path / "t.db")), d, clocks=Policy(d))
    res = run(store, [line(rec(1)), line(rec(2, description="x" * 2000))])
    assert res.accepted == 1
    assert res.errors[0][1].endswith("the limit is 1024")


@pytest.mark.parametrize("limit", [5, 16, 1000])
@given(
    data=st.lists(st.sampled_from([b"a", b"\n", b"bbbbbbbbbb", b"\n\n", b"c" * 40]), max_size=60)
)
def test_pipe_splitter_and_file_reader_agree(limit: int, data: list[bytes]) -> None:
    """The pipe's chunk splitter and the file reader cut the same lines, whatever the chunks."""
    blob = b"".join(data)
    from_file = list(read_lines(io.BufferedReader(io.BytesIO(blob)), limit))  # type: ignore[arg-type]
    split = LineSplitter(limit)
    from_pipe: list[Any] = []
    for chunk in data:
        from_pipe += split.feed(chunk)
    from_pipe += split.end()

    def shape(x: Any) -> Any:
        return ("over", x.size) if isinstance(x, Oversized) else x

    assert [shape(x) for x in from_pipe] == [shape(x) for x in from_file]
    whole = blob.split(b"\n")
    if whole and whole[-1] == b"":
        whole.pop()
    assert len(from_file) == len(whole)
    for i, (x, w) in enumerate(zip(from_file, whole, strict=True)):
        size = len(w) + (1 if i < len(whole) - 1 or blob.endswith(b"\n") else 0)
        assert (x.size if isinstance(x, Oversized) else len(x)) == size
        assert isinstance(x, Oversized) == (size > limit)


def test_a_batch_is_cut_by_bytes_as_well_as_by_lines() -> None:
    lines = iter([b"x" * 10] * 10 + [Oversized(10**9, 4096, b"x")] * 3)
    assert [len(take(lines, 5, max_bytes=25)) for _ in range(5)] == [3, 3, 3, 4, 0]


# ---- the property: for any bytes, the counts add up and nothing raises ---------------------------
_PIECES = st.one_of(
    st.binary(max_size=30),
    st.sampled_from([s.encode() for s in SEPARATORS] + [b"\xc2\x85", b"\xe3\x80\x80", b"\xff"]),
    st.builds(lambda i: line(rec(i))[:-1], st.integers(0, 5)),
    st.builds(
        lambda i, v: json.dumps(rec(i, priority=v, grid=v, zz=v)).encode(),
        st.integers(0, 5),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids),
            max_leaves=8,
        ),
    ),
)


@st.composite
def _input(draw: st.DrawFn) -> bytes:
    pieces = draw(st.lists(_PIECES, max_size=12))
    sep = draw(st.sampled_from([b"\n", b"\r\n"]))
    return sep.join(pieces) + draw(st.sampled_from([b"", b"\n"]))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=_input())
def test_for_any_bytes_the_counts_add_up_to_the_lines_read(
    tmp_path: Path, gudang: Deployment, data: bytes
) -> None:
    store = _sqlite(tmp_path, gudang)
    f = tmp_path / "any.jsonl"
    f.write_bytes(data)
    with f.open("rb") as fh:
        res = ingest(store, fh, origin="any", actor=ACTOR, now=NOW, batch=5, workers=0)
    lines_read = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    assert res.accepted + res.duplicate + res.rejected + res.blank == lines_read
    assert len(res.errors) == res.rejected
    assert all(1 <= n <= lines_read for n, _ in res.errors)


_STORES: dict[str, Store] = {}


def _sqlite(tmp_path: Path, gudang: Deployment) -> Store:
    """One SQLite store for the property's examples (each only adds lines): migrating a new
    one per example would be most of the run."""
    key = str(tmp_path)
    if key not in _STORES:
        _STORES.clear()
        engine = make_engine(migrated_sqlite(tmp_path / "prop.db"))
        _STORES[key] = Store(engine, gudang, clocks=Policy(gudang))
    return _STORES[key]


# ---- the same rules for a feed's page and the field API's body --------------------------------
def test_a_feed_page_with_a_huge_number_and_a_deep_item_is_read(
    httpserver: HTTPServer, tiny: Deployment, sqlite_url: str
) -> None:
    """Before: a page holding a 5,000-digit number was 'not JSON' and a 980-level one a
    RecursionError: the cursor never moved and every later report waited behind it. Now the
    number is kept and an item nested too deep is rejected alone; only a page nested beyond
    what any item may be (72 levels) fails, with the reason, as a page of bad JSON does."""
    from tests.test_feeds import MAPPING, T0, item, with_feeds

    def page(*items: str) -> str:
        return '{"code": 0, "data": {"items": [' + ", ".join(items) + "]}}"

    good = json.dumps(item(1))[:-1] + ', "serial": ' + "9" * 5000 + "}"
    deep = json.dumps(item(2))[:-1] + ', "x": ' + "[" * 65 + "]" * 65 + "}"
    pages = iter([page(good, deep), page(json.dumps(item(3))[:-1] + ', "x": ' + DEEP + "}")])
    httpserver.expect_request("/feed").respond_with_handler(
        lambda _req: Response(next(pages), content_type="application/json")
    )
    url = httpserver.url_for("/feed")
    feed = {"channel": "hotline", "url": url, "items_path": "data.items", "mapping": MAPPING}
    d = with_feeds(tiny, [feed])
    store = Store(make_engine(sqlite_url), d)
    (r,) = poll_due(store, d, now=T0).feeds
    assert (r.ok, r.accepted, r.rejected, r.cursor) == (True, 1, 1, "2"), r
    (r,) = poll_due(store, d, now=T0 + timedelta(minutes=1)).feeds
    assert not r.ok and "nested more than 72 levels" in r.error


def test_the_field_api_reads_bodies_by_the_same_rules(store: Store) -> None:
    from tests.test_field_api import serve

    store.sync_roster()
    api = next(serve_it := serve(store))
    try:
        deep = json.dumps(rec(1))[:-1] + ', "x": ' + DEEP + "}"
        r = api.post("/intake", raw=deep.encode(), caller="feed:12345")
        assert r.status_code == 422 and r.json()["errors"] == [{"line": 1, "reason": TOO_DEEP}]
        r = api.post("/intake", raw=("[" + deep + "]").encode(), caller="feed:12345")
        assert r.status_code == 400 and "nested more than 65" in r.json()["reason"]
        big = json.dumps(rec(2))[:-1] + ', "n": ' + "9" * 5000 + "}"
        body = (big + "\n\u3000\n\n" + json.dumps(rec(3)) + "\n").encode()
        r = api.post("/intake", raw=body, caller="feed:12345")
        assert r.status_code == 200, r.text
        assert (r.json()["accepted"], r.json()["blank"]) == (2, 2)
        r = api.post("/cases/1/confirm", raw=("[" * 5000).encode())
        assert r.status_code == 400 and "nested" in r.json()["reason"]
    finally:
        next(serve_it, None)
