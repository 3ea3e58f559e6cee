"""A latency histogram for one writer thread, read by a metrics scrape without locks.

The hot paths that time themselves (the edge pipeline's stages, central's ingest turns)
each run on one thread. ``observe`` is a bisect and two additions on plain Python
objects, with no lock and no import of a metrics library; a Prometheus collector copies
the counts at scrape time (``shared.metrics.histogram_family``). A scrape that races an
``observe`` may see the new count without the new sum, off by one observation until the
next scrape: harmless for rates and quantiles.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

# Seconds: 0.5 ms to 10 s, about x2.5 apart (covers a 1 ms stage and a slow commit).
DEFAULT_BOUNDS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class Histogram:
    """Counts of observations per bucket (upper bounds inclusive), their sum and count."""

    def __init__(self, bounds: Sequence[float] = DEFAULT_BOUNDS) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # the last bucket is +Inf
        self.sum = 0.0

    def observe(self, seconds: float) -> None:
        """Count one observation (from the owning thread only)."""
        self.counts[bisect.bisect_left(self.bounds, seconds)] += 1
        self.sum += seconds

    @property
    def count(self) -> int:
        """Observations so far."""
        return sum(self.counts)

    def cumulative(self) -> list[tuple[str, int]]:
        """``(le, observations <= le)`` per bucket, ending with ``+Inf``: Prometheus' form."""
        counts = list(self.counts)  # one copy, so the buckets agree with each other
        out, total = [], 0
        for bound, n in zip([*map(str, self.bounds), "+Inf"], counts, strict=True):
            total += n
            out.append((bound, total))
        return out
