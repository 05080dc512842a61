"""Meeting-report sections for joint inspections, partner teams and risk points (issue 12).

Each is a `SECTIONS` function of sla/meeting.py (`Inputs -> Section | None`), left out when
its register is empty. The figures come from the store's rules: 综合查一次 from
store/inspections.py (`joint_rate`, its definition in that module's docstring), the partners'
items and savings from store/partners.py, risk points from store/risk.py.
"""

from __future__ import annotations

from tafang.sla.meeting import Column, Inputs, Section, Table, both
from tafang.store import inspections, partners, risk
from tafang.store.assessment import Rate


def joint_inspections(i: Inputs) -> Section | None:
    """综合查一次 rate over visits made in the period, beside Xihu 2024 and the target."""
    r = inspections.joint_rate(i.store, i.start, i.cutoff)
    if not r.visits and not inspections.plans(i.store, "planned"):
        return None
    table = Table(
        "joint_inspections",
        both("inspection.rate"),
        (
            Column("rate", both("inspection.rate"), "rate"),
            Column("merged", "合并计划 merged plans"),
            Column("target", "省目标 province target (%)", "float"),
            Column("xihu_2024", "西湖区 2024 Xihu 2024 (%)", "float"),
        ),
        [
            (
                Rate(r.joint, r.visits),
                r.merged,
                inspections.TARGET * 100,
                inspections.XIHU_2024 * 100,
            )
        ],
    )
    note = (
        "综合查一次 = visits made by two or more departments together ÷ all visits made "
        "(by the day of the visit); merged plans are the visits saved."
    )
    return Section("joint_inspections", both("inspection"), [table], [], note)


def partner_teams(i: Inputs) -> Section | None:
    """Per partner: its cases handled in the period, items, hours and yuan saved."""
    figs = partners.figures(i.store, i.start, i.cutoff)
    if not any(f.cases for f in figs):
        return None
    names = {p.code: p.name for p in i.d.partners}
    table = Table(
        "partners",
        both("partner"),
        (
            Column("code", "code", "text"),
            Column("name", "name", "text"),
            Column("cases", both("partner.cases")),
            Column("items", both("partner.items")),
            Column("hours_saved", both("partner.hours_saved"), "float"),
            Column("yuan_saved", both("partner.cost_saved"), "float"),
        ),
        [(f.code, names[f.code], f.cases, f.items, f.hours_saved, f.yuan_saved) for f in figs],
    )
    return Section("partners", both("partner"), [table])


def risk_points(i: Inputs) -> Section | None:
    """Risk points by class, and the planned checks filed as cases in the period."""
    by_class = risk.counts_by_class(i.store)
    if not by_class:
        return None
    filed = risk.checks_filed(i.store, i.start, i.cutoff)
    table = Table(
        "risk_points",
        both("risk"),
        (
            Column("class", "class", "text"),
            Column("name", "name", "text"),
            Column("points", both("risk")),
        ),
        [(c, both(f"risk.class.{c}"), by_class.get(c, 0)) for c in risk.CLASSES],
    )
    note = f"planned checks filed as cases in the period: {filed}"
    return Section("risk_points", both("risk"), [table], [], note)
