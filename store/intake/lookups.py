"""Per-deployment tables for hand-written validation, built once per `Deployment`."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from tafang.store.config import Deployment


class Lookups:
    """Codes and names to codes, so that a record's field is one dict lookup."""

    def __init__(self, d: Deployment) -> None:
        self.grids: dict[str, str] = {g.code: g.code for g in d.tower.grids}
        self.grids.update({g.label: g.code for g in d.tower.grids})
        self.categories: dict[str, str] = {c.code: c.code for c in d.categories}
        self.categories.update({c.name: c.code for c in d.categories})
        # Known codes as one object each: a row pickles (to the writer) a reference to it.
        self.channel_objs: dict[str, str] = {c: c for c in d.channel_codes}
        self.tz = ZoneInfo(d.timezone)


_LOOKUPS: dict[int, tuple[Deployment, Lookups]] = {}


def lookups(d: Deployment) -> Lookups:
    hit = _LOOKUPS.get(id(d))
    if hit is None or hit[0] is not d:
        hit = (d, Lookups(d))
        _LOOKUPS[id(d)] = hit
    return hit[1]
