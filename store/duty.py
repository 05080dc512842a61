"""Officer duty (在岗 / 下班 / 休息): whether an officer may be sent at all.

Duty is a fact about the person's shift, set by a dispatcher or supervisor (or the officer,
for themself); an officer's `status` (available, en route, on scene) is what the cases in
their hands make of them. Only officers on duty are candidates for a dispatch: the console's
ranking and the store's dispatch planner both ask `takes_cases`, nothing else decides it.
`Store.set_officer_status` (store/cases.py) writes a change with its record entry.
"""

from __future__ import annotations

DUTIES = ("on_duty", "off_duty", "on_break")
ON_DUTY = "on_duty"

WORDS = {
    "on": "on_duty",
    "off": "off_duty",
    "break": "on_break",
    "back": "on_duty",
    # the stored names, and the old squad-panel word, read as themselves
    "on_duty": "on_duty",
    "off_duty": "off_duty",
    "on_break": "on_break",
    "available": "on_duty",
}
"""Command-line words (`tafang officer 2-03 off|on|break|back`) and their duty state."""

PANEL_CYCLE = {"on_duty": "on_break", "on_break": "on_duty", "off_duty": "on_duty"}
"""The squad panel's duty key: on duty → break → back; an off-duty officer comes on."""


def duty_of(word: str) -> str | None:
    """The duty state a word names, or None for a word that names none."""
    return WORDS.get(word.strip().lower())


def takes_cases(duty: str) -> bool:
    """May an officer with this duty be sent a case? Only when on duty (the one rule)."""
    return duty == ON_DUTY


def shown_status(status: str, duty: str) -> str:
    """What the squad panel and the ranking show: off duty / on break win over the cases."""
    return status if duty == ON_DUTY else duty
