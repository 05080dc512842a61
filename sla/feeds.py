"""HTTP JSON feeds polled into intake, one per `[[feeds]]` block of the deployment.

Why it is shaped like this:
- Items go through `store.intake.ingest_records`, the same path as `tafang ingest`: the
  same validation, dedupe on (source, external_id), dead letters and record entries.
- The cursor moves only after intake has committed, so a crash between the two repeats a
  page (which intake drops as duplicates) and never skips one.
- Each feed keeps its own schedule, failure count and last error in `feed_cursors`; a
  failing feed backs off exponentially while the others go on, and the console and the log
  can say which feed is down and why. Feeds are fetched concurrently, so one slow feed does
  not hold up another.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from tafang.sla.notify import redact
from tafang.store.cases import Actor, Store
from tafang.store.config import Deployment, Feed
from tafang.store.db import upsert
from tafang.store.intake import Rejected, ingest_records
from tafang.store.intake.limits import MAX_DEPTH
from tafang.store.intake.lines import parse_json
from tafang.store.models import FeedCursor

log = logging.getLogger("tafang.sla.feeds")

CURSORS = FeedCursor.__table__
BACKOFF_CAP = 300.0  # seconds; a feed polled less often than this keeps its own interval
_MISSING = object()


@dataclass(frozen=True)
class FeedResult:
    """One poll of one feed."""

    feed: str
    ok: bool
    fetched: int = 0
    accepted: int = 0
    duplicate: int = 0
    rejected: int = 0
    cursor: str = ""
    failures: int = 0
    error: str = ""
    next_poll_at: datetime | None = None


@dataclass(frozen=True)
class FeedReport:
    feeds: tuple[FeedResult, ...] = ()

    @property
    def accepted(self) -> int:
        return sum(f.accepted for f in self.feeds)

    @property
    def rejected(self) -> int:
        return sum(f.rejected for f in self.feeds)

    @property
    def failed(self) -> tuple[FeedResult, ...]:
        return tuple(f for f in self.feeds if not f.ok)


class FeedError(Exception):
    """A poll that gave nothing usable; the message is safe to store and show."""


def feed_names(deployment: Deployment) -> list[tuple[str, Feed]]:
    """Stable names for the `feed_cursors` rows: the channel, `channel#2` … for repeats."""
    seen: Counter[str] = Counter()
    out = []
    for f in deployment.feeds:
        seen[f.channel] += 1
        n = seen[f.channel]
        out.append((f.channel if n == 1 else f"{f.channel}#{n}", f))
    return out


# ---- mapping -----------------------------------------------------------------------------
def _pluck(obj: Any, path: str) -> Any:
    """`a.b.c` inside nested objects; _MISSING when any step is absent."""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            return _MISSING
        cur = cur[part]
    return cur


def _as_id(v: Any) -> Any:
    """Feed ids are often numbers; intake keys are text (1043.0 -> "1043")."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float) and math.isfinite(v):
        return str(int(v)) if v.is_integer() else repr(v)
    return v


def map_item(item: Any, feed: Feed) -> Any:
    """A feed item as an intake record: mapped fields renamed, the rest kept as they are.

    Not an object? Handed on unchanged, so intake dead-letters it with its reason.
    """
    if not isinstance(item, dict):
        return item
    used = {src for src in feed.mapping.values() if "." not in src}
    rec: dict[str, Any] = {k: v for k, v in item.items() if k not in used}
    for dst, src in feed.mapping.items():
        v = _pluck(item, src)
        if v is not _MISSING:
            rec[dst] = v
    if rec.get("source") in (None, ""):
        rec["source"] = feed.channel
    if rec.get("external_id") in (None, ""):
        for src in (feed.cursor_field, "id"):
            v = _pluck(item, src)
            if v is not _MISSING and v not in (None, ""):
                rec["external_id"] = v
                break
    if "external_id" in rec:
        rec["external_id"] = _as_id(rec["external_id"])
    return rec


def _cursor_of(items: Sequence[Any], feed: Feed) -> str | None:
    """The last item's cursor field (items without it are skipped), as text."""
    for item in reversed(items):
        v = _pluck(item, feed.cursor_field)
        if v is not _MISSING and v is not None and v != "":
            v = _as_id(v)
            return v if isinstance(v, str) else str(v)
    return None


# ---- fetching ------------------------------------------------------------------------------
def fetch(client: httpx.Client, feed: Feed, cursor: str) -> list[Any]:
    """GET one page of the feed; raise FeedError (redacted) for anything unusable."""
    shown = redact(feed.url)
    params = {feed.cursor_param: cursor} if cursor else None
    try:
        r = client.get(
            feed.url,
            params=params,
            timeout=feed.timeout,
            headers={"Accept": "application/json"},
        )
    except Exception as e:  # refused, timeout, bad URL …: the feed is down, not us
        raise FeedError(redact(f"GET {shown}: {type(e).__name__}: {e}")) from None
    if not 200 <= r.status_code < 300:
        snippet = " ".join(r.text[:200].split())
        raise FeedError(redact(f"GET {shown}: HTTP {r.status_code}: {snippet}"))
    # Read as intake reads a line (a 5,000-digit number is kept, not a reason to refuse the
    # page forever; nesting is bounded); a record nested too deep is then rejected alone.
    body = parse_json(r.text, depth=MAX_DEPTH + 8)
    if isinstance(body, Rejected):
        snippet = " ".join(r.text[:80].split())
        why = body.reason.removeprefix("not valid JSON: ")
        raise FeedError(redact(f"GET {shown}: answer is not JSON ({why}): {snippet!r}"))
    items = _pluck(body, feed.items_path) if feed.items_path else body
    where = repr(feed.items_path) if feed.items_path else "the answer"
    if items is _MISSING:
        raise FeedError(f"GET {shown}: the answer has no {where}")
    if not isinstance(items, list):
        raise FeedError(f"GET {shown}: {where} is not a list but {type(items).__name__}")
    return items


