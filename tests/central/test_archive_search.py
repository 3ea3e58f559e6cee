"""Regional search over archived days: the same answers as the database gave before the purge."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from central.accounts import Role
from central.app import create_app
from central.archive.export import ArchiveExporter
from central.archive.search import ArchiveSearch
from central.archive.target import ArchiveTarget, ArchiveUnavailable, open_target
from central.audit import AuditLog
from central.config import ArchiveConfig
from central.retention import Retention, RetentionPolicy
from central.search import JourneyQuery, PlateQuery, SearchQuery, SearchService
from central.search.index import PlateIndexer
from central.search.query import Cursor
from central.store.db import Database
from tests.central.archive_helpers import DAY, NEW_SPECS, NOW, OLD_SPECS, exporter
from tests.central.auth_helpers import bearer, make_rig
from tests.central.search_helpers import T0, store
from tests.harness import free_port

QUERIES: dict[str, SearchQuery] = {
    "exact": SearchQuery(plate=PlateQuery.parse("AT1234BO", None)),
    "wildcard": SearchQuery(plate=PlateQuery.parse("AT12??B?", None)),
    "fuzzy": SearchQuery(plate=PlateQuery.parse("AT1234BO", "fuzzy")),
    "raw": SearchQuery(plate=PlateQuery.parse("AI9999AA", "exact")),
    "contains": SearchQuery(plate=PlateQuery.parse("*567*", None)),
    "camera": SearchQuery(camera_ids=("0042",)),
    "type colour": SearchQuery(vehicle_type="van", colour="silver"),
    "everything": SearchQuery(limit=100),
    "spanning": SearchQuery(
        start=datetime.fromtimestamp(T0 + DAY, UTC), end=datetime.fromtimestamp(T0 + 18 * DAY, UTC)
    ),
}


def _target(root: Path) -> ArchiveTarget:
    return open_target(ArchiveConfig(enabled=True, root=str(root), region="UA-IF"))


class _Hits:
    """Which sightings are evidence (as the alert engine would answer)."""

    def __init__(self, *event_ids: str) -> None:
        self._ids = list(event_ids)

    def protected_sightings(self, older_than: datetime) -> list[str]:
        return self._ids


def _comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without what only the database has (thumbnails) and the source flag."""
    return [{k: v for k, v in r.items() if k not in ("thumbnails", "archived")} for r in rows]


def _pages(service: SearchService, query: SearchQuery, size: int) -> list[str]:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        page = service.search(
            SearchQuery(plate=query.plate, limit=size, cursor=cursor), "u", "case 1"
        )
        seen += [r["event_id"] for r in page.items]
        if page.next is None:
            return seen
        cursor = Cursor.decode(page.next)
    raise AssertionError("paging did not end")


