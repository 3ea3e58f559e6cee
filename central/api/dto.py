"""Response shapes of the REST API (msgspec structs, split by use)."""

from __future__ import annotations

from typing import Any

import msgspec


class CameraRead(msgspec.Struct):
    """A camera and its last reported health."""

    camera_id: str
    name: str
    source_kind: str
    online: bool | None  # None: no health reported yet
    fps_in: float
    fps_out: float
    frames_dropped: int
    error: str
    last_seen: float


class AgentRead(msgspec.Struct):
    """An edge agent: identity, last-seen, health and spool state."""

    agent_id: str
    software_version: str
    models: dict[str, str]
    first_seen: float
    last_seen: float
    started_at: float | None
    online: bool
    health: str
    problems: list[str]
    spool_depth: int
    spool_bytes: int
    spool_evictions: int
    dead_letters: int
    sightings_received: int
    cameras: list[CameraRead]


class CandidateRead(msgspec.Struct):
    """An alternative plate reading."""

    text: str
    confidence: float


class ThumbnailRead(msgspec.Struct):
    """A stored thumbnail and where to fetch it."""

    role: str
    width: int
    height: int
    url: str


class SightingRead(msgspec.Struct):
    """One stored sighting."""

    event_id: str
    agent_id: str
    camera_id: str
    captured_at: float
    received_at: float
    plate: str | None
    plate_raw: str | None
    plate_confidence: float | None
    plate_candidates: list[CandidateRead] | None
    plate_format: str | None
    plate_region: str | None
    plate_box: list[float] | None
    vehicle_box: list[float] | None
    vehicle_type: str | None
    vehicle_type_confidence: float | None
    colour: str | None
    colour_confidence: float | None
    track_frames: int
    track_seconds: float
    thumbnails: list[ThumbnailRead]


class SightingPage(msgspec.Struct):
    """A page of sightings, newest first; pass ``next_before`` as ``before`` for the next."""

    items: list[SightingRead]
    next_before: float | None


def sighting_read(row: dict[str, Any]) -> SightingRead:
    """A stored row as the API shows it (thumbnail URLs instead of pack references)."""
    thumbs = [
        ThumbnailRead(
            t["role"],
            t["width"],
            t["height"],
            f"/api/v1/sightings/{row['event_id']}/thumbnails/{i}",
        )
        for i, t in enumerate(row.get("thumbnails") or [])
    ]
    return msgspec.convert({**row, "thumbnails": thumbs}, SightingRead, from_attributes=True)
