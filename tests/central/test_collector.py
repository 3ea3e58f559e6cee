"""Central's GC tuning: thresholds raised and start-up objects frozen while tuned, and
CPython's own settings back afterwards (benchmarks run central inside a longer process)."""

from __future__ import annotations

import gc
import weakref

from central import collector


def test_tuned_raises_thresholds_freezes_and_restores() -> None:
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    with collector.tuned():
        assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, *collector.OLDER_THRESHOLDS)
        assert gc.get_freeze_count() > 1000  # everything alive at start-up
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_are_still_collected_when_tuned() -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Node | None = None

    with collector.tuned():
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
        assert gone() is not None  # a cycle: reference counting alone keeps it
        gc.collect()
        assert gone() is None
