"""The intake record's fields and the hard limits whose breach rejects a line (DESIGN §4)."""

from __future__ import annotations

from datetime import timedelta

MAX_LINE_BYTES = 4 * 1024 * 1024  # the default of config [intake] max_line_bytes
LINE_BYTES_CEILING = 64 * 1024 * 1024  # the most that setting may be
MAX_DEPTH = 64  # JSON nesting (the record itself is level 1); deeper is rejected
MAX_SOURCE = 64  # column sizes: a longer key could not be stored exactly
MAX_EXTERNAL_ID = 200
MAX_TEXT = 100_000
MAX_DESCRIPTION = 1_000_000
MAX_AHEAD = timedelta(days=1)  # a received_at further ahead of our clock is not believed
MAX_BEHIND = timedelta(days=7)  # a feed catches up within a week: older is kept but flagged
MAX_BELIEVED = timedelta(days=3653)  # older is a wrong clock (1970 unset, 1800 a default)

KNOWN_FIELDS = frozenset(
    (
        "source",
        "external_id",
        "title",
        "description",
        "category",
        "grid",
        "location",
        "priority",
        "reported_at",
        "received_at",
        "reporter",
        "lat",
        "lon",
    )
)
HISTORY_TIMES = ("acknowledged_at", "dispatched_at", "arrived_at", "handled_at", "closed_at")
HISTORY_BY = ("acknowledged_by", "dispatched_by", "arrived_by", "handled_by", "closed_by")
HISTORY_COUNTS = ("returns", "reworks", "extensions", "supervisions")
HISTORY_FIELDS = frozenset(
    ("status", "assignee", "escalation_level", *HISTORY_TIMES, *HISTORY_BY, *HISTORY_COUNTS)
)
"""A history record (`tafang ingest --history`) may carry these too; a live intake keeps
them, like any field it does not know, in the case's raw values (a feed cannot close a case)."""
TEXT_LIMITS = {
    "title": MAX_TEXT,
    "description": MAX_DESCRIPTION,
    "location": MAX_TEXT,
    "reporter": MAX_TEXT,
}
TEXT_ITEMS = tuple(TEXT_LIMITS.items())