@pytest.fixture(scope="module")
def purged(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Sightings of old days (archived, then purged but for one hit) and recent days; the
    answers of the database before the purge."""
    tmp = tmp_path_factory.mktemp("archive-search")
    db = Database(tmp / "s.duckdb")
    old = store(db, OLD_SPECS)
    new = store(db, NEW_SPECS)
    PlateIndexer(db, lag_s=0, clock=lambda: NOW).compact()
    audit = AuditLog(db, clock=lambda: NOW)
    plain = SearchService(db, audit, clock=lambda: NOW)
    before = {name: plain.search(q, "u", "case 1").items for name, q in QUERIES.items()}
    journey = JourneyQuery(PlateQuery.parse("AT1234BO", "exact"))
    before["journey"] = [s.sighting for s in plain.journey(journey, "u", "case 1").stops]
    target = _target(tmp / "archive")
    export = exporter(db, target)
    export.export()
    kept = old[3]  # a hit: the database keeps it past the purge
    Retention(
        db,
        tmp / "thumbs",
        _Hits(kept),
        audit,
        RetentionPolicy(non_hit_days=14, chunk_rows=100, archive_hold=True),
        clock=lambda: NOW,
        archive=export,
    ).run()
    with db.reader() as con:
        left = {r[0] for r in con.execute("SELECT event_id::VARCHAR FROM sightings").fetchall()}
    assert left == {kept, *new}
    archive = ArchiveSearch(db, target, keep_days=14, clock=lambda: NOW)
    service = SearchService(db, audit, clock=lambda: NOW, archive=archive)
    yield db, service, before, kept, old
    db.close()


@pytest.mark.parametrize("name", [*QUERIES, "journey"])
def test_archived_days_give_what_the_database_gave(purged: Any, name: str) -> None:
    _db, service, before, kept, old = purged
    if name == "journey":
        trip = service.journey(JourneyQuery(PlateQuery.parse("AT1234BO", "exact")), "u", "c 1")
        after = [s.sighting for s in trip.stops]
    else:
        after = service.search(QUERIES[name], "u", "case 1").items
    assert after, name
    assert _comparable(after) == _comparable(before[name])
    for row in after:
        assert row["archived"] == (row["event_id"] in set(old) - {kept})
        if row["archived"]:
            assert row["thumbnails"] == []


def test_pages_run_across_database_and_archive_without_gaps(purged: Any) -> None:
    _db, service, before, _kept, _old = purged
    everything = [r["event_id"] for r in before["everything"]]
    for size in (2, 5):
        assert _pages(service, SearchQuery(), size) == everything
    exact = [r["event_id"] for r in before["exact"]]
    assert _pages(service, QUERIES["exact"], 2) == exact


def test_time_range_of_recent_days_does_not_touch_the_archive(tmp_path: Path) -> None:
    db = Database(tmp_path / "s.duckdb")
    store(db, OLD_SPECS)
    export = exporter(db, _target(tmp_path / "archive"))
    export.export()
    # the archive goes away; a search of days the database holds does not notice
    broken = ArchiveSearch(
        db, _unreachable_s3(), keep_days=14, clock=lambda: NOW
    )  # archive_parts still names files
    service = SearchService(db, AuditLog(db), clock=lambda: NOW, archive=broken)
    recent = SearchQuery(start=_utc(NOW - 3 * DAY))
    assert service.search(recent, "u", "case 1").items == []
    with pytest.raises(ArchiveUnavailable, match="unreachable"):
        service.search(SearchQuery(), "u", "case 1")
    db.close()


def _utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _unreachable_s3() -> ArchiveTarget:
    """An S3 archive on a loopback port where nothing listens."""
    return open_target(
        ArchiveConfig(
            enabled=True,
            root="s3://varta-archive/region",
            region="UA-IF",
            s3_endpoint=f"http://127.0.0.1:{free_port()}",
        )
    )


def test_http_search_answers_503_when_the_archive_is_down(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    central = rig.central
    store(central.db, OLD_SPECS[:2], base=T0)
    ArchiveExporter(
        central.db, _target(tmp_path / "archive"), "UA-IF", 3600, 365, clock=lambda: NOW
    ).export()
    central.archive = ArchiveExporter(central.db, _unreachable_s3(), "UA-IF", 3600, 365)
    operator = bearer(rig.token(Role.OPERATOR))
    with TestClient(create_app(central)) as http:
        url = "/api/v1/sightings/search"
        down = http.get(url, params={"plate": "AT1234BO", "reason": "case 1"}, headers=operator)
        assert down.status_code == 503, down.text
        body = down.json()
        assert set(body) == {"status", "error", "detail"} and body["status"] == 503
        assert "archive s3://varta-archive/region is unreachable" in body["error"]
        trip = http.get(
            "/api/v1/vehicles/journey",
            params={"plate": "AT1234BO", "reason": "case 1"},
            headers=operator,
        )
        assert trip.status_code == 503
        schema = http.get("/schema/openapi.json").json()
        assert "503" in schema["paths"]["/api/v1/sightings/search"]["get"]["responses"]
