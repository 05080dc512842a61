"""The self-check list sent ahead to the enterprise (企业自查清单): Markdown or CSV.

The enterprise fills in each checklist item before the visit, so the officers check what
it says instead of asking everything afresh. Names from the register are untrusted: they go
through `safe`, and Markdown's table and emphasis characters are escaped. CSV cells that a
spreadsheet would run as a formula (= + - @) get a leading apostrophe.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from tafang.store.cases import NotFound, Store
from tafang.store.enterprises import find
from tafang.store.inspections import ItemView, PlanView, items, plan
from tafang.store.labels import Labels
from tafang.store.text import safe

_MD = re.compile(r"([\\`*_{}\[\]<>()#+!|~])")


@dataclass(frozen=True, slots=True)
class Sheet:
    plan: PlanView
    enterprise: str
    credit_code: str
    risk_grade: str
    items: list[ItemView]


def sheet(store: Store, plan_id: int) -> Sheet:
    p = plan(store, plan_id)
    if p.status == "merged" and p.merged_into is not None:
        p = plan(store, p.merged_into)  # the list of the visit it joined
    e = find(store, p.enterprise_id)
    if e is None:
        raise NotFound(f"enterprise {p.enterprise_id} is not in the register", "not_found")
    return Sheet(p, e.name, e.credit_code, e.risk_grade, items(store, p.id))


def _md(s: str) -> str:
    return _MD.sub(r"\\\1", safe(s)).replace("\n", " ")


def _days(s: Sheet, tz: str) -> str:
    z = ZoneInfo(tz)
    first = s.plan.window_from.astimezone(z).date()
    last = (s.plan.window_to.astimezone(z) - timedelta(days=1)).date()
    return f"{first} – {last}" if last != first else str(first)


def markdown(s: Sheet, lab: Labels, tz: str) -> str:
    """One page: the enterprise, the window, the departments, then a table to fill in."""
    t = lab.t
    depts = lab.t("list.sep").join(t(f"agency.{d}") for d in s.plan.departments)
    out = [
        f"# {t('inspection.self_check')} · {_md(s.enterprise)}",
        "",
        f"- {t('inspection.credit_code')}: {s.credit_code}",
        f"- {t('inspection.risk_grade')}: {s.risk_grade}",
        f"- {t('inspection.window')}: {_days(s, tz)}",
        f"- {t('inspection.departments')}: {depts}",
        "",
        t("inspection.self_check_intro"),
        "",
        f"| # | {t('inspection.department')} | {t('inspection.item')} | "
        f"{t('inspection.self_result')} | {t('inspection.self_note')} |",
        "|---|---|---|---|---|",
    ]
    for n, it in enumerate(s.items, 1):
        out.append(f"| {n} | {t(f'agency.{it.department}')} | {_md(it.text)} |  |  |")
    return "\n".join(out) + "\n"


def _cell(v: str) -> str:
    v = safe(v)
    return "'" + v if v[:1] in ("=", "+", "-", "@") else v


def csv_text(s: Sheet, lab: Labels) -> str:
    """One row per item: number, department, item, and two empty columns to fill in."""
    t = lab.t
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "#",
            t("inspection.enterprise"),
            t("inspection.credit_code"),
            t("inspection.department"),
            t("inspection.item"),
            t("inspection.self_result"),
            t("inspection.self_note"),
        ]
    )
    for n, it in enumerate(s.items, 1):
        w.writerow(
            [
                n,
                _cell(s.enterprise),
                s.credit_code,
                t(f"agency.{it.department}"),
                _cell(it.text),
                "",
                "",
            ]
        )
    return buf.getvalue()
