"""Vehicle tracking: one track, and so one sighting, per vehicle pass.

Association is ByteTrack-style, on IoU against a constant-velocity prediction: detections
at or above their class's high threshold are matched first against every live track;
leftover tracks then get a second chance against low-confidence detections (a vehicle
partly hidden or blurred keeps its track instead of starting a new one). An unmatched
high detection starts a tentative track that is confirmed after ``min_hits`` matches; a
tentative track missed once dies, a confirmed one ends ``max_age_s`` after it was last
matched. Ageing happens only in detection runs, so a car stopped in front of a camera
whose motion gate skips detection keeps its track.

Each track votes what it saw across frames: vehicle type and colour (mean of the
classifier's distributions) and the plate (:mod:`edge_agent.plate_vote`). A track is
emitted once: when it ends, or ``emit_delay_s`` after its voted plate became stable (the
voted text agreed with ``stable_reads`` reads in a row, or reached ``stable_confidence``),
so slow traffic does not hold alerts back.

Pure Python and numpy; images (thumbnails) are stored as given, never processed here.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import Field

from edge_agent.plate_vote import vote_plate
from shared.config import StrictModel
from shared.wire import Plate

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
Image = NDArray[np.uint8]


class TrackerConfig(StrictModel):
    """How detections are linked into tracks and when a track is emitted."""

    high_thresholds: tuple[float, float] = Field(
        (0.3, 0.15),
        description="Confidence at which a detection may start a track, per detector class "
        "(vehicle, motorcycle).",
    )
    low_threshold: float = Field(
        0.1, ge=0.0, le=1.0, description="Weaker detections only extend existing tracks."
    )
    match_iou: float = Field(
        0.3, gt=0.0, le=1.0, description="Least IoU to link a confident detection to a track."
    )
    low_match_iou: float = Field(
        0.5, gt=0.0, le=1.0, description="Least IoU to link a weak detection to a track."
    )
    min_hits: int = Field(2, ge=1, description="Matches before a new track counts as a vehicle.")
    max_age_s: float = Field(
        1.0, gt=0.0, description="A track unmatched this long (in detection runs) has ended."
    )
    stable_reads: int = Field(
        3, ge=1, description="The voted plate is stable after this many reads in a row agree."
    )
    stable_confidence: float = Field(
        0.9, ge=0.0, le=1.0, description="...or once its voted confidence reaches this."
    )
    emit_delay_s: float = Field(
        1.0, ge=0.0, description="Emit a track at most this long after its plate is stable."
    )
    candidates: int = Field(5, ge=1, le=16, description="Plate alternatives kept per sighting.")
    max_reads: int = Field(
        24, ge=1, description="Plate reads kept per track (the least confident are dropped)."
    )


@dataclass(slots=True)
class Snapshot:
    """An image kept for a track with where it came from.

    Attributes:
        image: The crop (BGR uint8), already size-bounded by the caller.
        score: Higher is better (e.g. size times sharpness).
        frame: Frame index it was cut from.
        time: Capture time of that frame.
        box: Box of the vehicle (or plate) in that frame.
    """

    image: Image
    score: float
    frame: int
    time: float
    box: Box


@dataclass(slots=True)
class Track:
    """One vehicle followed across frames (built by :class:`Tracker`)."""

    id: int
    box: NDArray[np.float64]
    first_seen: float
    last_seen: float
    first_box: Box = (0.0, 0.0, 0.0, 0.0)
    velocity: NDArray[np.float64] = field(default_factory=lambda: np.zeros(4))
    hits: int = 1
    ended: bool = False
    emitted: bool = False
    class_votes: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    type_votes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    colour_votes: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    attribute_frames: int = 0
    colour_frames: int = 0
    reads: list[Plate] = field(default_factory=list)
    plate: Plate | None = None
    streak: int = 0
    stable_since: float | None = None
    last_plate_try: float = -math.inf
    plate_misses: int = 0
    vehicle_shot: Snapshot | None = None
    plate_shots: dict[str, Snapshot] = field(default_factory=dict)

    @property
    def class_id(self) -> int:
        """The detector class most confidently seen."""
        return max(self.class_votes, key=lambda c: self.class_votes[c], default=0)

    def predict(self, now: float, horizon: float) -> NDArray[np.float64]:
        """The box expected at ``now`` (constant velocity, at most ``horizon`` ahead)."""
        return self.box + self.velocity * min(max(now - self.last_seen, 0.0), horizon)

    def _hit(self, box: NDArray[np.float64], confidence: float, class_id: int, now: float) -> None:
        dt = now - self.last_seen
        if dt > 0:
            self.velocity = 0.5 * self.velocity + 0.5 * (box - self.box) / dt
        self.box, self.last_seen = box, now
        self.hits += 1
        self.class_votes[class_id] += confidence

    def add_attributes(self, types: Mapping[str, float], colours: Mapping[str, float]) -> None:
        """Add one frame's type and colour distributions (empty: not classified)."""
        if types:
            self.attribute_frames += 1
            for name, p in types.items():
                self.type_votes[name] += p
        if colours:
            self.colour_frames += 1
            for name, p in colours.items():
                self.colour_votes[name] += p

    def vehicle_type(self) -> tuple[str, float]:
        """Voted type and its mean probability."""
        return _winner(self.type_votes, self.attribute_frames)

    def colour(self) -> tuple[str, float]:
        """Voted colour and its mean probability."""
        return _winner(self.colour_votes, self.colour_frames)

    def add_plate(
        self, read: Plate, now: float, shot: Snapshot | None, config: TrackerConfig
    ) -> None:
        """Add a plate read, re-vote, and note when the voted text became stable."""
        self.plate_misses = 0
        self.reads.append(read)
        if len(self.reads) > config.max_reads:
            self.reads.remove(min(self.reads, key=lambda r: r.confidence))
        if shot is not None:
            best = self.plate_shots.get(read.text)
            if best is None or shot.score > best.score:
                self.plate_shots[read.text] = shot
        previous = self.plate.text if self.plate is not None else None
        self.plate = vote_plate(self.reads, config.candidates)
        if self.plate is None:
            return
        if self.plate.text != previous:
            self.streak, self.stable_since = 0, None
        # Count agreeing reads in a row: alternating reads never make a text stable.
        self.streak = self.streak + 1 if read.text == self.plate.text else 0
        stable = (
            self.streak >= config.stable_reads or self.plate.confidence >= config.stable_confidence
        )
        if stable and self.stable_since is None:
            self.stable_since = now

    def offer_vehicle_shot(self, shot: Snapshot) -> None:
        """Keep ``shot`` as the vehicle thumbnail if it beats the current one."""
        if self.vehicle_shot is None or shot.score > self.vehicle_shot.score:
            self.vehicle_shot = shot

    def plate_shot(self) -> Snapshot | None:
        """The best plate image of the voted text (of any read when none matches)."""
        if self.plate is not None and self.plate.text in self.plate_shots:
            return self.plate_shots[self.plate.text]
        return max(self.plate_shots.values(), key=lambda s: s.score, default=None)


