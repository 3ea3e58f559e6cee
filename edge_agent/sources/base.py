"""The ``CameraSource`` seam: one capture thread, a bounded frame slot, health counters.

A backend implements ``_open``, ``_read`` and ``_close``; this base runs them on a thread,
reconnects with capped exponential backoff when they raise ``SourceError``, and keeps
the newest frames in a slot of ``config.buffer`` frames. With ``when_full: drop`` a frame
the pipeline did not take before a newer one arrived is discarded and counted; with
``wait`` the capture thread waits for the pipeline instead (files, snapshot folders).

Decoded frames go into buffers from a ``FramePool``: a 1080p BGR frame is 6 MB, and
allocating one per frame from several capture threads fragments the heap (measured: the
agent's RSS grew by over 100 MB across a 4-camera run) or, with large allocations
mmapped, costs about 1.5 ms of page faults per frame.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from shared import wire

if TYPE_CHECKING:
    from edge_agent.capture import CameraConfig

log = logging.getLogger(__name__)

_RATE_WINDOW_S = 5.0
_MAX_ERROR = 256


class SourceError(Exception):
    """The source cannot deliver frames now; the message says what was expected and what came."""


@dataclass(frozen=True, slots=True)
class CapturedFrame:
    """One decoded frame.

    Attributes:
        camera_id: The camera it came from.
        index: Per-camera sequence number of frames offered to the pipeline, from 0.
        captured_at: UNIX seconds: wall clock at decode for live sources, media time
            anchored at the first open for files, file mtime for snapshots.
        image: BGR uint8 [H, W, 3]. The source reuses its buffer only once nothing else
            refers to it (see ``FramePool``): keep the array, or a view of it, as long as
            needed, but never its raw memory alone.
        source: Where it came from: the configured source, or the snapshot file's path.
    """

    camera_id: str
    index: int
    captured_at: float
    image: NDArray[np.uint8]
    source: str


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """A camera's health; counters are cumulative since the source was built.

    Attributes:
        online: Delivering frames now (a snapshot folder: readable).
        finished: Ended for good (a file without loop) and every frame was taken.
        fps_in: Frames decoded per second over the last 5 s.
        fps_out: Frames taken by the pipeline per second over the last 5 s.
        frames_decoded: Frames (or snapshots) decoded.
        frames_offered: Frames put in the slot (decoded less ``frames_skipped``).
        frames_taken: Frames the pipeline took.
        frames_dropped: Frames replaced in the slot before the pipeline took them.
        frames_skipped: Frames left out on purpose by ``frame_step`` or ``max_fps``.
        corrupt: Inputs skipped as undecodable (snapshots).
        reconnects: Failed opens or lost connections, each followed by a retry.
        error: The latest problem, kept after recovery (``online`` is the current state).
    """

    camera_id: str
    online: bool
    finished: bool
    fps_in: float
    fps_out: float
    frames_decoded: int
    frames_offered: int
    frames_taken: int
    frames_dropped: int
    frames_skipped: int
    corrupt: int
    reconnects: int
    error: str

    def to_wire(self) -> wire.CameraStats:
        """The heartbeat's view of this status."""
        return wire.CameraStats(
            camera_id=self.camera_id,
            online=self.online,
            fps_in=self.fps_in,
            fps_out=self.fps_out,
            frames_dropped=self.frames_dropped,
            error=self.error[:_MAX_ERROR],
        )


