"""Sightings in DuckDB: bulk insert (idempotent by event id) and reads."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from shared import wire

ThumbRef = tuple[str, int, int]

_CANDIDATE = pa.struct([("text", pa.string()), ("confidence", pa.float32())])
_THUMB = pa.struct(
    [
        ("role", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("pack", pa.string()),
        ("offset", pa.int64()),
        ("length", pa.int32()),
    ]
)
_BOX = pa.list_(pa.float32(), 4)
# The SQL type of ``sightings.thumbnails`` (for casts).
THUMBS_SQL_TYPE = (
    'STRUCT(role VARCHAR, width INTEGER, height INTEGER, pack VARCHAR, "offset" BIGINT, '
    "length INTEGER)[]"
)

# Which of a turn's event ids are stored already. The ids are time-ordered (UUIDv7), so the
# lookup reads only the newest row groups. Checking first and then inserting plainly costs
# DuckDB about half the fixed cost per statement of ``INSERT OR IGNORE`` (~2 ms of ~4.5 ms
# a turn); only the writer thread inserts sightings, so nothing comes between the two.
_STORED = "SELECT event_id::VARCHAR FROM sightings WHERE event_id = ANY(?::UUID[])"
_INSERT = """
INSERT INTO sightings
SELECT event_id::UUID, agent_id, camera_id, to_timestamp(captured_at), to_timestamp(received_at),
       plate, plate_raw, plate_confidence, plate_candidates, plate_char_confidences,
       plate_format, plate_region, plate_box, vehicle_box, vehicle_type, vehicle_type_confidence,
       colour, colour_confidence, track_frames, track_seconds, thumbnails
FROM batch_rows
"""

SIGHTING_COLUMNS = (
    "event_id::VARCHAR AS event_id, agent_id, camera_id, epoch(captured_at) AS captured_at, "
    "epoch(received_at) AS received_at, plate, plate_raw, plate_confidence, plate_candidates, "
    "plate_format, plate_region, plate_box, vehicle_box, vehicle_type, vehicle_type_confidence, "
    "colour, colour_confidence, track_frames, track_seconds, thumbnails"
)


# What matching needs of a stored sighting, in the order ``incoming`` reads it.
MATCH_COLUMNS_SQL = (
    "event_id::VARCHAR, agent_id, camera_id, epoch(captured_at), plate, plate_raw, "
    "plate_confidence, plate_candidates, plate_format, plate_region, vehicle_type, "
    "vehicle_type_confidence, colour, colour_confidence, len(thumbnails)"
)


@dataclass(frozen=True)
class IncomingSighting:
    """A validated sighting with where its thumbnails were stored."""

    agent_id: str
    sighting: wire.Sighting
    thumbs: list[ThumbRef]


class FollowUp(Protocol):
    """A writer job that follows sightings just stored (the alert engine's), given the
    event ids that were new and their ``received_at``."""

    def __call__(self, con: duckdb.DuckDBPyConnection, new: set[str], received: float) -> None:
        """Run within the writer's transaction."""


def incoming(row: Sequence[Any]) -> IncomingSighting:
    """A stored sighting (a row of ``MATCH_COLUMNS_SQL``) as matching sees it.

    Boxes and thumbnail references are not needed for matching and are left out (the
    thumbnail count is kept, for the evidence URLs).
    """
    (event_id, agent_id, camera_id, captured, text, raw, conf, cands, fmt, region) = row[:10]
    vtype, vconf, colour, cconf, n_thumbs = row[10:15]
    plate = None
    if text is not None:
        plate = wire.Plate(
            text=text,
            raw=raw or "",
            confidence=float(conf or 0.0),
            candidates=[
                wire.PlateCandidate(text=c["text"], confidence=float(c["confidence"]))
                for c in cands or []
            ],
            format=fmt or "",
            region=region or "",
        )
    vehicle = None
    if vtype is not None or colour is not None:
        vehicle = wire.Vehicle(
            box=(0.0, 0.0, 0.0, 0.0),
            type=vtype or "",
            type_confidence=float(vconf or 0.0),
            colour=colour or "",
            colour_confidence=float(cconf or 0.0),
        )
    sighting = wire.Sighting(
        event_id=event_id,
        camera_id=camera_id,
        captured_at=float(captured),
        vehicle=vehicle,
        plate=plate,
    )
    return IncomingSighting(agent_id, sighting, [("", 0, 0)] * int(n_thumbs or 0))


def _list_array(offsets: list[int], values: pa.Array, valid: list[bool]) -> pa.Array:
    """A list array from flat values and offsets; rows where ``valid`` is False are null."""
    mask = pa.array([not v for v in valid], pa.bool_())
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, mask=mask)


