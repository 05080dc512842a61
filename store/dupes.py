"""Which open cases are probably the same event as a new report (issue 14).

A road collapse arrives as a 西湖码 report, a 平安通 report, a hotline call and an alarm within
minutes. The matcher suggests; a dispatcher decides and merges (the `merge` move, on the
record). Rules and thresholds are `[dupes]` in the config (`store/config.Dupes`).

A candidate must be open, in a compatible category, within the time window and near (the same
or a neighbouring grid cell, or within a radius when both carry a position). Its score mixes:
- text: character-bigram likeness of title and place (rapidfuzz's token-set ratio over the
  bigrams; Chinese has no spaces, and bigrams survive reordered phrases and added words),
- place: 1 for the same cell or a position within a tenth of the radius, less with distance,
- time: 1 for the same minute, falling to 0 at the window's edge.

`DupeIndex` keeps open reports bucketed by grid cell, so a new report is compared only with
its neighbourhood's recent reports: well under 5 ms against 10,000 open cases.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from rapidfuzz import fuzz
from tafang.store.config import Deployment, Dupes

_NOT_TEXT = re.compile(r"[\W_]+", re.UNICODE)
_NUMBER = re.compile(r"[0-9]+")
NUMBERS_APART = 30
"""House numbers further apart than this on the same street are another place."""
_EARTH_M = 6_371_000.0


@dataclass(frozen=True)
class Report:
    """What the matcher needs of a case."""

    id: int
    received_at: datetime
    grid: str | None
    category: str | None
    text: str  # normalised title + place, as bigrams joined by spaces
    place: str = ""  # the place alone, the same way (an address that differs rules it out)
    numbers: tuple[int, ...] = ()  # house numbers in the place (天目山路292号 → 292)
    lat: float | None = None
    lon: float | None = None


@dataclass(frozen=True)
class Reason:
    """One reason a candidate was suggested: a code for the label catalogue and its value."""

    code: str  # text, same_grid, near_grid, distance_m, minutes, same_category, same_group
    value: str


@dataclass(frozen=True)
class Suggestion:
    """An open case that is probably the same event, with its score (0–1) and the reasons."""

    case_id: int
    score: float
    reasons: tuple[Reason, ...]


def bigrams(*parts: str) -> str:
    """Text for comparison: NFKC (full-width digits and letters folded), punctuation and
    spaces dropped, lower case, as overlapping character pairs joined by spaces."""
    s = _NOT_TEXT.sub("", unicodedata.normalize("NFKC", "".join(parts))).lower()
    if len(s) < 2:
        return s
    return " ".join(s[i : i + 2] for i in range(len(s) - 1))


def house_numbers(place: str) -> tuple[int, ...]:
    """The numbers in an address (full-width digits folded), e.g. 天目山路２９２号 → (292,)."""
    return tuple(int(n[:6]) for n in _NUMBER.findall(unicodedata.normalize("NFKC", place)))


def report_of(case: object) -> Report:
    """A Report from anything with a case's fields (a CaseView, a row)."""
    g = getattr
    return Report(
        id=g(case, "id"),
        received_at=g(case, "received_at"),
        grid=g(case, "grid"),
        category=g(case, "category"),
        text=bigrams(g(case, "title", ""), g(case, "location", "")),
        place=bigrams(g(case, "location", "")),
        numbers=house_numbers(g(case, "location", "")),
        lat=g(case, "lat", None),
        lon=g(case, "lon", None),
    )


def metres(a: Report, b: Report) -> float | None:
    """Distance between two positions (equirectangular: exact enough within a subdistrict)."""
    if None in (a.lat, a.lon, b.lat, b.lon):
        return None
    la, lb = math.radians(a.lat), math.radians(b.lat)  # type: ignore[arg-type]
    x = math.radians(b.lon - a.lon) * math.cos((la + lb) / 2)  # type: ignore[operator]
    return math.hypot(x, lb - la) * _EARTH_M


class Neighbourhood:
    """Grid cells within `rings` of each other on the map. 文三西路 (the map's empty row
    between the halves) is not a border: a collapse on the road is reported from both sides."""

    def __init__(self, dep: Deployment, rings: int) -> None:
        road = self._road_rows(dep)
        place = {
            g.code: (g.row - sum(1 for r in road if r < g.row), g.col) for g in dep.tower.grids
        }
        self.near: dict[str, frozenset[str]] = {
            code: frozenset(
                other for other, (r2, c2) in place.items() if max(abs(r - r2), abs(c - c2)) <= rings
            )
            for code, (r, c) in place.items()
        }

    @staticmethod
    def _road_rows(dep: Deployment) -> set[int]:
        used = {g.row for g in dep.tower.grids}
        return set(range(min(used), max(used) + 1)) - used

    def of(self, grid: str | None) -> frozenset[str]:
        return self.near.get(grid or "", frozenset())


