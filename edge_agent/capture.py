"""Camera capture: the ``CameraConfig`` model, the source registry and the ``CameraHub``.

Every camera runs on its own capture thread (``edge_agent.sources``) that decodes frames
into a small bounded slot. The pipeline takes the freshest frames from all cameras with
``CameraHub.next_frames``; frames it did not take in time are replaced and counted as
dropped, so inference never blocks capture. Per-camera health is ``CameraHub.stats``,
shaped for the agent's heartbeat (``wire.CameraStats``).

Kinds (``CameraConfig.kind``):

* ``file``: a video file (demo, benchmarks); ``loop`` replays it, ``realtime`` paces it
  at its native frame rate. Timestamps are media time anchored at the first open.
* ``rtsp`` / ``http``: a network stream through OpenCV's FFmpeg backend (HTTP covers MJPEG
  ``multipart/x-mixed-replace`` and progressive streams). RTSP carries RTP over its TCP
  connection by default (OpenCV passes FFmpeg ``rtsp_flags=prefer_tcp`` while
  ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` is unset). Setting that variable replaces the default:
  ``rtsp_transport;udp`` gives RTP over UDP; keep ``rtsp_flags;prefer_tcp`` when adding
  other options.
* ``usb``: a V4L2 device, ``/dev/videoN`` or its index ``N``.
* ``snapshots``: a folder that cameras push JPEG snapshots into (typically by FTP).

Lost sources are retried with capped exponential backoff and come back on their own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

from pydantic import Field, field_validator, model_validator

from edge_agent.face_config import FacesConfig
from edge_agent.motion import MotionConfig, Polygon
from edge_agent.sources.base import CameraSource, CapturedFrame, SourceError, SourceStatus
from edge_agent.sources.snapshots import SnapshotFolderSource
from edge_agent.sources.video import VideoSource
from shared import wire
from shared.config import StrictModel

__all__ = [
    "SOURCES",
    "CameraConfig",
    "CameraHub",
    "CameraSource",
    "CapturedFrame",
    "SnapshotConfig",
    "SourceError",
    "SourceKind",
    "SourceStatus",
    "open_source",
]

log = logging.getLogger(__name__)

SourceKind = Literal["file", "rtsp", "http", "snapshots", "usb"]
_VIDEO_ONLY = ("frame_step", "max_fps", "decode_threads")
_URL_PREFIXES: Final[dict[str, tuple[str, ...]]] = {
    "rtsp": ("rtsp://", "rtsps://"),
    "http": ("http://", "https://"),
}


class SnapshotConfig(StrictModel):
    """How a snapshot folder is watched (``kind: snapshots`` only)."""

    pattern: str = Field("*.jpg", description="Glob of snapshot files, matched case-blind.")
    poll_s: float = Field(0.2, gt=0, le=10, description="Seconds between folder scans.")
    settle_s: float = Field(
        1.0,
        gt=0,
        description="A file without a JPEG end marker is read once its size has not changed "
        "for this long (a complete JPEG is read as soon as it stops growing).",
    )
    after: Literal["keep", "delete", "move"] = Field(
        "keep", description="What to do with a file once processed (corrupt ones too)."
    )
    move_to: Path | None = Field(None, description="Folder for processed files (after: move).")
    rescan_s: float = Field(
        5.0,
        gt=0,
        description="Seconds between re-checks of files read already, to notice a camera "
        "rewriting the same name (e.g. latest.jpg).",
    )
    process_existing: bool = Field(
        False, description="Also process files already in the folder when the agent starts."
    )

    @model_validator(mode="after")
    def _move_needs_folder(self) -> SnapshotConfig:
        if (self.after == "move") != (self.move_to is not None):
            raise ValueError("move_to is required with after: move, and only then")
        return self


class CameraConfig(StrictModel):
    """One camera an edge agent reads."""

    camera_id: str = Field(
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="Stable id, unique across the fleet."
    )
    name: str = Field("", max_length=64, description="Human-readable name.")
    kind: SourceKind = Field(description="Source type: file, rtsp, http, snapshots or usb.")
    source: str = Field(
        min_length=1,
        description="File path, stream URL, snapshot folder, or /dev/videoN (or N) for usb.",
    )
    loop: bool = Field(False, description="Replay a video file from the start at its end.")
    realtime: bool = Field(
        True, description="Pace a video file at its native fps (false: as fast as decoded)."
    )
    frame_step: int = Field(
        1, ge=1, le=100, description="Offer every Nth decoded frame (others are not converted)."
    )
    max_fps: float = Field(
        0.0, ge=0.0, description="Offer at most this many frames per second (0: no limit)."
    )
    buffer: int = Field(
        1, ge=1, le=16, description="Frames held for the pipeline; when full the oldest drops."
    )
    when_full: Literal["drop", "wait"] | None = Field(
        None,
        description="When the pipeline is slow: drop the oldest frame (live cameras) or wait "
        "(files that are not realtime, and snapshot folders; that is the default for them).",
    )
    roi: Polygon | None = Field(
        None,
        description="Region of interest: polygon of (x, y) frame fractions 0..1; motion "
        "outside it is ignored.",
    )
    motion: MotionConfig = Field(default_factory=MotionConfig, description="Motion gating.")
    snapshots: SnapshotConfig = Field(
        default_factory=SnapshotConfig, description="Snapshot folder settings."
    )
    decode_threads: int = Field(
        1,
        ge=0,
        le=16,
        description="FFmpeg decoder threads per camera (0: one per core). One is the most "
        "frames per CPU-second when several cameras share the cores.",
    )
    open_timeout_s: float = Field(10.0, gt=0, description="Give up opening a stream after this.")
    read_timeout_s: float = Field(
        10.0, gt=0, description="A stream that sends no frame for this long is reconnected."
    )
    reconnect_min_s: float = Field(1.0, gt=0, description="First retry delay after a failure.")
    reconnect_max_s: float = Field(30.0, gt=0, description="Longest retry delay.")
    faces: FacesConfig = Field(
        default_factory=FacesConfig, description="Face detection and embedding (off by default)."
    )

    @field_validator("roi")
    @classmethod
    def _roi_in_frame(cls, roi: Polygon | None) -> Polygon | None:
        if roi is None:
            return None
        if len(roi) < 3:
            raise ValueError(f"roi needs at least 3 points, got {len(roi)}")
        if any(not (0.0 <= v <= 1.0) for point in roi for v in point):
            raise ValueError("roi points are frame fractions; every x and y must be in 0..1")
        return roi

    @model_validator(mode="after")
    def _options_fit_kind(self) -> CameraConfig:
        prefixes = _URL_PREFIXES.get(self.kind)
        if prefixes and not self.source.lower().startswith(prefixes):
            raise ValueError(f"{self.kind} source must start with {' or '.join(prefixes)}")
        misplaced = [
            name
            for name, kinds in (
                ("loop", ("file",)),
                ("realtime", ("file",)),
                ("snapshots", ("snapshots",)),
            )
            if name in self.model_fields_set and self.kind not in kinds
        ]
        if self.kind == "snapshots":
            misplaced += [n for n in _VIDEO_ONLY if n in self.model_fields_set]
        if misplaced:
            raise ValueError(f"{', '.join(misplaced)} do(es) not apply to kind {self.kind}")
        if self.when_full == "wait" and self.kind not in ("file", "snapshots"):
            raise ValueError(f"when_full: wait would stall a live {self.kind} stream; use drop")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def full_policy(self) -> Literal["drop", "wait"]:
        """The effective ``when_full``: wait for snapshots and non-realtime files."""
        if self.when_full is not None:
            return self.when_full
        offline = self.kind == "snapshots" or (self.kind == "file" and not self.realtime)
        return "wait" if offline else "drop"

    def info(self) -> wire.CameraInfo:
        """This camera as announced in the agent's hello."""
        return wire.CameraInfo(camera_id=self.camera_id, name=self.name, source_kind=self.kind)


