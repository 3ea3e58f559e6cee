"""National search on Spark (local[2]) returns what the regional searches return on the
same data: every match mode, filters, regions, pages and journeys; and it is audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from central.audit import AuditLog
from central.search import JourneyQuery, PlateQuery, SearchQuery, SearchService
from central.search.query import Cursor, parse_time
from central.store.db import Database
from national.query import NationalJourney, NationalQuery
from national.search import DuckDbEngine, Engine, NationalSearch, SparkEngine
from national.spark import build_session, session_conf
from shared.errors import InvalidRequest
from tests.central.search_helpers import T0
from tests.national.conftest import DAY, TEST_JVM, Region, archives, newest_first, plain
from varta.cli import app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spark_engine(regions: dict[str, Region]) -> Iterator[SparkEngine]:
    conf = session_conf("local[2]", driver_memory="1g", shuffle_partitions=2, java_options=TEST_JVM)
    spark = build_session(conf)
    yield SparkEngine(spark, archives(regions))
    spark.stop()


@pytest.fixture(scope="module")
def audit_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    db = Database(tmp_path_factory.mktemp("audit") / "national-audit.duckdb")
    yield db
    db.close()


@pytest.fixture(params=["spark", "duckdb"])
def engine(
    request: pytest.FixtureRequest, spark_engine: SparkEngine, regions: dict[str, Region]
) -> Iterator[Engine]:
    if request.param == "spark":
        yield spark_engine
        return
    local = DuckDbEngine(archives(regions))
    yield local
    local.close()


def _regional(region: Region, query: SearchQuery) -> list[dict[str, Any]]:
    return SearchService(region.db, AuditLog(region.db)).search(query, "olena", "case 1").items


def _t(offset: float) -> Any:
    return parse_time(str(T0 + offset), "t")


CASES: list[tuple[str, dict[str, Any]]] = [
    ("exact", dict(plate=PlateQuery.parse("AT1234BO", None))),
    ("cyrillic", dict(plate=PlateQuery.parse("ат 1234 во", None))),
    ("raw read", dict(plate=PlateQuery.parse("BH0101HB", "exact"))),
    ("wildcard", dict(plate=PlateQuery.parse("AT12??B?", None))),
    ("contains", dict(plate=PlateQuery.parse("*567*", None))),
    ("fuzzy", dict(plate=PlateQuery.parse("AT1234BO", "fuzzy"))),
    ("fuzzy deletion", dict(plate=PlateQuery.parse("AT12345B0", "fuzzy"))),
    ("fourth text exact", dict(plate=PlateQuery.parse("XX7777YY", None))),
    ("fourth text wildcard", dict(plate=PlateQuery.parse("XX77*", None))),
    ("fourth text fuzzy", dict(plate=PlateQuery.parse("XX7777Y8", "fuzzy"))),
    ("time range", dict(start=_t(30), end=_t(DAY + 900))),
    ("camera numeric id", dict(camera_ids=("0042",))),
    ("cameras", dict(camera_ids=("cam-12", "bc-1", "bh-2"))),
    ("type colour", dict(vehicle_type="van", colour="silver")),
    ("agent", dict(agent_id="a2")),
    ("plate and window", dict(plate=PlateQuery.parse("AT1234BO", None), start=_t(50))),
    ("everything, small page", dict(limit=5)),
]


@pytest.mark.parametrize(("name", "query"), CASES, ids=[c[0] for c in CASES])
def test_national_results_equal_the_regional_searches(
    engine: Engine, regions: dict[str, Region], audit_db: Database, name: str, query: Any
) -> None:
    q = SearchQuery(**query)
    national = NationalSearch(engine, AuditLog(audit_db)).search(NationalQuery(q), "olena", "c 1")
    merged = newest_first([r for g in regions.values() for r in _regional(g, q)], q.limit)
    assert [plain(r) for r in national.items] == [plain(r) for r in merged], name
    assert merged, f"{name}: a case that finds nothing proves little"
    home = {eid: g.name for g in regions.values() for eid in g.ids}
    assert [r["region"] for r in national.items] == [home[r["event_id"]] for r in merged]


@pytest.mark.parametrize("region", ["kyiv", "lviv"])
def test_one_region_gives_exactly_that_regions_search(
    engine: Engine, regions: dict[str, Region], audit_db: Database, region: str
) -> None:
    q = SearchQuery(plate=PlateQuery.parse("AT1234BO", "fuzzy"))
    page = NationalSearch(engine, AuditLog(audit_db)).search(
        NationalQuery(q, (region,)), "olena", "case 7"
    )
    assert [plain(r) for r in page.items] == [plain(r) for r in _regional(regions[region], q)]
    assert {r["region"] for r in page.items} == {region}


def test_pages_follow_each_other_like_the_regional_pages(
    spark_engine: SparkEngine, regions: dict[str, Region], audit_db: Database
) -> None:
    service = NationalSearch(spark_engine, AuditLog(audit_db))
    everything = newest_first(
        [r for g in regions.values() for r in _regional(g, SearchQuery(limit=100))], 100
    )
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        page = service.search(NationalQuery(SearchQuery(limit=4, cursor=cursor)), "u", "test")
        seen += page.items
        if page.next is None:
            break
        cursor = Cursor.decode(page.next)
    assert [plain(r) for r in seen] == [plain(r) for r in everything]
    assert len(seen) == sum(len(g.ids) for g in regions.values()) == 18


@pytest.mark.parametrize("mode", ["exact", "fuzzy"])
def test_journey_crosses_regions_oldest_first(
    engine: Engine, regions: dict[str, Region], audit_db: Database, mode: str
) -> None:
    plate = PlateQuery.parse("AT1234BO", mode)
    trip = NationalSearch(engine, AuditLog(audit_db)).journey(
        NationalJourney(JourneyQuery(plate)), "olena", "case 9"
    )
    legs = [
        s.sighting
        for g in regions.values()
        for s in SearchService(g.db, AuditLog(g.db)).journey(JourneyQuery(plate), "o", "c 9").stops
    ]
    legs.sort(key=lambda r: (r["captured_at"], r["event_id"]))
    assert [plain(s.sighting) for s in trip.stops] == [plain(r) for r in legs]
    assert [s.sighting["region"] for s in trip.stops][:2] == ["kyiv", "kyiv"]
    assert {s.sighting["region"] for s in trip.stops} == {"kyiv", "lviv", "odesa"}
    assert trip.stops[0].gap_s is None
    assert trip.stops[1].gap_s == pytest.approx(legs[1]["captured_at"] - legs[0]["captured_at"])
    assert trip.cameras[0] == "0042"
    assert not trip.truncated


def test_every_search_is_audited_with_its_reason(spark_engine: SparkEngine, tmp_path: Path) -> None:
    db = Database(tmp_path / "audit.duckdb")
    audit = AuditLog(db)
    service = NationalSearch(spark_engine, audit)
    q = NationalQuery(SearchQuery(plate=PlateQuery.parse("KA5678CC", None)), ("kyiv", "lviv"))
    page = service.search(q, "olena", "  case 12/345 ")
    with pytest.raises(InvalidRequest, match="reason"):
        service.search(q, "olena", " ")
    with pytest.raises(InvalidRequest, match="region: expected one of kyiv, lviv, odesa"):
        service.search(NationalQuery(SearchQuery(), ("kharkiv",)), "olena", "case 1")
    service.journey(
        NationalJourney(JourneyQuery(PlateQuery.parse("BH0101HB", None))), "ivan", "c 2"
    )
    rows = audit.query()
    assert [(r.actor, r.action, r.target, r.reason) for r in rows] == [
        ("ivan", "national.journey", "plate:BH0101HB", "c 2"),
        ("olena", "national.search", "plate:KA5678CC", "case 12/345"),
    ]
    assert rows[1].details["regions"] == ["kyiv", "lviv"]
    assert rows[1].details["results"] == len(page.items) == 2
    assert rows[0].details["results"] == 2
    assert audit.verify().ok
    db.close()


def test_cli_journey_prints_the_trip_and_audits(regions: dict[str, Region], tmp_path: Path) -> None:
    audit = tmp_path / "cli-audit.duckdb"
    args = ["national", "journey", "--plate", "ат1234во", "--engine", "duckdb"]
    args += ["--reason", "case 44", "--audit-db", str(audit)]
    for name, r in regions.items():
        args += ["--archive", f"{name}={r.root}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    trip = json.loads(result.stdout)
    assert trip["plate"] == "AT1234BO" and not trip["truncated"]
    regions_passed = [s["sighting"]["region"] for s in trip["stops"]]
    assert regions_passed == ["kyiv", "kyiv", "kyiv", "lviv", "lviv", "odesa"]
    assert trip["cameras"] == ["0042", "cam-2", "cam-4", "0042", "bc-2", "bh-1"]
    bad = CliRunner().invoke(app, [*args[:-2], "--archive", "nonsense"])
    assert bad.exit_code == 2 and "REGION=ROOT" in bad.output
    db = Database(audit)
    [row] = AuditLog(db).query()
    assert (row.action, row.target, row.reason) == ("national.journey", "plate:AT1234BO", "case 44")
    db.close()
