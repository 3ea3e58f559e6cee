"""The archive's file layout and columns: the contract between a regional central that
writes the archive and every reader of it (regional search over old days, national search
on Spark, the national benchmark).

Layout, under an archive root (a local directory or ``s3://bucket/prefix``)::

    <root>/sightings/date=YYYY-MM-DD/camera_id=<camera>/part-<n>.parquet

* ``date`` is the UTC day of ``captured_at``; ``camera_id`` the camera. Both are hive
  partition keys: they live in the directory names, not in the files. Readers must read
  them as strings (DuckDB: ``hive_types={'date': DATE, 'camera_id': VARCHAR}``; Spark:
  ``spark.sql.sources.partitionColumnTypeInference.enabled=false``), since a camera id such
  as ``0042`` would otherwise become the integer 42.
* Files are zstd-compressed Parquet, rows sorted by ``captured_at, event_id``.
* A region's archive holds one region: ``region`` is a column so a national reader that
  unions many roots can say where a sighting was stored.

Plate matching over the archive uses ``plate_texts`` and ``plate_keys``: the distinct plate
texts a regional search matches (the read, the folded raw OCR text, each candidate) and,
in the same order, each text's canonical key (every OCR look-alike class collapsed to one
character, ``central.search.index.CANON_FROM`` -> ``CANON_TO``). With a search's folded
plate ``p`` and its key ``k`` (``PlateQuery.key``):

* exact: some ``i`` has ``plate_keys[i] = k`` and ``plate_texts[i] = p``;
* wildcard: some ``plate_texts[i] LIKE pattern`` (the key prefix only narrows);
* fuzzy: some ``levenshtein(plate_keys[i], k) <= 1``.

Results are ordered newest first by ``captured_at DESC, event_id DESC`` (journeys oldest
first); ``event_id`` is the lower-case UUID text, whose string order equals DuckDB's UUID
order.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

FORMAT_VERSION: Final = 1
PARTITION_KEYS: Final = ("date", "camera_id")
SIGHTINGS_DIR: Final = "sightings"

_CANDIDATE = pa.struct([("text", pa.string()), ("confidence", pa.float32())])
_TZ = pa.timestamp("us", tz="UTC")

# Columns stored in each file (the partition keys are not among them).
FILE_SCHEMA: Final = pa.schema(
    [
        ("region", pa.string()),
        ("event_id", pa.string()),
        ("agent_id", pa.string()),
        ("captured_at", _TZ),
        ("received_at", _TZ),
        ("plate", pa.string()),
        ("plate_raw", pa.string()),
        ("plate_confidence", pa.float32()),
        ("plate_candidates", pa.list_(_CANDIDATE)),
        ("plate_char_confidences", pa.list_(pa.float32())),
        ("plate_format", pa.string()),
        ("plate_region", pa.string()),
        ("plate_box", pa.list_(pa.float32())),
        ("vehicle_box", pa.list_(pa.float32())),
        ("vehicle_type", pa.string()),
        ("vehicle_type_confidence", pa.float32()),
        ("colour", pa.string()),
        ("colour_confidence", pa.float32()),
        ("track_frames", pa.int32()),
        ("track_seconds", pa.float32()),
        ("plate_texts", pa.list_(pa.string())),
        ("plate_keys", pa.list_(pa.string())),
    ]
)


def partition_dir(day: str, camera_id: str) -> str:
    """The partition's path below the archive root, e.g. ``sightings/date=.../camera_id=...``.

    Camera ids are wire ``Id`` values (letters, digits and ``_.:-``), all safe in a path
    and an S3 key.
    """
    return f"{SIGHTINGS_DIR}/date={day}/camera_id={camera_id}"


__all__ = ["FILE_SCHEMA", "FORMAT_VERSION", "PARTITION_KEYS", "SIGHTINGS_DIR", "partition_dir"]
