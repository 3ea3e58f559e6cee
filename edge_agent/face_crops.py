"""Face crops kept on the edge only: a ring buffer bounded by count and age.

Central never receives a face image unless the face matched the watchlist: it then asks
the agent for the crop of that observation (by its event id) over the CURVE link, and the
agent answers from here while it still holds it. Crops are JPEG bytes in memory only (a
restart forgets them, which is the privacy-friendly failure). Thread-safe: the pipeline
adds, the link's request handler looks up.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StoredCrop:
    """One crop: JPEG bytes, when it was taken and its camera."""

    jpeg: bytes
    taken_at: float
    camera_id: str


class FaceCropStore:
    """At most ``max_count`` crops, none older than ``max_age_s``; oldest evicted first.

    Args:
        max_count: Crops kept, at most.
        max_age_s: Age after which a crop is gone (measured on ``clock``).
        clock: Seconds; injectable for tests.
    """

    def __init__(
        self, max_count: int, max_age_s: float, clock: Callable[[], float] = time.time
    ) -> None:
        if max_count < 1 or max_age_s <= 0:
            raise ValueError(
                f"expected max_count >= 1 and max_age_s > 0, got {max_count}, {max_age_s}"
            )
        self.max_count = max_count
        self.max_age_s = max_age_s
        self._clock = clock
        self._crops: OrderedDict[str, StoredCrop] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted_count = 0
        self.evicted_age = 0

    def put(
        self, observation_id: str, jpeg: bytes, camera_id: str, taken_at: float | None = None
    ) -> None:
        """Keep the crop of ``observation_id``; evict beyond the bounds."""
        at = self._clock() if taken_at is None else taken_at
        with self._lock:
            self._crops[observation_id] = StoredCrop(jpeg, at, camera_id)
            self._crops.move_to_end(observation_id)
            self._expire()
            while len(self._crops) > self.max_count:
                self._crops.popitem(last=False)
                self.evicted_count += 1

    def get(self, observation_id: str) -> StoredCrop | None:
        """The crop of ``observation_id``, or None when it was never kept or has expired."""
        with self._lock:
            self._expire()
            return self._crops.get(observation_id)

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._crops)

    @property
    def bytes(self) -> int:
        """JPEG bytes held."""
        with self._lock:
            return sum(len(c.jpeg) for c in self._crops.values())

    def _expire(self) -> None:
        oldest = self._clock() - self.max_age_s
        while self._crops:
            key, crop = next(iter(self._crops.items()))
            if crop.taken_at >= oldest:
                break
            del self._crops[key]
            self.evicted_age += 1
