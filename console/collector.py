"""The garbage collector's full passes, moved to moments when the dispatcher is not typing.

The console keeps ~100k long-lived objects outside the frozen load (Textual's strips, each
with seven small caches, the styles caches, the rows). CPython walks all of them in every
full (generation 2) collection, and it starts one whenever enough new objects have survived:
every few seconds while keys are pressed, 60–100 ms each on two shared cores, landing on the
frame after a key (seen in bench/console.py: the dispatch modal's Enter, p95 200 ms).

Young collections stay automatic (a few ms); the full pass is run by the app's tick once the
keys have stopped for `quiet` seconds after some typing, and at the latest every `longest`
seconds, so memory held by cycles stays bounded.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field

NEVER = 1 << 30
"""A generation-2 threshold the collector never reaches by itself."""


@dataclass
class IdleCollector:
    """Owns generation 2 while started; `tick` once a second, `pressed` on every key."""

    quiet: float = 2.0
    longest: float = 30.0
    clock: Callable[[], float] = time.monotonic
    _input_at: float = float("-inf")
    _full_at: float = field(default=float("nan"))
    _saved: tuple[int, int, int] | None = None

    def __post_init__(self) -> None:
        self._full_at = self.clock()

    def start(self) -> None:
        if self._saved is None:
            self._saved = gc.get_threshold()
            gc.set_threshold(self._saved[0], self._saved[1], NEVER)

    def stop(self) -> None:
        if self._saved is not None:
            gc.set_threshold(*self._saved)
            self._saved = None

    def pressed(self) -> None:
        self._input_at = self.clock()

    def tick(self) -> bool:
        """Run a full pass if it is time; True if one ran."""
        if self._saved is None:
            return False
        now = self.clock()
        typed = self._input_at > self._full_at and now - self._input_at >= self.quiet
        if typed or now - self._full_at >= self.longest:
            gc.collect()
            self._full_at = self.clock()
            return True
        return False