def _box_array(boxes: list[tuple[float, float, float, float] | None]) -> pa.Array:
    flat = [c for b in boxes for c in (b if b is not None else (0.0, 0.0, 0.0, 0.0))]
    mask = pa.array([b is None for b in boxes], pa.bool_())
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, pa.float32()), 4, mask=mask)


def _rows(items: list[IncomingSighting], received_at: float) -> pa.Table:
    """Columnar Arrow table of the rows; nested columns are built from flat child arrays."""
    sightings = [i.sighting for i in items]
    plates = [s.plate for s in sightings]
    vehicles = [s.vehicle for s in sightings]
    has_plate = [p is not None for p in plates]
    cand_off: list[int] = [0]
    cand_text: list[str] = []
    cand_conf: list[float] = []
    char_off: list[int] = [0]
    char_conf: list[float] = []
    for p in plates:
        if p is not None:
            cand_text.extend(c.text for c in p.candidates)
            cand_conf.extend(c.confidence for c in p.candidates)
            char_conf.extend(p.char_confidences)
        cand_off.append(len(cand_text))
        char_off.append(len(char_conf))
    th_off: list[int] = [0]
    th_role: list[str] = []
    th_pack: list[str] = []
    th_w: list[int] = []
    th_h: list[int] = []
    th_offset: list[int] = []
    th_len: list[int] = []
    for inc in items:
        for t, (pack, offset, length) in zip(inc.sighting.thumbnails, inc.thumbs, strict=True):
            th_role.append(t.role)
            th_w.append(t.width)
            th_h.append(t.height)
            th_pack.append(pack)
            th_offset.append(offset)
            th_len.append(length)
        th_off.append(len(th_role))
    candidates = pa.StructArray.from_arrays(
        [pa.array(cand_text, pa.string()), pa.array(cand_conf, pa.float32())],
        fields=list(_CANDIDATE),
    )
    thumbs = pa.StructArray.from_arrays(
        [
            pa.array(th_role, pa.string()),
            pa.array(th_w, pa.int32()),
            pa.array(th_h, pa.int32()),
            pa.array(th_pack, pa.string()),
            pa.array(th_offset, pa.int64()),
            pa.array(th_len, pa.int32()),
        ],
        fields=list(_THUMB),
    )
    f32 = pa.float32()
    return pa.table(
        {
            "event_id": pa.array([s.event_id for s in sightings], pa.string()),
            "agent_id": pa.array([i.agent_id for i in items], pa.string()),
            "camera_id": pa.array([s.camera_id for s in sightings], pa.string()),
            "captured_at": pa.array([s.captured_at for s in sightings], pa.float64()),
            "received_at": pa.array([received_at] * len(items), pa.float64()),
            "plate": pa.array([p.text if p else None for p in plates], pa.string()),
            "plate_raw": pa.array([p.raw if p else None for p in plates], pa.string()),
            "plate_confidence": pa.array([p.confidence if p else None for p in plates], f32),
            "plate_candidates": _list_array(cand_off, candidates, has_plate),
            "plate_char_confidences": _list_array(char_off, pa.array(char_conf, f32), has_plate),
            "plate_format": pa.array([p.format if p else None for p in plates], pa.string()),
            "plate_region": pa.array([p.region if p else None for p in plates], pa.string()),
            "plate_box": _box_array([p.box if p else None for p in plates]),
            "vehicle_box": _box_array([v.box if v else None for v in vehicles]),
            "vehicle_type": pa.array([v.type if v else None for v in vehicles], pa.string()),
            "vehicle_type_confidence": pa.array(
                [v.type_confidence if v else None for v in vehicles], f32
            ),
            "colour": pa.array([v.colour if v else None for v in vehicles], pa.string()),
            "colour_confidence": pa.array(
                [v.colour_confidence if v else None for v in vehicles], f32
            ),
            "track_frames": pa.array([s.track_frames for s in sightings], pa.int32()),
            "track_seconds": pa.array([s.track_seconds for s in sightings], f32),
            "thumbnails": pa.ListArray.from_arrays(pa.array(th_off, pa.int32()), thumbs),
        }
    )


