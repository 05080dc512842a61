"""Who should take a case, best first, with the reasons the dispatch panel shows.

The ranking is a pure function (tested without a screen); its order is store/dispatch_order.py's,
the one rule the what-if replay follows too. Competence first: partner teams that take the
category (shared bikes: the bike operators), then free officers of the category's case group,
then of the case's enforcement circle, then the fewest open cases in hand, then the shortest
grid distance; busy officers follow with their status, squads last.
The dispatch panel (widgets/dispatch_panel.py) highlights the top one.
"""

from __future__ import annotations

from collections.abc import Sequence

from tafang.console.i18n import Strings
from tafang.store.config import Deployment
from tafang.store.dispatch_order import FAR, is_candidate, partners_for
from tafang.store.dispatch_order import fit as order_fit
from tafang.store.views import CaseView, OfficerView
from tafang.widgets.dispatch_panel import Choice

__all__ = ["Choice", "officer_choice", "rank"]


def officer_choice(
    o: OfficerView, case: CaseView, d: Deployment, t: Strings, group_names: dict[str, str]
) -> Choice:
    """One officer as a candidate: competence (the case group) first, then circle, load,
    distance; the reasons say each of these, with the officer's agency and status."""
    f = order_fit(o, case.category, case.grid, d)
    same_group, same_circle, dist = f.same_group, f.same_circle, f.distance
    reasons = [
        t.known(f"agency.{o.agency}", o.agency),
        t(f"officer.{o.status}"),
        ("✓ " if same_group else "") + t("assign.group", group=group_names.get(o.group, o.group)),
    ]
    if same_circle:
        reasons.append(t("assign.same_circle", circle=o.circle))
    reasons.append(t("assign.load", n=o.load))
    if dist != FAR:
        reasons.append(t("assign.distance", n=dist))
    return Choice(o.code, "officer", o.name, tuple(reasons), f.order)


def rank(
    case: CaseView, officers: Sequence[OfficerView], d: Deployment, t: Strings
) -> list[Choice]:
    """Candidates for `case`, best first; each carries the reasons a dispatcher reads.

    Partner teams that take the category lead (the config gives them those cases; one named
    in the report first), then officers, free before busy, each by case group, circle, load and
    distance; whole squads last."""
    group_names = {g.code: t.pick(g.name, g.name_en) for g in d.case_groups}
    out = [officer_choice(o, case, d, t, group_names) for o in officers if is_candidate(o)]
    said = f"{case.display_title}".lower()
    for p in partners_for(d, case.category):
        names = (p.name[:2], p.code, p.name_en.lower() or p.code)
        named = any(n in said for n in names)
        reasons = (t("assign.partner"), t("assign.partner_takes"))
        out.append(Choice(p.code, "partner", t.pick(p.name, p.name_en), reasons, (0, -named)))
    for i, s in enumerate(d.squads):
        name = t.pick(s.name, s.name_en)
        out.append(Choice(s.code, "squad", name, (t("assign.squad"),), (2, i)))
    out.sort(key=lambda c: (c.rank, c.code))
    return out
