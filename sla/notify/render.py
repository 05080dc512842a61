"""The Chinese text of a notification: one event as a message, many as a digest.

Format-neutral: a format module (`dingtalk`, …) wraps this text in its own body. Untrusted
text (titles, codes, names from feeds) goes through `one_line`, i.e. the one sanitiser
`tafang.store.text.safe`, folded onto one line so it cannot forge extra lines.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from tafang.store.config import LEVELS, Contact, Deployment
from tafang.store.labels import labels
from tafang.store.text import safe

ZH = labels("zh")  # level and clock names: the one catalogue (store/locale/zh.toml)

_BREAKS = re.compile(r"[\r\n\t]+")


def one_line(value: Any, limit: int = 80) -> str:
    """Untrusted text for a chat line: line breaks folded to a space, every other control /
    bidi / invisible character made visible by `safe`, cut at `limit` characters."""
    s = safe(_BREAKS.sub(" ", "" if value is None else str(value))).strip()
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _duration_zh(ms: Any) -> str:
    try:
        secs = max(0, int(float(ms) / 1000))
    except (TypeError, ValueError):
        return ""
    if secs < 60:
        return f"{secs} 秒"
    if secs < 3600:
        return f"{secs // 60} 分 {secs % 60} 秒"
    return f"{secs // 3600} 小时 {secs % 3600 // 60} 分"


def _local_time(value: Any, tz: ZoneInfo) -> str:
    if not value:
        return ""
    try:
        t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return one_line(value, 40)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.astimezone(tz).strftime("%m-%d %H:%M:%S")


class Names:
    """Chinese labels for an event's codes, from the deployment."""

    def __init__(self, d: Deployment) -> None:
        self.d = d
        self.tz = ZoneInfo(d.timezone)

    def category(self, code: Any) -> str:
        c = self.d.categories_by_code.get(str(code)) if code else None
        return f"{c.code} {c.name}" if c else one_line(code or "未分类", 40)

    def grid(self, code: Any) -> str:
        g = self.d.grids_by_code.get(str(code)) if code else None
        return f"{g.label}（{g.code}）" if g else one_line(code or "未知网格", 40)

    def grid_short(self, code: Any) -> str:
        g = self.d.grids_by_code.get(str(code)) if code else None
        return g.label if g else one_line(code or "未知网格", 20)

    def level(self, event: dict[str, Any]) -> str:
        """The level's name: by `level_name`, else by the `level` number, else as given."""
        name = event.get("level_name")
        if name in LEVELS:
            return ZH.level(name)
        lv = event.get("level")
        if isinstance(lv, int) and 0 <= lv < len(LEVELS):
            return ZH.level(lv)
        return one_line(name or "", 20)

    def circle(self, code: Any) -> str:
        """A circle's name by its code (any level of the tower), else the code as given."""
        t = self.d.tower
        for c in (*t.enforcement_circles, *t.emergency_circles, *t.risk_circles):
            if c.code == code:
                return c.name
        return one_line(code or "", 40)

    @staticmethod
    def clock(clock: Any) -> str:
        """An SLA clock's name ("dispatch:2", a reopened case's later cycle, stays as is)."""
        return ZH.get(f"clock.{clock}") or one_line(clock, 20)


TAGS = {"escalation": "【超时升级】", "outbox_stuck": "【通知未送达】"}


def _headline(ev: dict[str, Any]) -> str:
    kind = ev.get("kind", "escalation")
    tag = TAGS.get(kind) or f"【{one_line(kind, 20)}】"
    case = f"案件 #{ev['case_id']}" if ev.get("case_id") is not None else "通知"
    return f"{tag}{case} {one_line(ev.get('title'))}".rstrip()


def mobiles(contact: Contact, events: Sequence[dict[str, Any]] = ()) -> list[str]:
    """Who a message @-mentions: the contact's mobiles, then each event's own (`mention`:
    the officer told of their case), once each."""
    more = [m for ev in events for m in (ev.get("mention") or ()) if isinstance(m, str)]
    return list(dict.fromkeys([*contact.at_mobiles, *more]))


def _mentions(contact: Contact, ev: dict[str, Any] | None = None) -> str:
    return " ".join(f"@{m}" for m in mobiles(contact, [ev] if ev else []))


def render_text(ev: dict[str, Any], names: Names, contact: Contact) -> str:
    """The text of one event, in Chinese."""
    from tafang.sla.notify.told import KINDS, render_told

    if ev.get("kind") in KINDS:
        return render_told(ev, names, contact)
    if ev.get("kind") == "meeting_report":  # sla/report_schedule.py
        return f"【会商报告】{one_line(ev.get('title'), 80)}\n文件：{one_line(ev.get('path'), 200)}"
    if ev.get("kind") == "record_anchor":  # sla/witness.py: the record's head, kept outside
        anchor = one_line(f"{ev.get('seq')}:{ev.get('mac')}", 100)
        return f"【记录锚点】{one_line(ev.get('at'), 40)}\ntafang audit verify --anchor {anchor}"
    lines = [_headline(ev)]
    lines.append(f"升级至：{names.level(ev)}（{one_line(contact.name, 40)}）")
    if ev.get("circle"):
        lines.append(f"所在圈：{names.circle(ev.get('circle'))}")
    if "category" in ev:
        lines.append(f"类别：{names.category(ev.get('category'))}")
    if "grid" in ev:
        lines.append(f"网格：{names.grid(ev.get('grid'))}")
    clock = ev.get("clock")
    if clock:
        due = _local_time(ev.get("due_at"), names.tz)
        late = _duration_zh(ev.get("lateness_ms"))
        part = f"超时环节：{names.clock(clock)}"
        detail = "，".join(x for x in (f"应于 {due} 前完成" if due else "", f"已超 {late}") if x)
        lines.append(f"{part}（{detail}）" if detail else part)
    if contact.at_mobiles:
        lines.append(_mentions(contact))
    return "\n".join(lines)


def _digest_line(ev: dict[str, Any], names: Names) -> str:
    bits = [f"#{ev.get('case_id', '?')} {one_line(ev.get('title'), 40)}"]
    if "grid" in ev:
        bits.append(names.grid_short(ev.get("grid")))
    bits.append(f"升级至{names.level(ev)}")
    clock = ev.get("clock")
    if clock:
        late = _duration_zh(ev.get("lateness_ms"))
        bits.append(f"{names.clock(clock)}超时 {late}".rstrip())
    return "- " + " · ".join(bits)


def render_digest_markdown(
    events: Sequence[dict[str, Any]], names: Names, contact: Contact, listed: int
) -> tuple[str, str]:
    """(title, markdown) of a digest: one line per case, the rest counted."""
    n = len(events)
    title = f"【超时升级汇总】{n} 件"
    lines = [f"#### 【超时升级汇总】共 {n} 件（{one_line(contact.name, 40)}）", ""]
    lines += [_digest_line(ev, names) for ev in events[:listed]]
    if n > listed:
        lines.append(f"- 另有 {n - listed} 件，请在值班台查看")
    told = mobiles(contact, events)
    if told:
        lines += ["", " ".join(f"@{m}" for m in told)]
    return title, "\n".join(lines)
