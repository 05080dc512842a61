"""What a delivery call did: one result per target, summed into a report."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ContactResult:
    """What one batch did for one target (its level names joined by "+")."""

    contact: str
    messages: int = 0  # HTTP requests made
    sent: int = 0  # outbox rows settled as sent
    failed: int = 0  # rows that failed and will be retried
    dead: int = 0  # rows that failed for the last time
    deferred: int = 0  # rows claimed but not tried (call budget); due again at once
    waiting: int = 0  # due rows held back by the rate limit
    digests: int = 0
    error: str = ""  # the first error of this call, redacted


@dataclass(frozen=True)
class DeliveryReport:
    contacts: tuple[ContactResult, ...] = ()  # batches ended in this call or since the last
    in_flight: tuple[str, ...] = ()  # targets still sending in the background

    @property
    def sent(self) -> int:
        return sum(c.sent for c in self.contacts)

    @property
    def failed(self) -> int:
        return sum(c.failed for c in self.contacts)

    @property
    def dead(self) -> int:
        return sum(c.dead for c in self.contacts)

    @property
    def messages(self) -> int:
        return sum(c.messages for c in self.contacts)

    @property
    def waiting(self) -> int:
        return sum(c.waiting for c in self.contacts)
