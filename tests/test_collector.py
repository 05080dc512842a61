"""The long garbage-collector pass waits until the keys rest (console/collector.py)."""

from __future__ import annotations

import gc

from tafang.console.collector import IdleCollector


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def full_passes() -> int:
    return gc.get_stats()[2]["collections"]


def test_the_long_pass_waits_for_the_keys_to_rest_and_freezes_what_survives() -> None:
    clock = Clock()
    c = IdleCollector(quiet=2.0, longest=60.0, clock=clock)
    c.start()
    try:
        assert not c.tick()  # nothing typed yet, not long since
        for _ in range(50):  # typing: a key every 0.2 s, no pass of ours meanwhile
            clock.t += 0.2
            c.pressed()
            assert not c.tick()
        clock.t += 1.0
        assert not c.tick()  # one second after the last key: still typing, maybe
        before = full_passes()
        clock.t += 1.0
        assert c.tick() and full_passes() >= before + 1  # two quiet seconds: now
        assert gc.get_freeze_count() > 0  # the survivors frozen: later passes skip them
        clock.t += 10
        assert not c.tick()  # resting, and nothing typed since
        clock.t += 50
        assert c.tick()  # an idle console: once a minute
        c.stop()
        c.pressed()
        clock.t += 5
        assert not c.tick()  # stopped (the app is closing)
    finally:
        gc.unfreeze()


def test_cpythons_own_full_pass_is_followed_by_a_freeze_while_started() -> None:
    """While keys keep coming (no rest), each full pass's survivors are frozen at once, so
    the next full pass walks only what is newer; stopped, the collector leaves gc alone."""
    c = IdleCollector(clock=Clock())
    gc.unfreeze()
    try:
        c.start()
        kept = [[i] for i in range(1000)]  # survivors of the next full pass
        before = gc.get_freeze_count()
        gc.collect(2)  # as CPython's own trigger would run it
        assert gc.get_freeze_count() >= before + len(kept)
        assert not gc.get_objects(generation=2)  # all moved to the permanent generation
        c.stop()
        gc.unfreeze()
        gc.collect(2)
        assert gc.get_freeze_count() == 0  # no callback left behind
    finally:
        c.stop()
        gc.unfreeze()
