"""A real Spark standalone master and two workers from the pyspark package: national
queries run on both workers and give the regional results; `varta national search` runs
against the cluster, print the results and audit them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from central.audit import AuditLog
from central.search import JourneyQuery, PlateQuery, SearchQuery, SearchService
from central.store.db import Database
from national import cluster
from national.query import NationalJourney, NationalQuery
from national.search import NationalSearch, SparkEngine
from national.spark import session, session_conf
from tests.national.conftest import TEST_JVM, Region, archives, newest_first, plain
from varta.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.StandaloneCluster]:
    folder = tmp_path_factory.mktemp("spark")
    running = cluster.start(folder, workers=2, cores=1, memory="1g", java_options=TEST_JVM)
    yield running
    running.stop()
    assert all(p.poll() is not None for p in running._procs) or not running._procs


def test_queries_run_on_both_workers_and_match_the_regions(
    standalone: cluster.StandaloneCluster, regions: dict[str, Region], tmp_path: Path
) -> None:
    status = standalone.status()
    assert status["aliveworkers"] == 2
    assert [w["cores"] for w in status["workers"]] == [1, 1]
    conf = session_conf(
        standalone.master_url,
        driver_memory="512m",
        shuffle_partitions=2,
        extra={"spark.executor.memory": "512m", "spark.executor.cores": "1"},
        java_options=TEST_JVM,
    )
    audit_db = Database(tmp_path / "audit.duckdb")
    with session(conf) as spark:
        service = NationalSearch(SparkEngine(spark, archives(regions)), AuditLog(audit_db))
        q = SearchQuery(plate=PlateQuery.parse("AT1234BO", "fuzzy"))
        page = service.search(NationalQuery(q), "olena", "case 3")
        plate = PlateQuery.parse("BH0101HB", None)
        trip = service.journey(NationalJourney(JourneyQuery(plate)), "olena", "case 3")
        # the application holds one core of each worker while it runs
        status = standalone.status()
        [app] = status["activeapps"]
        assert app["name"] == "varta-national"
        assert [w["coresused"] for w in status["workers"]] == [1, 1]
    merged = newest_first(
        [r for g in regions.values() for r in _regional(g.db).search(q, "o", "c 3").items], 50
    )
    assert [plain(r) for r in page.items] == [plain(r) for r in merged]
    assert len(page.items) == 9
    odesa = _regional(regions["odesa"].db).journey(JourneyQuery(plate), "o", "c 3")
    assert [plain(s.sighting) for s in trip.stops] == [plain(s.sighting) for s in odesa.stops]
    assert [row.action for row in AuditLog(audit_db).query()] == [
        "national.journey",
        "national.search",
    ]
    audit_db.close()


def test_cli_searches_the_cluster_and_audits(
    standalone: cluster.StandaloneCluster, regions: dict[str, Region], tmp_path: Path
) -> None:
    audit = tmp_path / "national-audit.duckdb"
    common = ["--master", standalone.master_url, "--audit-db", str(audit)]
    for name, r in regions.items():
        common += ["--archive", f"{name}={r.root}"]
    refused = _varta(["search", "--plate", "AT1234BO", "--reason", " ", *common])
    assert refused.exit_code == 2
    assert "reason: expected a case number" in refused.stderr
    done = _varta(
        ["search", "--plate", "*1234*", "--region", "lviv", "--reason", "case 5", *common]
    )
    assert done.exit_code == 0, done.stderr
    out = json.loads(done.stdout)
    expected = (
        _regional(regions["lviv"].db)
        .search(SearchQuery(plate=PlateQuery.parse("*1234*", None)), "o", "c 5")
        .items
    )
    assert [plain(r) for r in out["items"]] == [plain(r) for r in expected]
    assert {r["region"] for r in out["items"]} == {"lviv"} and out["next"] is None
    db = Database(audit)
    [row] = AuditLog(db).query()
    assert (row.action, row.reason, row.details["regions"]) == (
        "national.search",
        "case 5",
        ["lviv"],
    )
    assert row.actor.startswith("cli:")
    assert row.details["results"] == len(expected) == 3
    db.close()


def _regional(db: Database) -> SearchService:
    return SearchService(db, AuditLog(db))


def _varta(args: list[str]) -> Result:
    """The real command line in this process: its Spark application reuses the JVM that
    the session above started (a new driver JVM would double the test's time)."""
    return CliRunner().invoke(app, ["national", *args])
