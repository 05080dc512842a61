"""One label catalogue per language (tafang.store.labels), and nothing else holds labels."""

from __future__ import annotations

import ast
import re
import string
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tafang.console.cli import main
from tafang.console.i18n import Strings
from tafang.sla.policy import Policy
from tafang.sla.reports import render_report
from tafang.store.cases import Actor, Store
from tafang.store.config import LEVELS, Contact, Deployment
from tafang.store.db import make_engine
from tafang.store.labels import labels, table

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("console", "widgets", "sla", "store")
CJK = re.compile(r"[\u4e00-\u9fff]")
T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
LEVEL_NAMES_ZH = ("网格", "综合执法圈", "应急管理圈", "风险防控圈", "指挥中心")


def _fields(s: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(s) if f}


def test_every_key_in_both_languages() -> None:
    zh, en = table("zh"), table("en")
    assert zh and en
    assert sorted(set(zh) - set(en)) == [] and sorted(set(en) - set(zh)) == []


def test_same_placeholders_in_both_languages() -> None:
    zh, en = table("zh"), table("en")
    # English leaves refusal templates empty on purpose: the store's own words are shown.
    differ = [k for k in zh if en[k] and zh[k] and _fields(zh[k]) != _fields(en[k])]
    assert differ == []


def test_lookup_and_fallbacks() -> None:
    zh = labels("zh")
    assert zh.level(1) == zh.level("enforcement") == "综合执法圈"
    assert [zh.level(n) for n in range(len(LEVELS))] == list(LEVEL_NAMES_ZH)
    assert zh.clock("resolve") == "办结" and labels("en").clock("resolve") == "resolve"
    assert zh.t("no.such.key") == "no.such.key"
    assert labels("fr").lang == "en"
    assert zh.t("refused.illegal", id=1, status="a", action="b", allowed="c").startswith("案件 1")
    assert labels("en").get("refused.illegal") is None  # empty: the store's words instead
    assert zh.officer("on_scene") == zh.t("officer_short.on_scene") == "处置中"


def _code_words() -> set[str]:
    """Every code the catalogue names: statuses, clocks, officer states, actions, …"""
    words = set(LEVELS) | {"zh", "en"}
    for key in table("en"):
        words.add(key.rsplit(".", 1)[-1])
    return words


def _label_tables(path: Path, codes: set[str]) -> list[str]:
    """Dict literals mapping label codes (or languages) to Chinese text: two entries or more
    whose key is a code and whose value is a Chinese literal (or holds some, for "zh")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Dict):
            continue
        hits = 0
        for k, v in zip(node.keys, node.values, strict=True):
            if not (isinstance(k, ast.Constant) and k.value in codes):
                continue
            inner = ast.walk(v) if k.value in ("zh", "en") else [v]
            if any(isinstance(n, ast.Constant) and CJK.search(str(n.value)) for n in inner):
                hits += 2 if k.value == "zh" else 1
        if hits >= 2:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def test_no_label_table_outside_the_catalogue() -> None:
    codes = _code_words()
    found = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" not in path.parts:
                found += _label_tables(path, codes)
    assert found == []


def test_the_detector_sees_a_table() -> None:
    sample = ROOT / "tests" / "__label_sample.py"
    try:
        sample.write_text(
            'X = {"resolve": "处置", "respond": "响应"}\n'
            'Y = {"zh": {"a": "甲"}, "en": {"a": "A"}}\n'
            'Z = {"title": f"{a}号", "grid": g, "status": "new"}\n',  # a record, not labels
            encoding="utf-8",
        )
        found = _label_tables(sample, _code_words())
        assert found == ["tests/__label_sample.py:1", "tests/__label_sample.py:2"]
    finally:
        sample.unlink()


@pytest.fixture
def escalated(sqlite_url: str, gudang: Deployment) -> tuple[str, int]:
    engine = make_engine(sqlite_url)
    store = Store(engine, gudang, clocks=Policy(gudang))
    d01 = Actor("d01", "t1")
    cid = store.create({"title": "x", "grid": gudang.tower.grids[0].code}, d01, now=T0).id
    store.act(cid, "escalate", d01, reason="上报", now=T0)
    engine.dispose()
    return sqlite_url, cid


def test_level_and_resolve_names_agree_everywhere(
    escalated: tuple[str, int],
    gudang: Deployment,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tafang.sla.notify.render import Names, render_text

    url, cid = escalated
    zh = labels("zh")
    level, resolve = zh.level(1), zh.clock("resolve")
    assert (level, resolve) == ("综合执法圈", "办结")
    # the console: its strings and the words it hands the widgets
    t = Strings("zh")
    assert t("level.1") == level and t.words().clock("resolve") == resolve
    # the CLI's `case show`
    monkeypatch.setenv("TAFANG_DB", url)
    monkeypatch.delenv("TAFANG_CONFIG", raising=False)
    assert main(["case", "show", str(cid)]) == 0
    out = capsys.readouterr().out
    assert f"level 1 (enforcement · {level})" in out and f"{resolve} " in out
    # the report
    engine = make_engine(url)
    store = Store(engine, gudang, clocks=Policy(gudang))
    report = render_report(store, gudang, "daily", day="2026-11-25", now=T0)
    engine.dispose()
    assert f"按{level}" in report
    # a notification
    contact = Contact(level="enforcement", name="值班", url="http://x")
    ev = {"case_id": cid, "title": "x", "level": 1, "clock": "resolve"}
    text = render_text(ev, Names(gudang), contact)
    assert f"升级至：{level}" in text and f"超时环节：{resolve}" in text


def test_widgets_hold_no_chinese_text() -> None:
    """Widgets get their words as data: no Chinese literal outside docstrings and comments."""
    found = []
    for path in sorted((ROOT / "widgets").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and id(n) not in docs and CJK.search(str(n.value)):
                found.append(f"{path.relative_to(ROOT)}:{n.lineno}")
    assert found == []
