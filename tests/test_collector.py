"""Full garbage-collector passes wait until the keys stop (console/collector.py)."""

from __future__ import annotations

import gc

from tafang.console.collector import NEVER, IdleCollector


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def full_passes() -> int:
    return gc.get_stats()[2]["collections"]


def test_the_full_pass_waits_for_the_keys_to_stop_and_never_waits_too_long() -> None:
    clock = Clock()
    saved = gc.get_threshold()
    c = IdleCollector(quiet=2.0, longest=120.0, clock=clock)
    c.start()
    try:
        assert gc.get_threshold() == (saved[0], saved[1], NEVER)
        assert not c.tick()  # nothing typed yet, not long since
        for _ in range(50):  # typing: a key every 0.2 s, no full pass meanwhile
            clock.t += 0.2
            c.pressed()
            assert not c.tick()
        clock.t += 1.0
        assert not c.tick()  # one second after the last key: still typing, maybe
        before = full_passes()
        clock.t += 1.0
        assert c.tick() and full_passes() == before + 1  # two quiet seconds: now
        passed_at = clock.t
        clock.t += 10
        assert not c.tick()  # idle, and nothing typed since the pass
        ran = False
        for _ in range(700):  # typing without a pause for over two minutes
            clock.t += 0.2
            c.pressed()
            if c.tick():
                ran = True
                break
        assert ran and 120 <= clock.t - passed_at < 121  # at the longest interval
    finally:
        c.stop()
    assert gc.get_threshold() == saved
