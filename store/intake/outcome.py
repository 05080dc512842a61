"""What intake makes of one record (`Normalised` or `Rejected`) and of a run (`IngestResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class IngestResult:
    accepted: int
    duplicate: int
    rejected: int
    errors: list[tuple[int | None, str]] = field(default_factory=list)
    blank: int = 0  # lines of nothing but white space: the four counts add up to the lines read

    @property
    def summary(self) -> str:
        """The line `tafang ingest` prints (a contract: operators grep it)."""
        return (
            f"accepted={self.accepted} duplicate={self.duplicate} rejected={self.rejected} "
            f"blank={self.blank}"
        )


@dataclass(frozen=True, slots=True)
class Normalised:
    """A record that can be a case: column values ready to insert (clocks not yet set)."""

    values: dict[str, Any]
    triage: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return self.values["source"], self.values["external_id"]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A record that cannot be a case, with the reason an operator reads."""

    reason: str
