"""The daemon's meeting reports: 日会商 at 08:30 for the day before, 周研判 on Monday for the
week before, 月分析 on the 1st for the month before (config `[reports]`, Asia/Shanghai).

Every minute the daemon asks `write_due`: for each kind, the latest firing time not after
now names the period it reports on; if that period's files are not in the folder yet they
are written (each through a temporary file and a rename, the HTML last, so its presence means
done) and one notice goes into the outbox for the `announce` contact (its key names the
period, so a second daemon or a restart never announces twice). A daemon that was down at
08:30 writes the report when it comes back; periods older than the latest are not caught up.
`tafang daemon --once` does not write reports (they keep their schedule in the running daemon).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from tafang.sla.meeting import inputs_for
from tafang.sla.meeting_render import render
from tafang.store.cases import Store
from tafang.store.config import LEVELS, Deployment
from tafang.store.db import default_dir
from tafang.store.outbox import enqueue

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Due:
    """A report to write: its kind, a day inside its period, and the files' stem."""

    kind: str
    day: date
    stem: str


def _hm(s: str) -> tuple[int, int]:
    h, m = s.split(":")
    return int(h), int(m)


def latest(d: Deployment, now: datetime) -> list[Due]:
    """Per configured kind, the period its latest firing time (≤ now) reports on."""
    r = d.reports
    local = now.astimezone(ZoneInfo(d.timezone))
    today = local.date()
    out: list[Due] = []
    if r.daily:
        h, m = _hm(r.daily)
        fire = today if (local.hour, local.minute) >= (h, m) else today - timedelta(days=1)
        day = fire - timedelta(days=1)
        out.append(Due("daily", day, f"daily-{day.isoformat()}"))
    if r.weekly:
        wd, hm = r.weekly.split(" ")
        h, m = _hm(hm)
        back = (today.weekday() - WEEKDAYS.index(wd)) % 7
        fire = today - timedelta(days=back)
        if back == 0 and (local.hour, local.minute) < (h, m):
            fire -= timedelta(days=7)
        monday = fire - timedelta(days=7)
        monday -= timedelta(days=monday.weekday())
        out.append(Due("weekly", monday, f"weekly-{monday.isoformat()}"))
    if r.monthly:
        dom, hm = r.monthly.split(" ")
        h, m = _hm(hm)
        fire = today.replace(day=int(dom))
        if (today.day, local.hour, local.minute) < (int(dom), h, m):
            fire = (fire.replace(day=1) - timedelta(days=1)).replace(day=int(dom))
        first = (fire.replace(day=1) - timedelta(days=1)).replace(day=1)
        out.append(Due("monthly", first, f"monthly-{first:%Y-%m}"))
    return out


def write_due(store: Store, now: datetime | None = None) -> list[Path]:
    """Write and announce the reports that are due and not yet in the folder; their HTML
    paths (the first format's, when HTML is not configured)."""
    d = store.d
    now = now or datetime.now(UTC)
    folder = report_folder(store)
    written: list[Path] = []
    for due in latest(d, now):
        fmts = d.reports.formats
        last = "html" if "html" in fmts else fmts[-1]
        done = folder / f"{due.stem}.{last}"
        if done.exists():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        i = inputs_for(store, d, due.kind, day=due.day, now=now)
        for fmt in sorted(fmts, key=lambda f: f == last):  # the marker file last
            _write(folder / f"{due.stem}.{fmt}", render(i, fmt))
        _announce(store, due, i.title, done, now)
        written.append(done)
    return written


def report_folder(store: Store) -> Path:
    """`[reports] folder`; a relative one is under systemd's StateDirectory when the daemon
    runs as a service, else beside a SQLite store's file, else in the user data dir (never
    the working directory: a daemon started from a checkout must not write into it)."""
    folder = Path(store.d.reports.folder)
    if folder.is_absolute():
        return folder
    state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    if state:
        return Path(state) / folder
    db = store.engine.url.database if store.engine.dialect.name == "sqlite" else None
    if db and db != ":memory:" and not db.startswith("file:"):
        return Path(db).resolve().parent / folder
    return default_dir() / folder


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(text.encode("utf-8", "backslashreplace"))
    os.replace(tmp, path)


def _announce(store: Store, due: Due, title: str, path: Path, now: datetime) -> None:
    level = store.d.reports.announce
    if not level or level not in LEVELS or store.d.contact_for(LEVELS.index(level)) is None:
        return
    event = {
        "kind": "meeting_report",
        "title": f"{title} 已生成",
        "path": str(path.resolve()),
        "level_name": level,
    }
    with store.engine.begin() as conn:
        enqueue(conn, key=f"report-{due.stem}", contact=level, case_id=None, event=event, now=now)
