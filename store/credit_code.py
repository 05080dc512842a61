"""The unified social credit code (统一社会信用代码, GB 32100-2015) and its check digit.

Eighteen characters: 1 registering authority, 1 kind of body, 6 division code, 9 body
identifier (the old organisation code), 1 check character. The alphabet is the digits and
the capital letters without I, O, S, V and Z (31 characters, a character's value is its
index); the weight of position i (0-based) is 3**i mod 31; the check value is
31 - (weighted sum mod 31), with 31 written as 0.
"""

from __future__ import annotations

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))  # 1 3 9 27 19 26 16 17 20 29 25 13 8 24 10 30 28
LENGTH = 18
_VALUE = {c: i for i, c in enumerate(ALPHABET)}


class CreditCodeError(ValueError):
    """Why a string is not a valid credit code (English; `code` names the reason)."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


def check_char(body: str) -> str:
    """The check character for the first 17 characters `body` (already upper case)."""
    if len(body) != LENGTH - 1:
        raise CreditCodeError(f"need 17 characters before the check, got {len(body)}", "length")
    total = 0
    for i, (ch, w) in enumerate(zip(body, WEIGHTS, strict=True)):
        v = _VALUE.get(ch)
        if v is None:
            raise CreditCodeError(f"character {i + 1} {ch!r} is not allowed", "alphabet")
        total += v * w
    return ALPHABET[(31 - total % 31) % 31]


def normalise(raw: str) -> str:
    """Strip blanks (and full-width spaces) and upper-case: how people type it."""
    return "".join(raw.split()).replace("\u3000", "").upper()


def validate(raw: str) -> str:
    """The code in its normal form, or CreditCodeError saying what is wrong with it."""
    code = normalise(raw)
    if len(code) != LENGTH:
        raise CreditCodeError(f"a credit code has 18 characters, this has {len(code)}", "length")
    for i, ch in enumerate(code):
        if ch not in _VALUE:
            raise CreditCodeError(
                f"character {i + 1} {ch!r} is not allowed (no I, O, S, V, Z or lower-case)",
                "alphabet",
            )
    want = check_char(code[:17])
    if code[17] != want:
        raise CreditCodeError(
            f"check character is {code[17]!r} but the first 17 give {want!r}", "check"
        )
    return code


def is_valid(raw: str) -> bool:
    try:
        validate(raw)
    except CreditCodeError:
        return False
    return True