def _unstored(
    con: duckdb.DuckDBPyConnection, items: list[IncomingSighting]
) -> list[IncomingSighting]:
    """The items whose event id is neither in the table nor earlier in ``items``."""
    if not items:
        return []
    ids = [inc.sighting.event_id for inc in items]
    seen = {r[0] for r in con.execute(_STORED, [ids]).fetchall()}  # canonical spelling
    fresh: list[IncomingSighting] = []
    for inc, event_id in zip(items, ids, strict=True):
        key = _canonical(event_id)
        if key not in seen:
            seen.add(key)
            fresh.append(inc)
    return fresh


def _canonical(event_id: str) -> str:
    """The UUID as DuckDB spells it (lower case, hyphens); the wire allows other spellings."""
    if len(event_id) == 36 and event_id == event_id.lower():
        return event_id
    return str(uuid.UUID(event_id))


class SightingRepository:
    """Reads and writes the ``sightings`` table."""

    def insert(
        self, con: duckdb.DuckDBPyConnection, items: list[IncomingSighting], received_at: float
    ) -> set[str]:
        """Insert within the caller's transaction the items whose event id is not stored
        yet (the first of a repeated one); return their event ids, as the items spell them."""
        fresh = _unstored(con, items)
        if fresh:
            con.register("batch_rows", _rows(fresh, received_at))
            try:
                con.execute(_INSERT)
            finally:
                con.unregister("batch_rows")
        return {inc.sighting.event_id for inc in fresh}

    def recent(
        self,
        con: duckdb.DuckDBPyConnection,
        limit: int,
        camera_id: str | None = None,
        agent_id: str | None = None,
        before: float | None = None,
        since: float | None = None,
    ) -> list[dict[str, Any]]:
        """Newest sightings first, optionally filtered (``since`` inclusive, ``before`` not)."""
        where: list[str] = ["TRUE"]
        params: list[object] = []
        if camera_id is not None:
            where.append("camera_id = ?")
            params.append(camera_id)
        if agent_id is not None:
            where.append("agent_id = ?")
            params.append(agent_id)
        if before is not None:
            where.append("captured_at < to_timestamp(?)")
            params.append(before)
        if since is not None:
            where.append("captured_at >= to_timestamp(?)")
            params.append(since)
        sql = (
            f"SELECT {SIGHTING_COLUMNS} FROM sightings WHERE {' AND '.join(where)} "
            "ORDER BY captured_at DESC, event_id DESC LIMIT ?"
        )
        cur = con.execute(sql, [*params, limit])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def received_since(
        self, con: duckdb.DuckDBPyConnection, since: datetime, after: str, limit: int
    ) -> list[tuple[IncomingSighting, float]]:
        """Sightings received at or after ``since`` (and, at ``since`` itself, with an event
        id above ``after``), oldest first, with their receive time, rebuilt as they arrived
        (for matching them again)."""
        cur = con.execute(
            f"SELECT {MATCH_COLUMNS_SQL}, epoch(received_at) FROM sightings "
            "WHERE received_at > ? OR (received_at = ? AND event_id::VARCHAR > ?) "
            "ORDER BY received_at, event_id LIMIT ?",
            [since, since, after, limit],
        )
        return [(incoming(row[:-1]), float(row[-1])) for row in cur.fetchall()]

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
