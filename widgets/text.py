"""Cell-aware text for untrusted strings (feed titles, raw categories, names).

These helpers never parse markup and sanitise with the store's one sanitiser
(`tafang.store.text.safe`). Widths are in terminal cells (CJK is two cells wide), so columns
line up.
"""

from __future__ import annotations

from typing import Literal

from rich.cells import cell_len, chop_cells
from tafang.store.text import safe

__all__ = ["ELLIPSIS", "fit", "safe", "width_of"]

ELLIPSIS = "…"


def width_of(s: str) -> int:
    """Width of `s` in terminal cells (fast path for ASCII)."""
    return len(s) if s.isascii() else cell_len(s)


def fit(
    s: str, width: int, align: Literal["left", "right"] = "left", *, sanitize: bool = True
) -> str:
    """`s` made exactly `width` cells wide: truncated with "…" (never through a wide
    character) and padded with spaces. Sanitised with `safe` unless told it already is."""
    if width <= 0:
        return ""
    if sanitize:
        s = safe(s)
    n = width_of(s)
    if n > width:
        if width == 1:
            return ELLIPSIS
        head = chop_cells(s, width - 1)[0] if not s.isascii() else s[: width - 1]
        s = head + ELLIPSIS
        n = width_of(s)
        if n > width:  # a wide character straddled the cut
            s = s[:-2] + ELLIPSIS
            n = width_of(s)
    pad = " " * (width - n)
    return pad + s if align == "right" else s + pad
