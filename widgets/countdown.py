"""How an SLA clock reads: its countdown text ("0:59", "-1:23").

No rule lives here: whether a clock is ok, at risk or breached is the store's one rule
(`store.clocks.light_at`), which the console applies and hands the widgets as plain data.
"""

from __future__ import annotations

from datetime import datetime


def countdown(due: datetime | None, now: datetime) -> str:
    """Time left as "0:59", "1:02:03", "13h05m", "3d04h"; overdue with a minus: "-1:23".

    Whole seconds, truncated toward the deadline, so a 60 s clock reads "1:00" at receipt,
    "0:59" a moment later and "0:00" (already red) at the deadline itself. At most 8 cells.
    """
    if due is None:
        return ""
    left = (due - now).total_seconds()
    s = int(abs(left))
    sign = "-" if left < 0 and s > 0 else ""  # less than a second over still reads "0:00"
    if s < 3600:
        body = f"{s // 60}:{s % 60:02d}"
    elif s < 36000:
        body = f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    elif s < 86400:
        body = f"{s // 3600}h{s % 3600 // 60:02d}m"
    else:
        body = f"{s // 86400}d{s % 86400 // 3600:02d}h"
    return sign + body
