"""Three regions' central databases, filled through the ingest path, and their archives.

Built once per test session: the Spark tests (local and on a standalone cluster) compare
national results with the regional searches on exactly these data.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from central.store.db import Database
from tests.central.search_helpers import Spec, store
from tests.national.archive_helpers import write_test_archive

DAY = 86_400.0
# Short-lived test JVMs: compile with C1 only and one GC thread (start-up over peak speed).
TEST_JVM = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
# Sightings of the same vehicles across regions and days; camera ids that look like
# numbers ("0042") must stay strings.
REGION_SPECS: dict[str, list[Spec]] = {
    "kyiv": [
        Spec("AT1234BO", "0042", 0, "car", "silver"),
        Spec("AT1234BO", "cam-2", 60, "car", "silver"),
        Spec("AT1299BE", "0042", 30, "van", "silver"),
        Spec("AT1234B0", "cam-3", 40, "car", "silver"),  # O read as 0
        Spec("BC0000XX", "cam-4", 70, "van", "black", candidates=("AT1234BO",)),
        Spec("AI9999AA", "cam-12", 110, "car", "blue", raw="AI 9999 AA"),
        Spec(None, "cam-12", 120, "van", "silver"),
        Spec("KA5678CC", "cam-2", DAY + 5, "truck", "red", agent="a2"),
    ],
    "lviv": [
        Spec("AT1234BO", "0042", 3600, "car", "silver"),  # same camera id, other region
        Spec("AT12345BO", "bc-1", 50, "car", "white"),  # one extra character
        Spec("BC7777BC", "bc-1", 2 * DAY, "bus", "yellow"),
        Spec("KA5678CC", "bc-2", DAY + 900, "truck", "red"),
        Spec("AT1234BO", "bc-2", 2 * DAY + 10, "car", "silver"),
    ],
    "odesa": [
        Spec("BH0101HB", "bh-1", 10, "car", "white"),
        Spec("AT1234BO", "bh-1", 3 * DAY, "car", "silver"),
        Spec("AT1Z34BO", "bh-2", 3 * DAY + 60, "car", "silver"),  # 2 read as Z
        Spec("BH0101HB", "bh-2", 3 * DAY + 61, "car", "white", raw="BH 0101 HB"),
        # four plate texts: the last is past the ones Spark tests without a lambda
        Spec(
            "KA1111AA", "bh-3", 200, "van", "red", candidates=("KA1111AB", "KA1111AC", "XX7777YY")
        ),
    ],
}


@dataclass
class Region:
    """One region: its central database, its archive root, the ids it stored."""

    name: str
    db: Database
    root: Path
    ids: list[str]


@pytest.fixture(scope="session")
def regions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Region]]:
    base = tmp_path_factory.mktemp("national")
    out: dict[str, Region] = {}
    for name, specs in REGION_SPECS.items():
        db = Database(base / f"{name}.duckdb")
        ids = store(db, specs)
        root = base / "archive" / name
        assert write_test_archive(db, root, name) == len(specs)
        out[name] = Region(name, db, root, ids)
    yield out
    for region in out.values():
        region.db.close()
    shutil.rmtree(base, ignore_errors=True)


def archives(regions: dict[str, Region]) -> dict[str, str]:
    """Region -> archive root, as the national config has it."""
    return {name: str(r.root) for name, r in regions.items()}


def plain(row: dict[str, Any], drop: tuple[str, ...] = ("thumbnails", "region")) -> Any:
    """A result row as JSON sees it (tuples as lists), less the fields only one side has."""
    return json.loads(json.dumps({k: v for k, v in row.items() if k not in drop}))


def newest_first(rows: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The first ``limit`` rows of several regions' results in the search order."""
    ordered = sorted(rows, key=lambda r: (r["captured_at"], r["event_id"]), reverse=True)
    return ordered[:limit]
