"""Give freed heap memory back to the operating system.

glibc's allocator keeps freed memory in its arenas (one per thread that allocated, up to
eight per core) for reuse. The edge pipeline frees a lot in odd sizes from several
threads (OpenVINO outputs, crops, resized inputs, JPEG buffers), so the freed space is
fragmented and the process holds far more than it uses: after a 4-camera run at 1080p
glibc held 57-79 MB free (measured with ``mallinfo2``).

Two remedies, both no-ops where the C library is not glibc (musl, macOS):

* ``tune_allocator`` makes every allocation of 1 MiB or more (OCR inputs, model
  buffers, JPEG scratch) its own mapping, returned to the OS when freed. glibc would otherwise
  raise that threshold after the first large free and serve such blocks from the arenas,
  where they fragment. Measured: 8-15 MB left free in the arenas after a run instead of
  57-79, and 300 MB RSS after a run instead of 330-370 (the same at 256 KiB, which maps
  and faults in every resized detector input as well). Camera frames (6 MB at 1080p)
  come from ``FramePool`` and are not allocated per frame.
* ``HeapTrimmer`` calls ``malloc_trim`` every few seconds to hand back free pages that
  remain (a call costs about a millisecond).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
from collections.abc import Callable
from functools import cache

log = logging.getLogger(__name__)


MMAP_THRESHOLD = 1024 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt parameter number (malloc.h)


@cache
def _glibc(symbol: str) -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), symbol) if name else None  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def tune_allocator(mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Serve allocations of ``mmap_threshold`` bytes or more as their own mappings.

    Process-wide; call once at start-up. Returns False where the C library cannot.
    """
    mallopt = _glibc("mallopt")
    if mallopt is None or not mallopt(_M_MMAP_THRESHOLD, mmap_threshold):
        return False
    log.debug("allocations of %d bytes or more are mapped on their own", mmap_threshold)
    return True


def trim_heap() -> bool:
    """Return free heap pages to the OS; False where the C library cannot."""
    trim = _glibc("malloc_trim")
    if trim is None:
        return False
    trim(0)
    return True


class HeapTrimmer:
    """Calls ``trim_heap`` at most every ``interval_s`` seconds (0: never).

    Args:
        interval_s: Seconds between trims.
        clock: Monotonic clock (injectable for tests).
    """

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self._clock = clock
        self._last = clock()
        self.trims = 0

    def maybe_trim(self) -> None:
        """Trim when the interval has passed since the last trim."""
        if self.interval_s <= 0:
            return
        now = self._clock()
        if now - self._last >= self.interval_s:
            self._last = now
            if trim_heap():
                self.trims += 1