SOURCES: Final[Mapping[str, type[CameraSource]]] = {
    "file": VideoSource,
    "rtsp": VideoSource,
    "http": VideoSource,
    "usb": VideoSource,
    "snapshots": SnapshotFolderSource,
}


def open_source(config: CameraConfig) -> CameraSource:
    """Build the (not yet started) source for ``config.kind``."""
    return SOURCES[config.kind](config)


class CameraHub:
    """Runs several cameras, each on its own capture thread, and hands out fresh frames."""

    def __init__(
        self,
        configs: Sequence[CameraConfig],
        registry: Mapping[str, type[CameraSource]] = SOURCES,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Build one source per config; live sources stamp frames with ``clock``.

        Raises:
            ValueError: Two cameras share a ``camera_id``.
        """
        ids = [c.camera_id for c in configs]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique; repeated: {', '.join(dupes)}")
        self._ready = threading.Event()
        self.sources: tuple[CameraSource, ...] = tuple(
            registry[c.kind](c, on_frame=self._ready.set, clock=clock) for c in configs
        )

    def start(self) -> None:
        """Start every camera's capture thread."""
        for s in self.sources:
            s.start()

    def stop(self) -> None:
        """Stop every capture thread and release the devices."""
        for s in self.sources:
            s.stop(timeout=0)  # signal all first so they wind down in parallel
        for s in self.sources:
            s.stop()

    def __enter__(self) -> CameraHub:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def finished(self) -> bool:
        """Every source has ended for good (files without ``loop``) and nothing is left."""
        return all(s.finished for s in self.sources)

    def next_frames(self, timeout: float = 1.0) -> list[CapturedFrame]:
        """One frame from every camera that has one, waiting up to ``timeout`` for the first.

        Returns:
            At most one frame per camera, in camera order; empty on timeout or when all
            sources finished.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._ready.clear()
            frames = [f for s in self.sources if (f := s.latest(0.0)) is not None]
            remaining = deadline - time.monotonic()
            if frames or remaining <= 0 or self.finished:
                return frames
            self._ready.wait(remaining)

    def stats(self) -> list[wire.CameraStats]:
        """Per-camera health for the heartbeat (the agent's ``camera_stats`` callable)."""
        return [s.stats() for s in self.sources]

    def status(self) -> list[SourceStatus]:
        """Per-camera counters in full (more than the heartbeat carries)."""
        return [s.status() for s in self.sources]

    def cameras(self) -> list[wire.CameraInfo]:
        """The cameras as announced in the agent's hello."""
        return [s.config.info() for s in self.sources]
