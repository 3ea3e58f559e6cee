"""Python's cyclic garbage collector, tuned for central's allocation pattern.

Ingest makes hundreds of thousands of short-lived objects a second (decoded sightings,
their lists, Arrow builders' inputs) that reference counting alone frees; hardly any form
a cycle. With CPython's default thresholds (a young collection every 700 net allocations)
the collector ran every few dozen sightings and walked every object a turn still held,
and each full collection walked the whole application (routes, the watchlist matcher,
caches): a fifth to a half of ingest's CPU in ``varta bench ingest``.

So central's process (``central.serve``) collects the young generation every
``YOUNG_THRESHOLD`` allocations and moves everything built before it serves into the
permanent generation (``gc.freeze``), which no collection walks again. Cycles are still
collected, only less often; the memory this can hold is what some seconds of ingest leave
in cycles (the soak bench watches RSS for exactly this).
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

YOUNG_THRESHOLD = 50_000
"""Net allocations between young-generation collections (CPython's default: 700)."""

OLDER_THRESHOLDS = (20, 20)
"""Young collections per middle one, middle ones per full one (default: 10, 10)."""


def tune() -> None:
    """Set the thresholds and freeze what exists now (call once, after start-up)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    log.debug("gc: %d objects frozen, thresholds %s", gc.get_freeze_count(), gc.get_threshold())


@contextmanager
def tuned() -> Iterator[None]:
    """``tune()`` for a while, then CPython's thresholds again and nothing frozen (for
    benchmarks that run central inside a longer-lived process)."""
    before = gc.get_threshold()
    tune()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
