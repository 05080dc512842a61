r"""Text a database cannot hold as is (lone surrogates; NUL on PostgreSQL), written as `\uXXXX`.

The exact values stay in the case's `raw` JSON; see the package docstring for the rules."""

from __future__ import annotations

import json
import re
from typing import Any

SURROGATES = re.compile("[\ud800-\udfff]")
UNSTORABLE_PG = re.compile("[\x00\ud800-\udfff]")


def escape_unstorable(s: str, nul_ok: bool) -> str:
    r"""Write lone surrogates (and NUL where the database cannot hold it) as `\uXXXX`."""
    pat = SURROGATES if nul_ok else UNSTORABLE_PG
    return pat.sub(lambda m: f"\\u{ord(m.group()):04x}", s)


def dump_raw(raw: dict[str, Any]) -> str:
    """JSON of the raw values, readable (CJK as is) unless it holds lone surrogates."""
    s = json.dumps(raw, ensure_ascii=False, default=str)
    if SURROGATES.search(s):
        s = json.dumps(raw, ensure_ascii=True, default=str)  # \udXXX escapes: exact
    return s
