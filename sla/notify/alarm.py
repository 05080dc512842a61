"""Notices stuck undelivered are themselves escalated: the centre hears of it another way.

Once the oldest undelivered notice has waited `[notices] alarm_after_minutes`, one alarm
notice is queued for the `[notices] alarm` contact (another way to reach the centre than the
robots that fail), else for the centre's own contact. Its key names the oldest stuck notice,
so each stuck episode raises one alarm however often this runs; the alarm is itself retried
until delivered, and alarms never alarm about themselves.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from tafang.store.cases import Store
from tafang.store.config import Deployment
from tafang.store.models import Outbox
from tafang.store.outbox import enqueue

OUTBOX = Outbox.__table__
ALARM = "alarm"  # the outbox `contact` of an alarm routed to `[notices] alarm`
KIND = "outbox_stuck"


def alarm_level(d: Deployment) -> str:
    """Where the alarm goes: the configured other contact, else the centre's robot."""
    return ALARM if d.notices.alarm is not None else "centre"


def raise_alarm(store: Store, d: Deployment, now: datetime) -> str | None:
    """Queue the alarm for the current stuck episode (once); its key, or None when nothing
    has waited long enough."""
    after = timedelta(minutes=d.notices.alarm_after_minutes)
    c = OUTBOX.c
    stuck = (c.status == "pending", c.created_at <= now - after, c.key.not_like(f"{KIND}-%"))
    with store.read_engine.connect() as conn:
        oldest = conn.execute(
            select(c.id, c.created_at).where(*stuck).order_by(c.created_at, c.id).limit(1)
        ).first()
        if oldest is None:
            return None
        n = conn.execute(select(func.count()).where(*stuck)).scalar_one()
    minutes = int((now - oldest.created_at).total_seconds() // 60)
    key = f"{KIND}-{oldest.id}"
    event = {
        "kind": KIND,
        "case_id": None,
        "title": f"{n} 条升级通知已超过 {minutes} 分钟未送达，请检查值班机器人；"
        "`tafang outbox` 列出它们",
        "count": n,
        "minutes": minutes,
        "oldest_notice": oldest.id,
        "oldest_at": oldest.created_at.isoformat(),
        "level_name": "centre",
    }
    with store.engine.begin() as conn:
        enqueue(conn, key=key, contact=alarm_level(d), case_id=None, event=event, now=now)
    return key
