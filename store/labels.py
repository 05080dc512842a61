"""The label catalogue: one table per language, the one source of every shown name.

Levels of the tower, SLA clocks, case states, officer states, actions, agencies, queue
columns, report headings and the console's sentences live in `locale/<lang>.toml` (read once,
cached). Code asks `labels(lang)`; an unknown key falls back to English, then to the key.
Names from the deployment (channels, categories, cells, people) stay in `config.toml`.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from typing import Any

from tafang.store.config import LEVELS

LANGS = ("zh", "en")
FALLBACK = "en"


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"status": {"new": "…"}}` -> `{"status.new": "…"}`; a `_` key names its section."""
    out: dict[str, str] = {}
    for k, v in table.items():
        key = prefix[:-1] if k == "_" else prefix + k
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = str(v)
    return out


@cache
def table(lang: str) -> dict[str, str]:
    """The flat catalogue of one language (`section.name` -> text); {} for an unknown one."""
    if lang not in LANGS:
        return {}
    text = files("tafang.store").joinpath("locale", f"{lang}.toml").read_text("utf-8")
    return _flatten(tomllib.loads(text))


class Labels:
    """Names and sentences in one language; see `labels(lang)`."""

    def __init__(self, lang: str) -> None:
        self.lang = lang if lang in LANGS else FALLBACK
        self._table = table(self.lang)
        self._fallback = table(FALLBACK)

    def get(self, key: str) -> str | None:
        """The text for `key` in this language only, or None (also when it is left empty)."""
        return self._table.get(key) or None

    def t(self, key: str, **params: object) -> str:
        """The text for `key` (then English, then the key itself), formatted with `params`."""
        s = self._table.get(key) or self._fallback.get(key) or key
        return s.format(**params) if params else s

    def _name(self, section: str, code: object) -> str:
        if code is None or code == "":
            return ""
        return self.t(f"{section}.{code}")

    def level(self, n: int | str) -> str:
        """A tower level by number (0 grid … 4 centre) or by its code ("enforcement")."""
        if isinstance(n, str) and n in LEVELS:
            n = LEVELS.index(n)
        return self._name("level", n)

    def clock(self, name: str | None) -> str:
        """An SLA clock: respond, dispatch, arrive, resolve."""
        return self._name("clock", name)

    def status(self, s: str | None) -> str:
        """A case state (new, acknowledged, …)."""
        return self._name("status", s)

    def officer(self, s: str | None) -> str:
        """An officer's state (available, en_route, on_scene, off_duty)."""
        return self._name("officer", s)

    def action(self, name: str | None) -> str:
        """A move or a console action (ack, dispatch, …)."""
        return self._name("action", name)

    def agency(self, code: str | None) -> str:
        """An agency (police, enforcement, …)."""
        return self._name("agency", code)

    def section(self, section: str) -> dict[str, str]:
        """Every name of one section, e.g. `section("clock")` -> {"respond": "响应", …}."""
        head = section + "."
        keys = [k for k in (*self._fallback, *self._table) if k.startswith(head)]
        return {k[len(head) :]: self.t(k) for k in dict.fromkeys(keys)}


@cache
def labels(lang: str) -> Labels:
    """The catalogue of `lang` ("zh" or "en"; anything else gets English)."""
    return Labels(lang)
