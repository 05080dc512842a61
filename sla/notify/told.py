"""The text telling an officer of their case (store/tell.py): dispatch, reassign, rework,
escalation, and a squad mate's request for support; the officer @-mentioned by mobile."""

from __future__ import annotations

from typing import Any

from tafang.sla.notify.render import ZH, Names, _local_time, _mentions, one_line
from tafang.store.config import Contact

MOVE_OF = {
    "dispatch": "dispatch",
    "reassign": "reassign",
    "rework": "rework",
    "escalation_told": "escalate",
    "support": "support",
}
"""Event kinds that tell an officer, and the move each tells of (its name, from the
catalogue, is the message's tag)."""
KINDS = frozenset(MOVE_OF)


def render_told(ev: dict[str, Any], names: Names, contact: Contact) -> str:
    """The officer's message: case, officer, place, category, deadline (and circle)."""
    tag = f"【{ZH.t('action.' + MOVE_OF.get(str(ev.get('kind')), 'note'))}】"
    lines = [f"{tag}案件 #{ev.get('case_id')} {one_line(ev.get('title'))}".rstrip()]
    who = f"{one_line(ev.get('officer'), 16)} {one_line(ev.get('officer_name'), 16)}".strip()
    lines.append(f"{'请求人' if ev.get('kind') == 'support' else '承办队员'}：{who}")
    place = one_line(ev.get("location"), 80)
    lines.append(f"地点：{place + '，' if place else ''}网格 {names.grid(ev.get('grid'))}")
    lines.append(f"类别：{names.category(ev.get('category'))}")
    if ev.get("circle"):
        lines.append(f"升级至：{names.level(ev)}（{names.circle(ev.get('circle'))}）")
    due = _local_time(ev.get("due_at"), names.tz)
    if due:
        clock = ev.get("deadline_clock")
        lines.append(f"时限：{names.clock(clock) + ' ' if clock else ''}应于 {due} 前")
    if ev.get("reason"):
        lines.append(f"说明：{one_line(ev.get('reason'), 200)}")
    mention = _mentions(contact, ev)
    if mention:
        lines.append(mention)
    return "\n".join(lines)