class FramePool:
    """Recycles one camera's frame buffers once nothing outside the pool refers to them.

    A buffer is free when its reference count shows only the pool's own reference: a
    frame held by the slot, the pipeline, or any numpy view of it (a view refers to its
    base) is never handed out again. Beyond ``size`` buffers in use, ``take`` returns
    None and the caller lets the decoder allocate.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._buffers: list[NDArray[np.uint8]] = []

    def take(self, shape: tuple[int, ...]) -> NDArray[np.uint8] | None:
        """A buffer of ``shape`` that nobody else refers to, or None when all are busy.

        Buffers of another shape (the stream changed size) are forgotten.
        """
        if self._buffers and self._buffers[0].shape != shape:
            self._buffers = []
        for i in range(len(self._buffers)):
            # References: the list's and getrefcount's argument.
            if sys.getrefcount(self._buffers[i]) == 2:
                return self._buffers[i]
        if len(self._buffers) >= self._size:
            return None
        buffer = np.empty(shape, dtype=np.uint8)
        self._buffers.append(buffer)
        return buffer


class _Rate:
    """Events per second over the last few seconds."""

    def __init__(self, window: float = _RATE_WINDOW_S) -> None:
        self._window = window
        self._times: deque[float] = deque()
        self._since = time.monotonic()

    def tick(self, now: float) -> None:
        self._times.append(now)
        self._trim(now)

    def rate(self, now: float) -> float:
        self._trim(now)
        span = min(self._window, now - self._since)
        return len(self._times) / span if span > 0 else 0.0

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - self._window:
            self._times.popleft()


class Backoff:
    """Capped exponential retry delays: ``low, 2 low, 4 low, ... high``."""

    def __init__(self, low: float, high: float) -> None:
        self._low, self._high = low, high
        self._next = low

    def next(self) -> float:
        """The delay before the next retry."""
        delay = self._next
        self._next = min(self._next * 2, self._high)
        return delay

    def reset(self) -> None:
        """Start from the shortest delay again (after a success)."""
        self._next = self._low


class CameraSource(ABC):
    """A camera read on its own thread; the pipeline takes frames with ``latest``."""

    def __init__(
        self,
        config: CameraConfig,
        on_frame: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create a stopped source.

        Args:
            config: The camera.
            on_frame: Called on the capture thread after each frame is offered (a hub's
                wake-up); must be quick.
            clock: Wall clock for live timestamps (injectable for tests).
        """
        self.config = config
        self._on_frame = on_frame
        self._clock = clock
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._slot: deque[CapturedFrame] = deque()
        self._thread: threading.Thread | None = None
        self._in, self._out = _Rate(), _Rate()
        self._online = self._ended = False
        self._error = ""
        self._decoded = self._offered = self._taken = self._dropped = 0
        self._skipped = self._corrupt = self._reconnects = 0
        self._last_offer = -1e18
        self._last_failure = ""

    # -- backend hooks ---------------------------------------------------------------

    @abstractmethod
    def _open(self) -> None:
        """Connect to the camera; raise ``SourceError`` saying why when it cannot."""

    @abstractmethod
    def _read(self) -> bool:
        """Deliver frames with ``_offer``; return False when the source ended for good.

        Called repeatedly while the source is open. Raise ``SourceError`` when the
        connection is lost (the base closes, waits and reopens).
        """

    def _close(self) -> None:  # noqa: B027  (optional hook)
        """Release the camera; called on the capture thread after ``_open``."""

    # -- public ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the capture thread (once)."""
        if self._thread is not None:
            raise RuntimeError(f"camera {self.config.camera_id} already started")
        self._thread = threading.Thread(
            target=self._run, name=f"capture-{self.config.camera_id}", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the capture thread and wait up to ``timeout`` seconds for it (0: don't wait)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            if timeout > 0 and self._thread.is_alive():
                log.warning(
                    "camera %s: capture thread did not stop in %.1f s",
                    self.config.camera_id,
                    timeout,
                )

    def latest(self, timeout: float = 0.0) -> CapturedFrame | None:
        """Take the oldest frame held (with ``buffer: 1``, the newest decoded).

        Args:
            timeout: Seconds to wait for a frame when none is held.
        """
        with self._cond:
            if not self._slot and timeout > 0:
                self._cond.wait_for(lambda: bool(self._slot) or self._stop.is_set(), timeout)
            if not self._slot:
                return None
            frame = self._slot.popleft()
            self._taken += 1
            self._out.tick(time.monotonic())
            self._cond.notify_all()
            return frame

    @property
    def finished(self) -> bool:
        """The source ended for good (a file without loop) and every frame was taken."""
        with self._cond:
            return self._ended and not self._slot

    def status(self) -> SourceStatus:
        """All counters and the current state."""
        now = time.monotonic()
        with self._cond:
            return SourceStatus(
                camera_id=self.config.camera_id,
                online=self._online,
                finished=self._ended and not self._slot,
                fps_in=round(self._in.rate(now), 2),
                fps_out=round(self._out.rate(now), 2),
                frames_decoded=self._decoded,
                frames_offered=self._offered,
                frames_taken=self._taken,
                frames_dropped=self._dropped,
                frames_skipped=self._skipped,
                corrupt=self._corrupt,
                reconnects=self._reconnects,
                error=self._error,
            )

    def stats(self) -> wire.CameraStats:
        """Health for the heartbeat."""
        return self.status().to_wire()

    # -- for backends ------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Stop was requested; long waits in a backend should end."""
        return self._stop.is_set()

    def _count_decoded(self) -> None:
        with self._cond:
            self._decoded += 1
            self._in.tick(time.monotonic())

    def _wanted(self, at: float) -> bool:
        """Whether the frame just decoded passes ``frame_step`` and ``max_fps``.

        Args:
            at: The frame's timestamp (media time for files, so ``max_fps`` thins a file
                the same way whether it plays in real time or not).
        """
        c = self.config
        if c.frame_step > 1 and (self._decoded - 1) % c.frame_step:
            self._skipped += 1
            return False
        if c.max_fps > 0:
            # Small tolerance so 25 fps thinned to 12.5 keeps every other frame.
            if at - self._last_offer < 0.999 / c.max_fps:
                self._skipped += 1
                return False
            self._last_offer = at
        return True

    def _await_room(self) -> bool:
        """With ``when_full: wait``, block until the slot has room; False when stopping.

        Backends call it before converting a decoded frame, so a waiting camera holds
        its next frame inside the decoder instead of as one more 6 MB array.
        """
        if self.config.full_policy != "wait":
            return True
        with self._cond:
            self._cond.wait_for(lambda: len(self._slot) < self.config.buffer or self._stop.is_set())
            return not self._stop.is_set()

    def _offer(self, image: NDArray[np.uint8], captured_at: float, source: str) -> bool:
        """Put a frame in the slot, dropping the oldest or waiting as configured.

        Returns:
            False when a stop request ended the wait and the frame was not offered.
        """
        if not self._await_room():
            return False
        with self._cond:
            # Only this thread fills the slot, so after a wait it still has room; a full
            # slot here means ``when_full: drop``.
            if len(self._slot) >= self.config.buffer:
                self._slot.popleft()
                self._dropped += 1
            frame = CapturedFrame(self.config.camera_id, self._offered, captured_at, image, source)
            self._slot.append(frame)
            self._offered += 1
            self._cond.notify_all()
        self._set_online()
        if self._on_frame is not None:
            self._on_frame()
        return True

    def _set_online(self) -> None:
        """Mark the camera as delivering (backends call it when that is known sooner)."""
        if self._online:
            return
        with self._cond:
            was, self._online = self._online, True
        if not was:
            log.info("camera %s: online", self.config.camera_id)

    def _note_corrupt(self, message: str) -> None:
        """Count an input that was skipped (e.g. a broken JPEG) and log it."""
        log.warning("camera %s: %s", self.config.camera_id, message)
        with self._cond:
            self._corrupt += 1
            self._error = message

    def _note_error(self, message: str) -> None:
        """Record the latest error without taking the camera offline."""
        with self._cond:
            self._error = message

    # -- the capture thread --------------------------------------------------------------

    def _run(self) -> None:
        backoff = Backoff(self.config.reconnect_min_s, self.config.reconnect_max_s)
        cam = self.config.camera_id
        while not self._stop.is_set():
            try:
                if self._session(backoff):
                    self._finish()
                    return
                continue
            except SourceError as err:
                message = str(err)
            except Exception as err:  # a backend bug must not end this camera for good
                log.exception("camera %s: unexpected error in capture", cam)
                message = f"internal error: {type(err).__name__}: {err}"
            if message != self._last_failure:  # log each outage once, not every retry
                log.warning("camera %s: offline: %s", cam, message)
            self._last_failure = message
            with self._cond:
                self._online = False
                self._error = message
                self._reconnects += 1
            self._stop.wait(backoff.next())
        with self._cond:
            self._online = False

    def _session(self, backoff: Backoff) -> bool:
        """Open, read until stopped or failed, close; True when the source ended for good."""
        self._open()
        try:
            recovered = False
            while not self._stop.is_set():
                if not self._read():
                    return True
                if not recovered and self._online:
                    backoff.reset()
                    self._last_failure = ""
                    recovered = True
            return False
        finally:
            self._close()

    def _finish(self) -> None:
        log.info("camera %s: source ended", self.config.camera_id)
        with self._cond:
            self._online = False
            self._ended = True
            self._cond.notify_all()
        if self._on_frame is not None:
            self._on_frame()