def _winner(votes: Mapping[str, float], frames: int) -> tuple[str, float]:
    if not votes or frames == 0:
        return "", 0.0
    name = max(votes, key=lambda k: votes[k])
    return name, round(min(votes[name] / frames, 1.0), 4)


def box_iou(a: NDArray[Any], b: NDArray[Any]) -> NDArray[np.float64]:
    """Pairwise IoU of ``[N, 4]`` and ``[M, 4]`` boxes -> ``[N, M]``."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float64)


def greedy_match(iou: NDArray[np.float64], threshold: float) -> list[tuple[int, int]]:
    """Pairs ``(row, col)`` taken best IoU first, each row and column at most once."""
    iou = iou.copy()
    pairs: list[tuple[int, int]] = []
    while iou.size:
        r, c = np.unravel_index(int(np.argmax(iou)), iou.shape)
        if iou[r, c] < threshold:
            break
        pairs.append((int(r), int(c)))
        iou[r, :], iou[:, c] = -1.0, -1.0
    return pairs


class Tracker:
    """Links one camera's detections into tracks; not thread-safe (one per camera)."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config if config is not None else TrackerConfig()
        self.tracks: list[Track] = []
        self._next_id = 1

    def update(
        self, xyxy: NDArray[Any], confidence: NDArray[Any], class_id: NDArray[Any], now: float
    ) -> list[Track | None]:
        """Match one detection run's boxes to tracks; start, confirm and end tracks.

        Returns:
            The track of each detection, in detection order (None: a weak box that
            matched nothing).
        """
        c = self.config
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        conf = np.asarray(confidence, dtype=np.float64).reshape(-1)
        cls = np.asarray(class_id, dtype=np.int64).reshape(-1)
        high_of = np.asarray(c.high_thresholds)[np.clip(cls, 0, len(c.high_thresholds) - 1)]
        high = np.flatnonzero(conf >= high_of)
        low = np.flatnonzero((conf < high_of) & (conf >= c.low_threshold))
        live = [t for t in self.tracks if not t.ended]
        assigned: list[Track | None] = [None] * len(boxes)
        left = self._associate(live, boxes, high, c.match_iou, now, assigned)
        confirmed = [t for t in left if t.hits >= c.min_hits]
        left = [t for t in left if t.hits < c.min_hits]
        left += self._associate(confirmed, boxes, low, c.low_match_iou, now, assigned)
        for i, track in enumerate(assigned):
            if track is not None:
                track._hit(boxes[i], float(conf[i]), int(cls[i]), now)
        for track in left:
            if track.hits < c.min_hits or now - track.last_seen > c.max_age_s:
                track.ended = True
        for i in high.tolist():
            if assigned[i] is None:
                assigned[i] = self._start(boxes[i], float(conf[i]), int(cls[i]), now)
        return assigned

    def _associate(
        self,
        tracks: list[Track],
        boxes: NDArray[np.float64],
        rows: NDArray[np.intp],
        threshold: float,
        now: float,
        assigned: list[Track | None],
    ) -> list[Track]:
        """Match ``tracks`` to ``boxes[rows]``; fill ``assigned``; return unmatched tracks."""
        if not tracks or not len(rows):
            return tracks
        horizon = self.config.max_age_s
        predicted = np.stack([t.predict(now, horizon) for t in tracks])
        last = np.stack([t.box for t in tracks])
        iou = np.maximum(box_iou(predicted, boxes[rows]), box_iou(last, boxes[rows]))
        matched = set()
        for t, d in greedy_match(iou, threshold):
            assigned[int(rows[d])] = tracks[t]
            matched.add(t)
        return [t for i, t in enumerate(tracks) if i not in matched]

    def _start(self, box: NDArray[np.float64], confidence: float, cls: int, now: float) -> Track:
        track = Track(self._next_id, box, now, now, first_box=_as_box(box))
        track.class_votes[cls] += confidence
        self._next_id += 1
        self.tracks.append(track)
        return track

    def due(self, now: float) -> list[Track]:
        """Tracks to emit now (each once); ended tracks are forgotten after this."""
        c = self.config
        out: list[Track] = []
        for track in self.tracks:
            if track.emitted:
                continue
            if track.ended:
                if track.hits >= c.min_hits or track.plate is not None:
                    out.append(track)
            elif (
                track.hits >= c.min_hits
                and track.stable_since is not None
                and now - track.stable_since >= c.emit_delay_s
            ):
                out.append(track)
        for track in out:
            track.emitted = True
        self.tracks = [t for t in self.tracks if not t.ended]
        return out

    def flush(self) -> list[Track]:
        """End every track (the stream ended) and return those still to emit."""
        for track in self.tracks:
            track.ended = True
        return self.due(math.inf)


def _as_box(box: NDArray[Any] | Sequence[float]) -> Box:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2, y2)
