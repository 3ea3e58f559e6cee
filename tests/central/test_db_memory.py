"""DuckDB's buffer pool under ``storage.duckdb_memory_limit_mb``: the limit is applied, and
ingest keeps writing within it (blocks are evicted to the file, nothing fails or is lost;
below about 64 MB DuckDB runs out of memory at once, hence the config's minimum)."""

from __future__ import annotations

import functools
import random
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from bench.loadgen import make_sighting
from central.store.db import Database
from central.store.sightings import IncomingSighting, SightingRepository
from shared import wire

MB = 1 << 20


def _insert(
    repo: SightingRepository, items: list[IncomingSighting], now: float, con: Any
) -> set[str]:
    return repo.insert(con, items, now)


def _limit_bytes(db: Database) -> int:
    with db.reader() as con:
        row = con.execute(
            "SELECT memory_limit FROM (SELECT current_setting('memory_limit') AS memory_limit)"
        ).fetchone()
        assert row is not None
        text = str(row[0])  # e.g. "61.0 MiB"
    value, unit = text.split()
    return int(float(value) * {"KiB": 1 << 10, "MiB": MB, "GiB": 1 << 30}[unit])


@pytest.mark.parametrize(("limit_mb", "expected_mib"), [(64, 61.0), (1000, 953.6)])
def test_the_configured_limit_is_duckdbs(tmp_path: Path, limit_mb: int, expected_mib: float):
    db = Database(tmp_path / "m.duckdb", memory_limit_mb=limit_mb)
    try:  # DuckDB's MB are 10^6 bytes, shown in MiB
        assert _limit_bytes(db) == pytest.approx(expected_mib * MB, rel=0.01)
    finally:
        db.close()


def test_without_a_limit_duckdb_keeps_its_default_of_most_of_ram(tmp_path: Path) -> None:
    db = Database(tmp_path / "m.duckdb")
    try:
        assert _limit_bytes(db) > 512 * MB
    finally:
        db.close()


def test_ingest_keeps_writing_within_the_smallest_pool(tmp_path: Path) -> None:
    db = Database(tmp_path / "m.duckdb", memory_limit_mb=64)
    repo = SightingRepository()
    rng = random.Random(3)
    pool = [make_sighting(rng, thumb_bytes=(4, 4))[0] for _ in range(1000)]
    ref = ("20260101/000001", 0, 4)
    total = 0
    try:
        for _ in range(60):  # 60k rows under the smallest pool the config allows
            now = time.time()
            items = [
                IncomingSighting(
                    "a", msgspec.structs.replace(s, event_id=wire.new_event_id(now)), [ref, ref]
                )
                for s in pool
            ]
            new = db.writer.call(functools.partial(_insert, repo, items, now))
            assert len(new) == len(items)
            total += len(new)
        with db.reader() as con:
            assert repo.count(con) == total == 60_000
            used = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
        assert used is not None and used[0] <= _limit_bytes(db)
    finally:
        db.close()
