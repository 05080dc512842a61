"""The knobs of delivery (timeouts, retries, lease, rate window, digest size), and where the
robots' secrets are read from (`read_secret`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass(frozen=True)
class NotifySettings:
    """Knobs of delivery; the defaults are the production ones."""

    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    # No cap on attempts: a notice is retried until delivered or a person gives up on it
    # (`tafang outbox give-up`); only the interval is capped.
    backoff_base: float = 2.0  # seconds before the 2nd try; doubles each failure
    backoff_cap: float = 300.0  # the longest wait between tries, jitter included
    jitter: float = 0.2  # ± share of the backoff, so retries of many rows spread out
    lease: float = 60.0  # > call_budget + request_deadline: a claimed row's hiding time
    request_deadline: float = 8.0  # hard wall-clock limit of one request, answer included
    call_budget: float = 20.0  # per target: no new send starts after this many seconds
    return_after: float = 2.0  # deliver_due returns then; busy targets go on in the background
    window: float = 60.0  # the rate limit's rolling window
    max_rows: int = 2000  # due rows looked at per call
    digest_max: int = 500  # rows folded into one digest at most (the rest wait)
    digest_lines: int = 40  # cases listed one per line in a digest's text
    max_answer: int = 65536  # bytes of an answer read at most (the rest is dropped)

    @property
    def timeout(self) -> httpx.Timeout:
        """httpx's per-read timeouts (the wall-clock limit is `request_deadline`)."""
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


DEFAULT_SETTINGS = NotifySettings()


def read_secret(name: str) -> str | None:
    """A robot secret by name: the environment variable `name`, else the systemd credential
    `$CREDENTIALS_DIRECTORY/name` (`LoadCredential=name:…`); the environment wins. None when
    neither holds a value. The one place secrets are read; a trailing newline is dropped."""
    value = os.environ.get(name)
    if value:
        return value
    folder = os.environ.get("CREDENTIALS_DIRECTORY")
    if not folder or not name or "/" in name or name.startswith("."):
        return None
    try:
        value = (Path(folder) / name).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError):
        return None
    return value or None
