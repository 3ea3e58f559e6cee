"""Video files, RTSP/HTTP streams and USB cameras through OpenCV's ``VideoCapture``.

Decoding uses FFmpeg in software with ``decode_threads`` threads (hardware acceleration
off: the edge boxes have none that FFmpeg in the OpenCV wheel can use, and probing it costs
start-up time). Frames that ``frame_step`` or ``max_fps`` skip are only ``grab()``-ed:
H.264 still decodes them (every frame is a reference) but the YUV->BGR conversion and
the copy are skipped. Measured on the 2-core edge box, CPU ms per frame, one thread:

=====================  ==========  =============  ==============
clip                   read()      grab() only    2 threads read
=====================  ==========  =============  ==============
H.264 1280x720 2 Mb/s  2.4         1.9            3.2
H.264 1920x1080 4 Mb/s 4.9         3.8            5.7
HEVC 1920x1080 4 Mb/s  8.3         7.0            8.3
=====================  ==========  =============  ==============

So four 1080p H.264 cameras at 25 fps cost about 0.5 of one core to decode, and one
decoder thread per camera is cheaper than FFmpeg's default of one per core.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from edge_agent.sources.base import CameraSource, FramePool, SourceError

if TYPE_CHECKING:
    from collections.abc import Callable

    from edge_agent.capture import CameraConfig

log = logging.getLogger(__name__)

# A file is called truncated when it ends this far short of its header's frame count
# (the count is an estimate: real clips end up to ~2 % short).
_SHORT_FRACTION = 0.95
_SHORT_FRAMES = 5
_MAX_LAG_S = 1.0


class VideoSource(CameraSource):
    """A ``file``, ``rtsp``, ``http`` or ``usb`` camera."""

    def __init__(
        self,
        config: CameraConfig,
        on_frame: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create a stopped video source (see ``CameraSource``)."""
        super().__init__(config, on_frame, clock)
        self._cap: Any = None
        self._fps = 0.0
        self._expected = 0
        self._pass_frames = 0
        self._media_offset = 0.0
        self._anchor_wall: float | None = None
        self._anchor_mono = 0.0
        self._label = _redact(config.source)
        # The slot's frames and the one being converted; while the pipeline still holds
        # a frame the decoder allocates a fresh one (the pool never grows past this).
        self._pool = FramePool(config.buffer + 1)
        self._shape: tuple[int, int, int] = (0, 0, 3)

    @property
    def is_file(self) -> bool:
        """Whether this plays a file (media time, pacing, loop, end of stream)."""
        return self.config.kind == "file"

    def _open(self) -> None:
        import cv2

        c = self.config
        target: str | int = c.source
        params = [cv2.CAP_PROP_HW_ACCELERATION, cv2.VIDEO_ACCELERATION_NONE]
        params += [cv2.CAP_PROP_N_THREADS, c.decode_threads]
        if c.kind == "usb":
            target = _usb_index(c.source)
            if not Path(f"/dev/video{target}").exists():
                raise SourceError(f"USB camera /dev/video{target} not found")
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        else:
            if self.is_file and not Path(c.source).is_file():
                raise SourceError(f"video file {c.source} not found")
            params += [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(c.open_timeout_s * 1000)]
            params += [cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(c.read_timeout_s * 1000)]
            cap = cv2.VideoCapture(target, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            what = "video file (truncated, or not a video?)" if self.is_file else c.kind
            raise SourceError(f"cannot open {what} {_redact(c.source)}")
        if c.kind in ("rtsp", "http") and cap.get(cv2.CAP_PROP_FRAME_WIDTH) <= 0:
            # The open timeout cut FFmpeg's probing short: connected, but no frame came.
            cap.release()
            raise SourceError(
                f"{c.kind} {_redact(c.source)} sent no frame within {c.open_timeout_s:g} s"
            )
        self._cap = cap
        self._fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self._expected = max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0)
        self._pass_frames = 0
        size = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        self._shape = (*size, 3)
        log.info(
            "camera %s: opened %s %s (%.2f fps)", c.camera_id, c.kind, _redact(c.source), self._fps
        )

    def _close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _read(self) -> bool:
        cap = self._cap
        if not cap.grab():
            return self._end_of_stream()
        self._pass_frames += 1
        self._count_decoded()
        captured_at = self._pace() if self.is_file else self._clock()
        if not self._wanted(captured_at) or not self._await_room():
            return True
        buffer = self._pool.take(self._shape) if min(self._shape[:2]) > 0 else None
        ok, image = cap.retrieve() if buffer is None else cap.retrieve(buffer)
        if not ok or image is None:
            raise SourceError(f"{self.config.kind} frame {self._pass_frames} failed to decode")
        if image is not buffer and image.ndim == 3:
            self._shape = image.shape  # the stream's header told another size
        self._offer(_bgr(image), captured_at, self._label)
        return True

    def _pace(self) -> float:
        """Media time of the frame just grabbed; in realtime mode, sleep until it is due."""
        fps = self._fps if self._fps > 0 else 25.0
        media_t = self._media_offset + (self._pass_frames - 1) / fps
        if self._anchor_wall is None:
            self._anchor_wall, self._anchor_mono = self._clock(), time.monotonic() - media_t
        if self.config.realtime:
            lag = time.monotonic() - (self._anchor_mono + media_t)
            if lag > _MAX_LAG_S:  # fell behind (or was offline): do not burst to catch up
                self._anchor_mono += lag
                self._anchor_wall += lag
            elif lag < 0:
                self._stop.wait(-lag)
        return self._anchor_wall + media_t

    def _end_of_stream(self) -> bool:
        """Handle ``grab()`` failing: end, loop, or raise for a lost stream."""
        c = self.config
        if not self.is_file:
            raise SourceError(
                f"{c.kind} stream {_redact(c.source)} stopped sending frames "
                f"(closed, or nothing for {c.read_timeout_s:g} s)"
            )
        frames, expected = self._pass_frames, self._expected
        if frames == 0:
            raise SourceError(f"video file {c.source} has no decodable frame")
        if expected and frames < expected * _SHORT_FRACTION and expected - frames > _SHORT_FRAMES:
            message = (
                f"video file {c.source} ended after {frames} of {expected} frames "
                "(truncated or corrupt)"
            )
            log.warning("camera %s: %s", c.camera_id, message)
            self._note_error(message)
        if not c.loop:
            return False
        fps = self._fps if self._fps > 0 else 25.0
        self._media_offset += frames / fps
        self._close()
        self._open()
        return True


def _bgr(image: NDArray[Any]) -> NDArray[np.uint8]:
    """Make sure a frame is 3-channel BGR uint8 (USB cameras may give grey)."""
    if image.ndim == 2:
        return np.repeat(image[:, :, None], 3, axis=2)
    return image


def _usb_index(source: str) -> int:
    """``/dev/video2`` or ``2`` -> 2."""
    match = re.fullmatch(r"(?:/dev/video)?(\d+)", source.strip())
    if match is None:
        raise SourceError(f"usb source must be /dev/videoN or N, got {source!r}")
    return int(match.group(1))


def _redact(url: str) -> str:
    """Hide a password in ``scheme://user:password@host`` before logging."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)
