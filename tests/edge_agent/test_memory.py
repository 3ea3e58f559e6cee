"""Frame buffer reuse and heap trimming: what keeps the agent's memory flat."""

from __future__ import annotations

import numpy as np

from edge_agent.memory import HeapTrimmer, trim_heap
from edge_agent.sources.base import FramePool

SHAPE = (1080, 1920, 3)


def test_pool_reuses_a_buffer_once_nothing_refers_to_it() -> None:
    pool = FramePool(2)
    first = pool.take(SHAPE)
    assert first is not None and first.shape == SHAPE and first.dtype == np.uint8
    address = first.ctypes.data
    del first
    again = pool.take(SHAPE)
    assert again is not None and again.ctypes.data == address


def test_pool_never_hands_out_a_buffer_still_in_use() -> None:
    pool = FramePool(2)
    held = pool.take(SHAPE)
    assert held is not None
    view = held[100:200, 100:300]  # a crop keeps its frame alive
    del held
    other = pool.take(SHAPE)
    assert other is not None and not np.shares_memory(other, view)
    assert pool.take(SHAPE) is None  # both busy, at the limit: the decoder allocates


def test_pool_forgets_buffers_of_another_size() -> None:
    pool = FramePool(1)
    small = pool.take((720, 1280, 3))
    del small
    big = pool.take(SHAPE)
    assert big is not None and big.shape == SHAPE


def test_trimmer_trims_at_most_once_per_interval() -> None:
    now = [100.0]
    trimmer = HeapTrimmer(5.0, clock=lambda: now[0])
    for t in (101.0, 104.9, 105.0, 106.0, 110.1):
        now[0] = t
        trimmer.maybe_trim()
    assert trimmer.trims == 2  # at 105.0 and 110.1


def test_trimmer_off_at_zero_and_trim_works_on_glibc() -> None:
    trimmer = HeapTrimmer(0.0, clock=lambda: 1e9)
    trimmer.maybe_trim()
    assert trimmer.trims == 0
    assert trim_heap() is True  # the CI and edge boxes run glibc
