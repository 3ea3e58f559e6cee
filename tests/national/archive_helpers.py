"""A region's archive made by the real exporter (``central.archive.export``).

The national tests fill a real central DuckDB through the ingest path's
``SightingRepository`` (tests/central/search_helpers.py), then export every closed day
with ``ArchiveExporter`` into a local archive root, as a regional central does.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs

from central.archive.export import ArchiveExporter
from central.archive.target import ArchiveTarget
from central.store.db import Database

# Long after the tests' sightings (which start at search_helpers.T0): every day is closed.
EXPORT_AT = 1_790_000_000.0 + 30 * 86_400.0


def write_test_archive(db: Database, root: Path, region: str) -> int:
    """Export every sighting of ``db`` under ``root`` as ``region``'s archive.

    Returns:
        Rows written.
    """
    root.mkdir(parents=True, exist_ok=True)
    target = ArchiveTarget(pafs.LocalFileSystem(), root.as_posix(), str(root))
    exporter = ArchiveExporter(
        db, target, region, grace_s=0, retention_days=3650, lag_s=0, clock=lambda: EXPORT_AT
    )
    return exporter.export().rows
