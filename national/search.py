"""National search and journeys: run the archive SQL on an engine, audit every call.

An engine runs a statement of ``national.query`` over the archives of some regions and
returns rows as dicts. ``SparkEngine`` is the national one (a local or standalone-cluster
session); ``DuckDbEngine`` runs the same query on one machine (the benchmark's baseline,
and small deployments). Rows are the regional API's sighting rows (``captured_at`` and
``received_at`` in epoch seconds, candidates as ``{text, confidence}``) without the
thumbnails, which stay in the region, and with the ``region`` that stored them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from central.audit.sink import AuditSink
from central.search.query import Cursor, require_reason
from central.search.service import Journey, SearchPage, journey_of
from national.archive_io import duckdb_source, pick_roots, sightings_root, spark_ddl
from national.query import (
    VIEW,
    Dialect,
    NationalJourney,
    NationalQuery,
    Sql,
    journey_sql,
    search_sql,
)

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


class Engine(Protocol):
    """Runs national SQL over the archives of some regions."""

    dialect: Dialect

    def rows(self, sql: Sql, regions: tuple[str, ...]) -> list[dict[str, Any]]:
        """The statement's rows over the archives of ``regions`` (empty: all)."""


def _row(raw: dict[str, Any]) -> dict[str, Any]:
    """An engine row as the regional API's row (times in epoch seconds)."""
    raw["captured_at"] = raw["captured_us"] / 1_000_000
    raw["received_at"] = raw.pop("received_us") / 1_000_000
    return raw


class SparkEngine:
    """National SQL on a Spark session (``national.spark``).

    The archive of each set of regions is read once per engine (Spark lists the files then
    and caches the listing): a long-lived engine sees days exported later after
    ``refresh()``.

    Args:
        spark: The session.
        archives: Region -> archive root (local path or object-store URL).
    """

    dialect: Dialect = "spark"

    def __init__(self, spark: SparkSession, archives: Mapping[str, str]) -> None:
        self._spark = spark
        self._archives = dict(archives)
        self._frames: dict[tuple[str, ...], DataFrame] = {}

    def _frame(self, regions: tuple[str, ...]) -> DataFrame:
        roots = pick_roots(self._archives, regions)
        key = tuple(sorted(roots))
        if key not in self._frames:
            # one scan per root: Spark takes several roots of one read for one table's
            # partition directories and refuses them
            ddl = spark_ddl()
            scans = [
                self._spark.read.schema(ddl).parquet(sightings_root(roots[region]))
                for region in key
            ]
            frame = scans[0]
            for scan in scans[1:]:
                frame = frame.unionByName(scan)
            self._frames[key] = frame
        return self._frames[key]

    def refresh(self) -> None:
        """Forget the file listings: the next query lists the archives again."""
        self._frames.clear()

    def rows(self, sql: Sql, regions: tuple[str, ...]) -> list[dict[str, Any]]:
        """Run ``sql`` with the archives of ``regions`` as the ``sightings`` view."""
        self._frame(regions).createOrReplaceTempView(VIEW)
        result = self._spark.sql(sql.text, args=sql.params).collect()
        return [_row(r.asDict(recursive=True)) for r in result]


class DuckDbEngine:
    """National SQL on DuckDB over the same archives (one machine).

    Args:
        archives: Region -> archive root.
        con: The connection to use (default: a new in-memory one).
    """

    dialect: Dialect = "duckdb"

    def __init__(
        self, archives: Mapping[str, str], con: duckdb.DuckDBPyConnection | None = None
    ) -> None:
        import duckdb

        self._archives = dict(archives)
        self._con = con or duckdb.connect()
        # file footers are read once per file (re-read when a file changes)
        self._con.execute("SET parquet_metadata_cache = true")

    def rows(self, sql: Sql, regions: tuple[str, ...]) -> list[dict[str, Any]]:
        """Run ``sql`` with the archives of ``regions`` as the ``sightings`` CTE."""
        source = duckdb_source(pick_roots(self._archives, regions))
        if source is None:
            return []
        cur = self._con.cursor()
        try:
            cur.execute(f"WITH {VIEW} AS (SELECT * FROM {source}) {sql.text}", sql.params)
            names = [d[0] for d in cur.description or []]
            return [_row(dict(zip(names, r, strict=True))) for r in cur.fetchall()]
        finally:
            cur.close()

    def close(self) -> None:
        """Close the connection."""
        self._con.close()


class NationalSearch:
    """Search and journeys over every region's archive; every call is audited.

    Args:
        engine: Where the SQL runs (Spark nationally).
        audit: Where searches are recorded, with the reason.
    """

    def __init__(self, engine: Engine, audit: AuditSink) -> None:
        self._engine = engine
        self._audit = audit

    def search(self, query: NationalQuery, actor: str, reason: str | None) -> SearchPage:
        """A page of sightings matching ``query``, newest first (as the regional search).

        Raises:
            InvalidRequest: No reason, or an unknown region (nothing is searched then).
        """
        why = require_reason(reason)
        rows = self._engine.rows(search_sql(query, self._engine.dialect), query.regions)
        micros = [row.pop("captured_us") for row in rows]
        nxt = None
        if len(rows) == query.search.limit:
            nxt = Cursor.at_us(micros[-1], rows[-1]["event_id"]).encode()
        plate = query.search.plate
        self._audit.record(
            actor,
            "national.search",
            target=f"plate:{plate.text}" if plate else "sightings",
            reason=why,
            details={**query.describe(), "results": len(rows), "more": nxt is not None},
        )
        return SearchPage(rows, nxt)

    def journey(self, query: NationalJourney, actor: str, reason: str | None) -> Journey:
        """One plate's sightings in every region, oldest first, with gaps and cameras.

        Raises:
            InvalidRequest: No reason, or an unknown region.
        """
        why = require_reason(reason)
        j = query.journey
        rows = self._engine.rows(journey_sql(query, self._engine.dialect), query.regions)
        for row in rows:
            row.pop("captured_us")
        trip = journey_of(j.plate.text, rows, j.limit)
        self._audit.record(
            actor,
            "national.journey",
            target=f"plate:{j.plate.text}",
            reason=why,
            details={**j.describe(), "regions": list(query.regions), "results": len(rows)},
        )
        return trip


__all__ = ["DuckDbEngine", "Engine", "NationalSearch", "SparkEngine"]