class DupeIndex:
    """Open reports by grid cell, each bucket sorted by arrival, for fast suggestions."""

    def __init__(self, dep: Deployment, rules: Dupes | None = None) -> None:
        self.rules = rules or dep.dupes
        self.window = timedelta(minutes=self.rules.window_minutes)
        self.near = Neighbourhood(dep, self.rules.rings)
        groups = {c.code: c.group for c in dep.categories}
        self.group = groups.get
        # Open reports by (cell, kind): kind is the case group when a related category of the
        # group may match (`same_group`), else the category; only compatible buckets are read.
        self._buckets: dict[tuple[str | None, str | None], list[tuple[datetime, int]]] = {}
        self._reports: dict[int, Report] = {}

    def __len__(self) -> int:
        return len(self._reports)

    def __contains__(self, case_id: object) -> bool:
        return case_id in self._reports

    def ids(self) -> list[int]:
        return list(self._reports)

    def _key(self, r: Report) -> tuple[str | None, str | None]:
        kind = self.group(r.category or "") if self.rules.same_group else None
        return r.grid, kind or r.category

    def add(self, r: Report) -> None:
        if r.id in self._reports:
            self.discard(r.id)
        self._reports[r.id] = r
        insort(self._buckets.setdefault(self._key(r), []), (r.received_at, r.id))

    def add_all(self, reports: Iterable[Report]) -> None:
        for r in reports:
            self.add(r)

    def discard(self, case_id: int) -> None:
        r = self._reports.pop(case_id, None)
        if r is not None:
            bucket = self._buckets[self._key(r)]
            bucket.pop(bisect_left(bucket, (r.received_at, r.id)))

    def _nearby(self, r: Report) -> Iterable[Report]:
        """Reports in the window, of a compatible kind, from the neighbourhood's cells (every
        cell when the report's cell is unknown: then the radius or the text decides)."""
        _, kind = self._key(r)
        if r.grid is None:
            keys = [k for k in self._buckets if k[1] == kind]
        else:
            keys = [(g, kind) for g in self.near.of(r.grid) if (g, kind) in self._buckets]
        lo, hi = r.received_at - self.window, r.received_at + self.window
        for key in keys:
            bucket = self._buckets[key]
            for i in range(bisect_left(bucket, (lo, -1)), len(bucket)):
                t, cid = bucket[i]
                if t > hi:
                    break
                if cid != r.id:
                    yield self._reports[cid]

    def suggest(self, r: Report) -> list[Suggestion]:
        """The open cases probably the same event as `r`, best first."""
        found = [s for s in map(lambda o: self.score(r, o), self._nearby(r)) if s is not None]
        found.sort(key=lambda s: (-s.score, s.case_id))
        return found[: self.rules.max_suggestions]

    def score(self, a: Report, b: Report) -> Suggestion | None:
        """`b` as a suggestion for `a`, or None when a rule rules it out or it scores low.
        Place and time are weighed first: the text is compared only when it could still
        lift the score over the threshold (and rapidfuzz stops early below that)."""
        rules = self.rules
        kind = self._category(a, b)
        place = self._place(a, b) if kind is not None else None
        if kind is None or place is None:
            return None
        minutes = abs((a.received_at - b.received_at).total_seconds()) / 60
        timely = max(0.0, 1 - minutes / rules.window_minutes)
        total = (rules.weight_text + rules.weight_place + rules.weight_time) or 1.0
        rest = rules.weight_place * place[0] + rules.weight_time * timely
        if rules.weight_text <= 0:
            text = 0.0
        else:
            need = (rules.threshold * total - rest) / rules.weight_text
            if need > 1 or not (a.text and b.text):
                return None
            cutoff = max(0.0, need * 100 - 1e-6)
            text = fuzz.token_set_ratio(a.text, b.text, score_cutoff=cutoff) / 100
        score = (rules.weight_text * text + rest) / total
        if score < rules.threshold or self._other_address(a, b):
            return None
        reasons = (
            Reason("text", f"{text:.2f}"),
            place[1],
            Reason("minutes", f"{minutes:.0f}"),
            Reason(kind, b.category or ""),
        )
        return Suggestion(b.id, round(score, 3), reasons)

    def _other_address(self, a: Report, b: Report) -> bool:
        """Both name a place and the places share too little (two stalls on two streets), or
        the house numbers are far apart (天目山路292号 and 天目山路163号)."""
        if not (a.place and b.place) or self.rules.place_words_min <= 0:
            return False
        if a.numbers and b.numbers:
            gap = min(abs(x - y) for x in a.numbers for y in b.numbers)
            if gap > NUMBERS_APART:
                return True
        cutoff = self.rules.place_words_min * 100
        return fuzz.token_set_ratio(a.place, b.place, score_cutoff=cutoff) < cutoff

    def _category(self, a: Report, b: Report) -> str | None:
        if a.category == b.category:
            return "same_category"
        if self.rules.same_group and a.category and b.category:
            ga = self.group(a.category)
            if ga is not None and ga == self.group(b.category):
                return "same_group"
        return None

    def _place(self, a: Report, b: Report) -> tuple[float, Reason] | None:
        """How near (0–1) and why; None when too far apart."""
        d = metres(a, b)
        radius = self.rules.radius_m
        if d is not None and radius > 0:
            if d > radius:
                return None
            return min(1.0, 1.1 - d / radius), Reason("distance_m", f"{d:.0f}")
        if a.grid is not None and a.grid == b.grid:
            return 1.0, Reason("same_grid", a.grid)
        if b.grid in self.near.of(a.grid):
            return 0.6, Reason("near_grid", b.grid or "")
        return None


def suggestions_for(
    case: object, open_cases: Iterable[object], dep: Deployment
) -> list[Suggestion]:
    """The probable duplicates of one case among `open_cases` (for `tafang case dupes`)."""
    index = DupeIndex(dep)
    me = report_of(case)
    index.add_all(report_of(c) for c in open_cases if getattr(c, "id", None) != me.id)
    return index.suggest(me)
