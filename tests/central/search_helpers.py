"""Factories for search and retention tests: sightings stored the way ingest stores them."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from central.store.db import Database
from central.store.sightings import IncomingSighting, SightingRepository
from shared import wire

T0 = 1_790_000_000.0  # 2026-09-21, a fixed capture time base
_SEQ = itertools.count(1)


@dataclass(frozen=True)
class Spec:
    """One sighting to store: plate (None: no plate read), camera, capture offset (s)."""

    plate: str | None
    camera: str = "cam-1"
    dt: float = 0.0
    vtype: str = "car"
    colour: str = "white"
    candidates: tuple[str, ...] = ()
    agent: str = "a1"
    raw: str | None = None


def sighting(spec: Spec, base: float = T0) -> wire.Sighting:
    """A wire sighting from a spec (two thumbnails)."""
    at = base + spec.dt
    plate = None
    if spec.plate is not None:
        plate = wire.Plate(
            text=spec.plate,
            raw=spec.raw or spec.plate,
            confidence=0.9,
            candidates=[wire.PlateCandidate(text=c, confidence=0.3) for c in spec.candidates],
        )
    return wire.Sighting(
        event_id=wire.new_event_id(at),
        camera_id=spec.camera,
        captured_at=at,
        vehicle=wire.Vehicle(box=(0, 0, 10, 10), type=spec.vtype, colour=spec.colour),
        plate=plate,
        thumbnails=[
            wire.Thumbnail(role="vehicle", width=32, height=24),
            wire.Thumbnail(role="plate", width=16, height=4),
        ],
    )


def store(
    db: Database,
    specs: Sequence[Spec],
    base: float = T0,
    refs: Sequence[tuple[str, int, int]] | None = None,
    received_delay: float = 1.0,
) -> list[str]:
    """Insert sightings through ``SightingRepository.insert``; return their event ids.

    ``refs`` are the thumbnail references (two per sighting); default fake ones.
    """
    items = []
    for i, spec in enumerate(specs):
        s = sighting(spec, base)
        if refs is None:
            thumbs = [("20260921/000001", 0, 1), ("20260921/000001", 1, 1)]
        else:
            thumbs = list(refs[2 * i : 2 * i + 2])
        items.append(IncomingSighting(spec.agent, s, thumbs))
    repo = SightingRepository()
    ids: list[str] = []
    # One insert per received time, so received_at follows captured_at like live ingest.
    for item in items:
        received = item.sighting.captured_at + received_delay
        db.writer.call(functools.partial(_insert, repo, item, received))
        ids.append(item.sighting.event_id)
    return ids


def _insert(
    repo: SightingRepository, item: IncomingSighting, received: float, con: Any
) -> set[str]:
    return repo.insert(con, [item], received)


def write_pack(root: Path, day: str, blobs: Sequence[bytes]) -> list[tuple[str, int, int]]:
    """Write a day pack file ``root/day/000001.pack`` holding ``blobs``; return refs."""
    folder = root / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{next(_SEQ):06d}.pack"
    refs = []
    offset = 0
    with path.open("wb") as fh:
        for blob in blobs:
            fh.write(blob)
            refs.append((f"{day}/{path.stem}", offset, len(blob)))
            offset += len(blob)
    return refs