# ---- state ---------------------------------------------------------------------------------
def _save(
    store: Store,
    name: str,
    *,
    cursor: str,
    now: datetime,
    failures: int,
    error: str,
    next_poll_at: datetime,
) -> None:
    """Upsert the feed's `feed_cursors` row (cursor, health, next poll) in its own commit."""
    values = dict(
        feed=name,
        cursor=cursor,
        updated_at=now,
        failures=failures,
        last_error=error[:1000],
        next_poll_at=next_poll_at,
    )
    with store.engine.begin() as conn:
        conn.execute(upsert(conn, CURSORS, values, "feed"))


def _state(store: Store) -> dict[str, Any]:
    with store.read_engine.connect() as conn:
        return {r.feed: r for r in conn.execute(select(CURSORS))}


def _backoff(feed: Feed, failures: int) -> float:
    return min(max(BACKOFF_CAP, feed.interval), feed.interval * 2**failures)


def _poll_one(
    store: Store,
    name: str,
    feed: Feed,
    st: Any,
    client: httpx.Client,
    now: datetime,
    actor: Actor,
) -> FeedResult:
    cursor = st.cursor if st is not None else ""
    failures = st.failures if st is not None else 0
    try:
        items = fetch(client, feed, cursor)
        records = [(i, map_item(item, feed)) for i, item in enumerate(items, 1)]
        res = ingest_records(store, records, origin=f"feed:{name}", actor=actor, now=now)
    except Exception as e:  # the feed (or the store) failed: back off, keep the cursor
        err = str(e) if isinstance(e, FeedError) else redact(f"intake: {type(e).__name__}: {e}")
        failures += 1
        nxt = now + timedelta(seconds=_backoff(feed, failures))
        _save(store, name, cursor=cursor, now=now, failures=failures, error=err, next_poll_at=nxt)
        log.warning("feed %s failed (%d in a row): %s", name, failures, err)
        return FeedResult(
            name, False, cursor=cursor, failures=failures, error=err, next_poll_at=nxt
        )
    # Intake has committed: only now may the cursor move.
    new_cursor = _cursor_of(items, feed) or cursor
    nxt = now + timedelta(seconds=feed.interval)
    _save(store, name, cursor=new_cursor, now=now, failures=0, error="", next_poll_at=nxt)
    if failures:
        log.info("feed %s is back after %d failure(s)", name, failures)
    if res.rejected:
        log.warning("feed %s: %d item(s) rejected to dead letters", name, res.rejected)
    return FeedResult(
        name,
        True,
        fetched=len(items),
        accepted=res.accepted,
        duplicate=res.duplicate,
        rejected=res.rejected,
        cursor=new_cursor,
        next_poll_at=nxt,
    )


def poll_due(
    store: Store,
    deployment: Deployment,
    *,
    now: datetime | None = None,
    client: httpx.Client | None = None,
    actor: Actor | None = None,
    max_workers: int = 4,
) -> FeedReport:
    """Poll every feed whose time has come (never polled, interval passed, backoff over)."""
    now = now or datetime.now(UTC)
    state = _state(store)
    due = []
    for name, feed in feed_names(deployment):
        st = state.get(name)
        if st is None or st.next_poll_at is None or st.next_poll_at <= now:
            due.append((name, feed, st))
    if not due:
        return FeedReport()
    actor = actor or Actor(operator="feed")
    own = client is None
    http = client or httpx.Client(follow_redirects=True)
    try:
        with ThreadPoolExecutor(
            max_workers=max(1, min(max_workers, len(due))), thread_name_prefix="feed"
        ) as pool:
            futures = [
                pool.submit(_poll_one, store, name, feed, st, http, now, actor)
                for name, feed, st in due
            ]
            results = [f.result() for f in futures]
    finally:
        if own:
            http.close()
    return FeedReport(tuple(results))


def feed_status(store: Store, deployment: Deployment) -> list[dict[str, Any]]:
    """Each configured feed with its cursor, failures and last error, for the console."""
    state = _state(store)
    out = []
    for name, feed in feed_names(deployment):
        st = state.get(name)
        out.append(
            {
                "feed": name,
                "channel": feed.channel,
                "url": redact(feed.url),
                "cursor": st.cursor if st else "",
                "failures": st.failures if st else 0,
                "last_error": st.last_error if st else "",
                "updated_at": st.updated_at if st else None,
                "next_poll_at": st.next_poll_at if st else None,
            }
        )
    return out
