"""Safe, cell-aware text for untrusted strings (feed titles, raw categories, names).

Everything a feed sends is shown *literally*: these helpers never parse markup, and they turn
control characters (ESC, C0/C1, NUL, DEL), bidi overrides and invisible format characters into
visible placeholders, so a report cannot recolour the terminal, move the cursor, reorder a line
or hide text. Widths are in terminal cells (CJK is two cells wide), so columns line up.
"""

from __future__ import annotations

import re
from typing import Literal

from rich.cells import cell_len, chop_cells

ELLIPSIS = "…"

# Characters that must never reach the terminal as they are: C0 controls, DEL, C1 controls,
# soft hyphen, Arabic letter mark, Mongolian vowel separator, zero-width and directional marks,
# line/paragraph separators, bidi embeddings/overrides/isolates, invisible operators, BOM,
# interlinear annotations, lone surrogates and tag characters.
_UNSAFE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
    "\ufeff\ufff9-\ufffb\ud800-\udfff\U000e0000-\U000e007f]"
)


def _placeholder(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ … ␟ (ESC is ␛)
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"<U+{code:04X}>"


def safe(s: str) -> str:
    """`s` with every control / bidi / invisible character replaced by a visible placeholder.

    The result is plain text to be drawn literally (as Segments or `rich.text.Text`); it is
    idempotent (placeholders are printable) and costs one regex search for clean strings.
    """
    if _UNSAFE.search(s) is None:
        return s
    return _UNSAFE.sub(_placeholder, s)


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
