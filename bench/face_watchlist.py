"""`varta bench face-watchlist`: the persons watchlist at scale on a real DuckDB file.

Stores ``persons`` synthetic persons with one random unit embedding each (random vectors:
the prefilter's hardest case), then times what the central face service does with them:
building the gallery from the store (on start and after every change; bulk enrolment
builds once), and ``FaceWatchlist.match`` as ingest calls it for each observation.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np


def _store(db: Any, embeddings: np.ndarray) -> None:
    import pyarrow as pa

    ids = [str(uuid.uuid4()) for _ in range(len(embeddings))]

    def job(con: Any) -> None:
        con.register("bench_persons", pa.table({"person_id": ids}))
        con.execute(
            "INSERT INTO face_persons (person_id, name, legal_basis, reason, enrolled_by, "
            "enrolled_at, expires_at) SELECT person_id, 'bench', 'bench', 'bench', 'bench', "
            "now(), TIMESTAMPTZ '2999-01-01' FROM bench_persons"
        )
        photos = pa.table(
            {
                "photo_id": [str(uuid.uuid4()) for _ in ids],
                "person_id": ids,
                "embedding": [e.tobytes() for e in embeddings],
            }
        )
        con.register("bench_photos", photos)
        con.execute(
            "INSERT INTO face_photos SELECT photo_id, person_id, 'bench.jpg', ''::BLOB, "
            "embedding, 0.5, [0, 0, 1, 1]::FLOAT[4], now() FROM bench_photos"
        )

    db.writer.call(job)


def run(persons: int = 100_000, queries: int = 300) -> dict[str, Any]:
    """Gallery build seconds and match latency over ``persons`` stored persons."""
    from central.audit import AuditLog
    from central.faces.service import FaceWatchlist
    from central.store.db import Database

    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((persons, 256)).astype("<f4")
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(Path(tmp) / "bench.duckdb")
        try:
            _store(db, embeddings)
            start = time.perf_counter()
            faces = FaceWatchlist(db, AuditLog(db))
            first = time.perf_counter() - start
            builds = []
            for _ in range(3):
                start = time.perf_counter()
                faces.rebuild()
                builds.append(time.perf_counter() - start)
            times, found = [], 0
            for i in range(queries):
                target = embeddings[(i * 7919) % persons]
                noise = rng.standard_normal(256).astype(np.float32)
                query = target + 0.9 * noise / np.linalg.norm(noise)  # cosine ~0.74
                start = time.perf_counter()
                hits = faces.match(query)
                times.append((time.perf_counter() - start) * 1000)
                found += bool(hits)
        finally:
            db.close()
    return {
        "persons": persons,
        "queries": queries,
        "first_build_s": round(first, 3),
        "rebuild_s": round(float(np.median(builds)), 3),
        "match_p50_ms": round(float(np.percentile(times, 50)), 3),
        "match_p99_ms": round(float(np.percentile(times, 99)), 3),
        "matched": found,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
