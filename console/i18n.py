"""The console's way with words: refusals in the UI language, config names, local times.

Every string comes from the label catalogue (`tafang.store.labels`, one table per language);
only console behaviour lives here. Names of channels, categories and cells come from the
deployment (with their `name_en` when the language is English).
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Literal

from tafang.store.cases import Refused
from tafang.store.labels import Labels, labels
from tafang.widgets.words import Words

Lang = Literal["zh", "en"]


class Strings:
    """Look up a UI string for one language; unknown keys fall back to English, then the key."""

    def __init__(self, lang: str = "zh") -> None:
        self.lang: Lang = "en" if lang == "en" else "zh"
        self.labels: Labels = labels(self.lang)

    def __call__(self, key: str, **kw: object) -> str:
        return self.labels.t(key, **kw)

    def known(self, key: str, default: str) -> str:
        """The string for `key` in this language, or `default` when the catalogue lacks it."""
        return self.labels.get(key) or default

    def refusal(self, e: Refused, tz: tzinfo) -> str:
        """A store refusal in the UI language; where English has no template, the store's words."""
        template = self.labels.get(f"refused.{e.code}") if e.code else None
        if template is None:
            return str(e)
        p: dict[str, object] = dict(e.params)
        if isinstance(p.get("status"), str):
            p["status"] = self(f"status.{p['status']}")
        if isinstance(p.get("allowed"), list):
            p["allowed"] = self("list.sep").join(self(f"status.{x}") for x in p["allowed"])
        if isinstance(p.get("action"), str):
            p["action"] = self.known(f"action.{p['action']}", str(p["action"]))
        if isinstance(p.get("at"), datetime):
            p["at"] = p["at"].astimezone(tz).strftime("%H:%M:%S")
        try:
            return template.format(**p)
        except (KeyError, IndexError, ValueError):
            return str(e)

    def pick(self, zh: str, en: str) -> str:
        """A config name in the UI language (English falls back to Chinese when unset)."""
        return en if self.lang == "en" and en else zh

    def words(self) -> Words:
        """The labels the widgets show, in this language (widgets take them as plain data)."""
        lb = self.labels
        return Words(
            clocks=lb.section("clock"),
            columns=lb.section("column"),
            officer_counts=lb.section("officer_short"),
            sla_states=lb.section("sla_state"),
            partners_title=lb.t("panel.partners"),
            partner_detail=lb.t("panel.partner_detail"),
            cell_detail=lb.t("map.cell_detail"),
            supervised_flag=lb.t("queue.supervised_flag"),
            empty_hint=lb.t("queue.empty_hint"),
            map_legend=lb.t("map.legend"),
            summary=lb.section("summary"),
        )
