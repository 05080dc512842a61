"""Secrets out of sight: access tokens, signing secrets and signatures never reach logs,
`last_error` or exceptions. URLs are shown without their query string, and httpx's own
request log is filtered the same way (installed when this module is imported)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote_plus

_URL_QUERY = re.compile(r"""(https?://[^\s?#'"<>]*)\?[^\s'"<>]*""")


def redact(message: str, secrets: Iterable[str] = ()) -> str:
    """A message safe to log or store: known secret values and URL query strings removed."""
    for s in secrets:
        if s and len(s) >= 4:
            message = message.replace(s, "***")
            message = message.replace(quote_plus(s), "***")
    return _URL_QUERY.sub(r"\1?…", message)


class _RedactQueryFilter(logging.Filter):
    """httpx logs every request with its full URL (access_token, sign): drop the query."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            msg = record.getMessage()
        except Exception:  # a broken record is not ours to fix
            return True
        safe = redact(msg)
        if safe != msg:
            record.msg, record.args = safe, None
        return True


def _install_log_filter() -> None:
    lg = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactQueryFilter) for f in lg.filters):
        lg.addFilter(_RedactQueryFilter())


_install_log_filter()
