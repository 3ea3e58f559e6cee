"""Sightings in DuckDB: bulk insert (idempotent by event id) and reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from shared import wire

ThumbRef = tuple[str, int, int]

_CANDIDATE = pa.struct([("text", pa.string()), ("confidence", pa.float32())])
_THUMB = pa.struct(
    [("role", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
     ("pack", pa.string()), ("offset", pa.int64()), ("length", pa.int32())]
)
_BOX = pa.list_(pa.float32(), 4)

_INSERT = """
INSERT OR IGNORE INTO sightings
SELECT event_id::UUID, agent_id, camera_id, to_timestamp(captured_at), to_timestamp(received_at),
       plate, plate_raw, plate_confidence, plate_candidates, plate_char_confidences,
       plate_format, plate_region, plate_box, vehicle_box, vehicle_type, vehicle_type_confidence,
       colour, colour_confidence, track_frames, track_seconds, thumbnails
FROM batch_rows
RETURNING event_id::VARCHAR
"""

SIGHTING_COLUMNS = (
    "event_id::VARCHAR AS event_id, agent_id, camera_id, epoch(captured_at) AS captured_at, "
    "epoch(received_at) AS received_at, plate, plate_raw, plate_confidence, plate_candidates, "
    "plate_format, plate_region, plate_box, vehicle_box, vehicle_type, vehicle_type_confidence, "
    "colour, colour_confidence, track_frames, track_seconds, thumbnails"
)


@dataclass(frozen=True)
class IncomingSighting:
    """A validated sighting with where its thumbnails were stored."""

    agent_id: str
    sighting: wire.Sighting
    thumbs: list[ThumbRef]


def _rows(items: list[IncomingSighting], received_at: float) -> pa.Table:
    cols: dict[str, list[Any]] = {name: [] for name in (
        "event_id", "agent_id", "camera_id", "captured_at", "received_at", "plate", "plate_raw",
        "plate_confidence", "plate_candidates", "plate_char_confidences", "plate_format",
        "plate_region", "plate_box", "vehicle_box", "vehicle_type", "vehicle_type_confidence",
        "colour", "colour_confidence", "track_frames", "track_seconds", "thumbnails")}
    for inc in items:
        s, p, v = inc.sighting, inc.sighting.plate, inc.sighting.vehicle
        cols["event_id"].append(s.event_id)
        cols["agent_id"].append(inc.agent_id)
        cols["camera_id"].append(s.camera_id)
        cols["captured_at"].append(s.captured_at)
        cols["received_at"].append(received_at)
        cols["plate"].append(p.text if p else None)
        cols["plate_raw"].append(p.raw if p else None)
        cols["plate_confidence"].append(p.confidence if p else None)
        cols["plate_candidates"].append(
            [{"text": c.text, "confidence": c.confidence} for c in p.candidates] if p else None
        )
        cols["plate_char_confidences"].append(list(p.char_confidences) if p else None)
        cols["plate_format"].append(p.format if p else None)
        cols["plate_region"].append(p.region if p else None)
        cols["plate_box"].append(list(p.box) if p and p.box else None)
        cols["vehicle_box"].append(list(v.box) if v else None)
        cols["vehicle_type"].append(v.type if v else None)
        cols["vehicle_type_confidence"].append(v.type_confidence if v else None)
        cols["colour"].append(v.colour if v else None)
        cols["colour_confidence"].append(v.colour_confidence if v else None)
        cols["track_frames"].append(s.track_frames)
        cols["track_seconds"].append(s.track_seconds)
        cols["thumbnails"].append([
            {"role": t.role, "width": t.width, "height": t.height,
             "pack": ref[0], "offset": ref[1], "length": ref[2]}
            for t, ref in zip(s.thumbnails, inc.thumbs, strict=True)
        ])
    types = {"plate_candidates": pa.list_(_CANDIDATE), "plate_char_confidences":
             pa.list_(pa.float32()), "plate_box": _BOX, "vehicle_box": _BOX,
             "thumbnails": pa.list_(_THUMB), "plate_confidence": pa.float32(),
             "vehicle_type_confidence": pa.float32(), "colour_confidence": pa.float32(),
             "captured_at": pa.float64(), "received_at": pa.float64()}
    return pa.table({k: pa.array(v, type=types.get(k)) for k, v in cols.items()})


class SightingRepository:
    """Reads and writes the ``sightings`` table."""

    def insert(
        self, con: duckdb.DuckDBPyConnection, items: list[IncomingSighting], received_at: float
    ) -> set[str]:
        """Insert within the caller's transaction; return the event ids that were new."""
        if not items:
            return set()
        batch_rows = _rows(items, received_at)
        con.register("batch_rows", batch_rows)
        try:
            return {r[0] for r in con.execute(_INSERT).fetchall()}
        finally:
            con.unregister("batch_rows")

    def recent(
        self, con: duckdb.DuckDBPyConnection, limit: int, camera_id: str | None = None,
        agent_id: str | None = None, before: float | None = None,
    ) -> list[dict[str, Any]]:
        """Newest sightings first, optionally filtered."""
        where, params = ["TRUE"], []
        if camera_id is not None:
            where.append("camera_id = ?")
            params.append(camera_id)
        if agent_id is not None:
            where.append("agent_id = ?")
            params.append(agent_id)
        if before is not None:
            where.append("captured_at < to_timestamp(?)")
            params.append(before)
        sql = (f"SELECT {SIGHTING_COLUMNS} FROM sightings WHERE {' AND '.join(where)} "
               "ORDER BY captured_at DESC, event_id DESC LIMIT ?")
        cur = con.execute(sql, [*params, limit])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def count(self, con: duckdb.DuckDBPyConnection) -> int:
        """Total stored sightings."""
        row = con.execute("SELECT count(*) FROM sightings").fetchone()
        return int(row[0]) if row else 0

    def thumbnail(
        self, con: duckdb.DuckDBPyConnection, event_id: str, index: int
    ) -> dict[str, Any] | None:
        """The stored reference of one thumbnail of a sighting, or None."""
        row = con.execute(
            "SELECT thumbnails[?] FROM sightings WHERE event_id = ?::UUID", [index + 1, event_id]
        ).fetchone()
        return dict(row[0]) if row and row[0] else None
