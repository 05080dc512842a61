"""The roster a what-if replay runs with: the config's squads and shifts, or a roster file's.

A roster file is TOML with `[[squads]]` and/or `[[shifts]]` in the config's format; a squad or
shift it gives replaces the config's of the same code, a new code is added, the rest stay as
configured (so a file holds only what changes). An officer entry may also say
- `duty = "off_duty" | "on_break"`: never sent (store/duty.py `takes_cases`);
- `shifts = ["night"]`: the shifts the officer works (default: those listing the squad);
- `days = ["fri"]`: only on shifts starting on these weekdays (mon … sun).
So "a fifth officer in 二中队 on Friday nights" is one more line in 二中队's officers with
`shifts = ["night"], days = ["fri"]`. The result is validated as the config is, and an error
names the key (squads[1].officers[4].group) or the TOML line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from tafang.store.config import Deployment, Officer, Shift, Squad
from tafang.store.duty import DUTIES, ON_DUTY
from tafang.store.roster import Slot, shifts, slot_at

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
EXTRA_KEYS = ("duty", "shifts", "days")
TOP_KEYS = ("squads", "shifts")


class RosterError(ValueError):
    """A roster file that cannot be used: `where` names the key or line, `why` the reason."""

    def __init__(self, path: str, where: str, why: str) -> None:
        super().__init__(f"{path}: {where}: {why}" if where else f"{path}: {why}")
        self.where, self.why = where, why


@dataclass(frozen=True, slots=True)
class Plan:
    """What a roster file adds to one officer."""

    duty: str = ON_DUTY
    shifts: frozenset[str] | None = None
    days: frozenset[int] | None = None


@dataclass
class Roster:
    """Squads, shifts and per-officer plans; who is on duty at a moment."""

    d: Deployment
    plans: dict[str, Plan] = field(default_factory=dict)
    _cache: dict[str, dict[str, str]] = field(default_factory=dict)

    def officers(self) -> list[Officer]:
        return [o for s in self.d.squads for o in s.officers]

    def duties_at(self, when: datetime) -> dict[str, str]:
        """Each officer's duty at `when`: on duty on their shift, else off (or their plan's)."""
        slot = slot_at(self.d, when)
        out = self._cache.get(slot.key)
        if out is None:
            out = self._cache[slot.key] = self._duties(slot)
        return out

    def _duties(self, slot: Slot) -> dict[str, str]:
        out = {}
        for s in self.d.squads:
            for o in s.officers:
                p = self.plans.get(o.code, Plan())
                on = slot.shift.code in p.shifts if p.shifts else s.code in slot.shift.squads
                if p.days is not None:
                    on = on and slot.start.weekday() in p.days
                out[o.code] = p.duty if p.duty != ON_DUTY else (ON_DUTY if on else "off_duty")
        return out


def load_roster(path: str | Path, d: Deployment, config_path: Path) -> Roster:
    """The roster file at `path` over the deployment read from `config_path`."""
    shown = str(path)
    data = _read(shown, Path(path))
    plans = _plans(shown, data)
    for key, model in (("squads", Squad), ("shifts", Shift)):  # keys named as in the file
        for i, item in enumerate(data.get(key, [])):
            _check(shown, f"{key}[{i}]", lambda x=item, m=model: m.model_validate(x))
    base = tomllib.loads(config_path.read_text(encoding="utf-8"))
    for key, items in data.items():
        base[key] = _by_code(base.get(key, []), items)
    nd = _check(shown, "", lambda: Deployment.model_validate(base))  # the plan as a whole
    known = {sh.code for sh in shifts(nd)}
    for code, plan in plans.items():
        for sh in sorted((plan.shifts or frozenset()) - known):
            raise RosterError(shown, f"officer {code}.shifts", f"no shift {sh!r} in the plan")
    return Roster(nd, plans)


def _read(shown: str, path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise RosterError(shown, "", f"cannot read: {e.strerror or e}") from e
    except UnicodeDecodeError as e:
        raise RosterError(shown, "", f"not UTF-8 text (byte {e.start})") from e
    except tomllib.TOMLDecodeError as e:
        raise RosterError(shown, "", f"not valid TOML: {e}") from e
    for k, v in data.items():
        if k not in TOP_KEYS:
            raise RosterError(shown, k, "unknown key (a roster file has squads and shifts)")
        if not isinstance(v, list):
            raise RosterError(shown, k, f"must be an array of tables ([[{k}]])")
    if not data:
        raise RosterError(shown, "", "empty: give [[squads]] and/or [[shifts]]")
    return data


def _check(shown: str, prefix: str, validate: Callable[[], Any]) -> Any:
    """Run a pydantic validation; a failure names the key (under `prefix`) and why."""
    try:
        return validate()
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        where = ".".join(x for x in (prefix, key) if x).replace(".[", "[")
        raise RosterError(shown, where, msg) from e


def _by_code(base: list[Any], given: Any) -> Any:
    """The config's entries with the file's replacing those of the same code, new ones after."""
    if not isinstance(given, list):
        return given  # validation names it
    codes = {g.get("code") for g in given if isinstance(g, dict)}
    mine = {g.get("code"): g for g in given if isinstance(g, dict)}
    kept = [mine.pop(b["code"]) if b.get("code") in codes else b for b in base]
    return kept + [g for g in given if not isinstance(g, dict) or g.get("code") in mine]


def _plans(shown: str, data: dict[str, Any]) -> dict[str, Plan]:
    """Take the officers' roster-only keys out of `data` (in place) as plans by code."""
    plans = {}
    for i, s in enumerate(data.get("squads", [])):
        officers = s.get("officers", []) if isinstance(s, dict) else []
        for j, o in enumerate(officers if isinstance(officers, list) else []):
            if isinstance(o, dict) and any(k in o for k in EXTRA_KEYS):
                where = f"squads[{i}].officers[{j}]"
                plans[str(o.get("code"))] = _plan(shown, where, o)
    return plans


def _plan(shown: str, where: str, o: dict[str, Any]) -> Plan:
    duty = o.pop("duty", ON_DUTY)
    if duty not in DUTIES:
        raise RosterError(shown, f"{where}.duty", f"{duty!r} is not one of {', '.join(DUTIES)}")
    shifts = o.pop("shifts", None)
    if shifts is not None and not (
        isinstance(shifts, list) and all(isinstance(x, str) for x in shifts)
    ):
        raise RosterError(shown, f"{where}.shifts", "must be a list of shift codes")
    days = o.pop("days", None)
    if days is not None:
        bad = [x for x in days if x not in WEEKDAYS] if isinstance(days, list) else [days]
        if bad:
            raise RosterError(
                shown, f"{where}.days", f"{bad[0]!r} is not one of {', '.join(WEEKDAYS)}"
            )
    return Plan(
        duty,
        frozenset(shifts) if shifts is not None else None,
        frozenset(WEEKDAYS.index(x) for x in days) if days is not None else None,
    )


def config_roster(d: Deployment) -> Roster:
    """The deployment's own squads and shifts."""
    return Roster(d)
