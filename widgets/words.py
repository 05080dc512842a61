"""The words a widget shows, handed in already translated (widgets keep no label tables).

The console fills a `Words` from the label catalogue; a widget built without one shows codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Words:
    clocks: Mapping[str, str] = field(default_factory=dict)  # clock code -> name
    columns: Mapping[str, str] = field(default_factory=dict)  # queue column key -> header
    officer_counts: Mapping[str, str] = field(default_factory=dict)  # status -> squad summary
    sla_states: Mapping[str, str] = field(default_factory=dict)  # none/ok/… -> map info line
    partners_title: str = "partners"
    partner_detail: str = "{open} · {handled}"  # a partner team's line: open, handled today
    cell_detail: str = "{count} · {state} · {officers}"  # the map's cursor cell
    supervised_flag: str = "S "  # the queue's 督办 mark, two cells
    empty_hint: str = ""  # an empty queue says what to do, one line per "\n"
    map_legend: str = ""  # what the map's digits and marks mean
    summary: Mapping[str, str] = field(default_factory=dict)  # squads/groups/free/out/busy …

    def clock(self, code: str | None) -> str:
        """A clock's name; unknown clocks show their code."""
        return self.clocks.get(code, code) if code else ""

    def column(self, key: str) -> str:
        return self.columns.get(key, key)

    def summary_word(self, key: str) -> str:
        return self.summary.get(key, key)

    def officer_count(self, status: str) -> str:
        return self.officer_counts.get(status, status)

    def sla_state(self, state: str) -> str:
        return self.sla_states.get(state, state)
