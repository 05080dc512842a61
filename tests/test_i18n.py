"""Store refusals reach the dispatcher in the UI language, with local times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tafang.console.i18n import Strings
from tafang.store.cases import Actor, Conflict, Refused, Store

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)


def _refusal(store: Store, *args, **kw) -> Refused:  # type: ignore[no-untyped-def]
    with pytest.raises(Refused) as e:
        store.act(*args, **kw)
    return e.value


def test_refusals_in_chinese_and_english(store: Store) -> None:
    d01 = Actor("d01", "t1")
    cid = store.create({"title": "x", "grid": store.d.tower.grids[0].code}, d01, now=T0).id
    zh, en = Strings("zh"), Strings("en")
    e = _refusal(store, cid, "close", Actor("c01", "t1"))  # a checker: the state refuses
    assert zh.refusal(e, SH) == (f"案件 {cid} 当前为「待受理」，不能结案；结案要求案件为「已处置」")
    assert en.refusal(e, SH) == str(e)
    assert "带班领导" in zh.refusal(_refusal(store, cid, "hold", d01, reason="r"), SH)
    assert "9-99" in zh.refusal(_refusal(store, cid, "dispatch", d01, to="9-99"), SH)
    store.act(cid, "ack", d01, now=T0 + timedelta(seconds=5))
    e = _refusal(store, cid, "ack", Actor("d02", "t2"), expected_version=1)
    assert isinstance(e, Conflict)
    assert zh.refusal(e, SH) == (
        f"案件 {cid} 已于 09:00:05 被 d01（终端 t1）修改，现为「已受理」，请核对后再操作"
    )
    assert "at 09:00:05" in en.refusal(e, SH)
