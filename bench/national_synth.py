"""Synthetic regional archives for the national benchmark, generated inside DuckDB.

Each file (one region, day and camera) is written by one ``COPY (SELECT ... FROM range(lo,
hi, cameras) ORDER BY captured_at, event_id) TO '.../part-0.parquet' (FORMAT parquet,
COMPRESSION zstd)``: no Python per row. The layout and columns are those of
``central.archive.schema``.

The sightings are spread evenly over ``days`` UTC days and ``cameras`` cameras per region.
Vehicles carry the Ukrainian plates of ``bench.search`` (region code, four digits, two
series letters); each is seen about 25 times, nine in ten sightings by a camera of its home
region and one in ten anywhere in the country, so journeys cross regions. The raw OCR text
has spaces; a third of the reads carry a second candidate with an OCR confusion
(O->0, B->8, I->1). ``plate_texts`` and ``plate_keys`` are what the exporter stores: the
distinct plate texts and each one's canonical key (``central.search.index``).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import duckdb

from bench.search import COLOURS, REGIONS, SERIES, TYPES, _sql_list
from central.archive.schema import FORMAT_VERSION, SIGHTINGS_DIR, partition_dir
from central.search.index import CANON_FROM, CANON_TO

START: Final = datetime(2026, 10, 1, tzinfo=UTC)
MANIFEST: Final = "synth.json"
GENERATOR: Final = 2  # bump when the generated data change: older folders are remade


@dataclass(frozen=True)
class SynthSpec:
    """What to generate."""

    rows: int
    regions: int = 25
    days: int = 7
    cameras: int = 20
    seed: int = 1

    def region_name(self, r: int) -> str:
        """The name of region number ``r`` (``region-01`` ...)."""
        return f"region-{r + 1:02d}"

    def region_rows(self, r: int) -> int:
        """Rows of region ``r`` (the remainder goes to the first regions)."""
        return self.rows // self.regions + (1 if r < self.rows % self.regions else 0)

    @property
    def vehicles(self) -> int:
        """Distinct vehicles (each seen about 25 times)."""
        return max(self.regions * 40, self.rows // 25)


def _values_sql(spec: SynthSpec, r: int) -> str:
    """The CTEs and SELECT of region ``r``'s sightings over the ids in CTE ``ids``.

    Every value is a constant of this module or an int of ``spec`` formatted as a literal
    (no user text). Sighting ``i`` of ``n`` is captured at ``START + i * days / n`` days
    (integer microseconds, so its UTC day is exactly ``floor(i * days / n)``), by camera
    ``i % cameras``.
    """
    n = max(spec.region_rows(r), 1)
    span_us = spec.days * 86_400 * 1_000_000
    home = spec.vehicles // spec.regions
    s = int(spec.seed) * 1000
    pick = "list_extract({lst}, 1 + (hash(v, {salt}) % {n})::INTEGER)"
    plate = (
        pick.format(lst=_sql_list(REGIONS), salt=s + 1, n=len(REGIONS))
        + f" || lpad((hash(v, {s + 2}) % 10000)::VARCHAR, 4, '0')"
        + f" || substr('{SERIES}', 1 + (hash(v, {s + 3}) % 12)::INTEGER, 1)"
        + f" || substr('{SERIES}', 1 + (hash(v, {s + 4}) % 12)::INTEGER, 1)"
    )
    vtype = pick.format(lst=_sql_list(TYPES), salt=s + 7, n=len(TYPES))
    colour = pick.format(lst=_sql_list(COLOURS), salt=s + 8, n=len(COLOURS))
    name = spec.region_name(r)
    start_us = int(START.timestamp()) * 1_000_000
    return f"""
  base AS (
    SELECT i, us, cam,
           CASE WHEN hash(i, {s + 5}, {r}) % 10 < 9
                THEN {r * home} + hash(i, {s}, {r}) % {home}
                ELSE hash(i, {s + 9}, {r}) % {spec.vehicles} END AS v
    FROM (SELECT i, ({start_us} + (i::HUGEINT * {span_us}) // {n})::BIGINT AS us,
                 (i % {spec.cameras})::INTEGER AS cam
          FROM ids)
  ), plated AS (
    SELECT *, {plate} AS plate FROM base
  ), texts AS (
    SELECT *, CASE WHEN hash(i, {s + 10}, {r}) % 3 = 0
                    AND translate(plate, 'OBI', '081') <> plate
                   THEN [plate, translate(plate, 'OBI', '081')] ELSE [plate] END AS plate_texts
    FROM plated
  )
  SELECT '{name}' AS region,
         printf('%08x-%04x-7000-8000-%012x', us // 1000000, {r}, i) AS event_id,
         '{name}-edge-' || (cam // 4) AS agent_id,
         make_timestamp(us)::TIMESTAMPTZ AS captured_at,
         make_timestamp(us + 1500000)::TIMESTAMPTZ AS received_at,
         plate,
         substr(plate, 1, 2) || ' ' || substr(plate, 3, 4) || ' ' || substr(plate, 7) AS plate_raw,
         0.9::FLOAT AS plate_confidence,
         list_transform(plate_texts, lambda t, j: {{'text': t,
             'confidence': CASE WHEN j = 1 THEN 0.9 ELSE 0.1 END::FLOAT}}) AS plate_candidates,
         NULL::FLOAT[] AS plate_char_confidences,
         'ua_current' AS plate_format,
         'UA-' || substr(plate, 1, 2) AS plate_region,
         NULL::FLOAT[] AS plate_box,
         [0.1, 0.2, 0.5, 0.6]::FLOAT[] AS vehicle_box,
         {vtype} AS vehicle_type,
         0.8::FLOAT AS vehicle_type_confidence,
         {colour} AS colour,
         0.7::FLOAT AS colour_confidence,
         12::INTEGER AS track_frames,
         1.5::FLOAT AS track_seconds,
         plate_texts,
         list_transform(plate_texts, lambda t: translate(t, '{CANON_FROM}', '{CANON_TO}'))
             AS plate_keys
  FROM texts
  ORDER BY captured_at, event_id
"""


def _write_region(con: duckdb.DuckDBPyConnection, spec: SynthSpec, r: int, out: Path) -> None:
    """One file per day and camera of region ``r``, each by a COPY of a sorted SELECT.

    (A single ``COPY ... PARTITION_BY (date, camera_id)`` is no faster here and does not
    keep the rows of a file in order.)
    """
    n = spec.region_rows(r)
    values = _values_sql(spec, r)
    name = spec.region_name(r)
    for d in range(spec.days):
        lo, hi = -(-d * n // spec.days), -(-(d + 1) * n // spec.days)
        day = (START + timedelta(days=d)).date().isoformat()
        for cam in range(spec.cameras):
            first = lo + (cam - lo) % spec.cameras
            if first >= hi:
                continue
            folder = out / name / partition_dir(day, f"{name}-cam-{cam:03d}")
            folder.mkdir(parents=True)
            target = str(folder / "part-0.parquet").replace("'", "''")
            con.execute(
                f"COPY (WITH ids AS (SELECT range AS i FROM range({first}, {hi}, "
                f"{spec.cameras})), {values}) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
            )


def generate(spec: SynthSpec, out: Path, threads: int | None = None) -> dict[str, object]:
    """Write the archives of ``spec`` under ``out/<region>/`` and a manifest.

    An ``out`` whose manifest states the same spec is reused as it is.

    Returns:
        The manifest: the spec, the regions' roots, rows, files, bytes and seconds taken.
    """
    manifest = out / MANIFEST
    if manifest.exists():
        known = json.loads(manifest.read_text())
        if known.get("spec") == asdict(spec) and known.get("generator") == GENERATOR:
            known["reused"] = True
            return dict(known)
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")  # the casts to TIMESTAMPTZ read UTC wall times
    con.execute("SET enable_progress_bar = false")
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET temp_directory = '{str(out / '.spill').replace(chr(39), '')}'")
    roots: dict[str, str] = {}
    for r in range(spec.regions):
        _write_region(con, spec, r, out)
        roots[spec.region_name(r)] = str(out / spec.region_name(r))
    con.close()
    shutil.rmtree(out / ".spill", ignore_errors=True)
    files = sorted(out.glob(f"*/{SIGHTINGS_DIR}/*/*/*.parquet"))
    report: dict[str, object] = {
        "spec": asdict(spec),
        "generator": GENERATOR,
        "format_version": FORMAT_VERSION,
        "archives": roots,
        "files": len(files),
        "bytes": sum(f.stat().st_size for f in files),
        "generate_s": round(time.perf_counter() - started, 1),
        "first_day": START.date().isoformat(),
        "last_day": (START + timedelta(days=spec.days - 1)).date().isoformat(),
        "reused": False,
    }
    manifest.write_text(json.dumps(report, indent=2))
    return report


__all__ = ["START", "SynthSpec", "generate"]
