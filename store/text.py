"""The one sanitiser for untrusted text (every field that came from a feed or a person).

Everything a feed sends is shown *literally*: control characters (ESC, C0/C1, NUL, DEL), bidi
overrides and invisible format characters become visible placeholders, so a report cannot
recolour a terminal, move the cursor, reorder a line, hide text or break a report's layout.
The console's widgets, the CLI, reports and notifications all ask this module; it imports
nothing, so every layer may use it (widgets through an allowed import in pyproject.toml).
"""

from __future__ import annotations

import re

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


# Markdown's own syntax (CommonMark backslash escapes) that could make a link, an image,
# emphasis, code or a table column out of a report's cell; `<`, `>` and `&` become entities,
# so `<script>` is text, not HTML, in every renderer.
_MARKDOWN = re.compile(r"([\\`*_\[\]()!|~])")


def md(s: str) -> str:
    """`safe(s)` for Markdown: `[a](javascript:…)`, `<script>`, `**x**` and `|` written so
    that a renderer shows them literally, as text. For untrusted cells and lines only."""
    s = safe(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MARKDOWN.sub(r"\\\1", s)
