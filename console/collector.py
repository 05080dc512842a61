"""Full garbage-collector passes made short, by doing the long one while the keys rest.

The console keeps ~100k long-lived objects beside the frozen load (Textual's strips, each
with seven small caches, the styles caches, the rows). CPython walks every unfrozen one in
each full (generation 2) collection, which it starts on its own whenever enough new objects
have survived: 60–100 ms on two shared cores, landing on the frame after a key (seen in
bench/console.py: the dispatch modal's Enter, p95 200 ms).

Once the keys have rested `quiet` seconds after some typing (or `longest` seconds have passed
in an idle console), the tick collects everything, the frozen load included, and freezes
what survives: CPython's own full passes then walk only what is newer, a few ms. Its own
passes stay on, so memory held by cycles stays bounded as before.

While keys keep coming there is no rest, and CPython's own full passes came every second or
so, each walking everything that survived since the last freeze: 87–188 ms each, 20k objects
collected (bench/console.py with a gc trace: every slow Enter of the dispatch panel and the
command line sat on one). So each of CPython's own full passes is followed by a freeze of its
survivors: the next walks only what is newer. What dies after being frozen waits for the
next rest, when everything is unfrozen and collected.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class IdleCollector:
    """`tick` once a second, `pressed` on every key; `start` once the load is frozen."""

    quiet: float = 2.0
    longest: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _input_at: float = float("-inf")
    _full_at: float = field(default=float("nan"))
    _started: bool = False

    def __post_init__(self) -> None:
        self._full_at = self.clock()

    def start(self) -> None:
        self._started = True
        if _freeze_after_full not in gc.callbacks:
            gc.callbacks.append(_freeze_after_full)

    def stop(self) -> None:
        self._started = False
        if _freeze_after_full in gc.callbacks:
            gc.callbacks.remove(_freeze_after_full)

    def pressed(self) -> None:
        self._input_at = self.clock()

    def tick(self) -> bool:
        """Collect and freeze again if it is time; True if it did."""
        if not self._started:
            return False
        now = self.clock()
        resting = now - self._input_at >= self.quiet
        typed = self._input_at > self._full_at
        if not resting or not (typed or now - self._full_at >= self.longest):
            return False
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._full_at = self.clock()
        return True


def _freeze_after_full(phase: str, info: dict[str, int]) -> None:
    """A gc callback: after a full pass (CPython's own or ours), freeze its survivors."""
    if phase == "stop" and info["generation"] == 2:
        gc.freeze()
