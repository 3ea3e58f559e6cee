"""Sighting search and journeys on a real DuckDB file, through the service and over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from central.accounts import Role
from central.app import create_app
from central.audit import AuditLog
from central.search import JourneyQuery, PlateQuery, SearchQuery, SearchService
from central.search.index import PlateIndexer, key_rows_sql
from central.search.query import Cursor, parse_time
from central.store.db import Database
from shared.errors import InvalidRequest
from tests.central.auth_helpers import Rig, bearer, make_rig
from tests.central.search_helpers import T0, Spec, store

SPECS = {
    "a1": Spec("AT1234BO", "cam-1", 0, "car", "silver"),
    "a2": Spec("AT1234BO", "cam-2", 60, "car", "silver"),
    "a3": Spec("AT1234BO", "cam-7", 900, "car", "silver"),
    "b": Spec("AT1299BE", "cam-1", 30, "van", "silver"),
    "conf": Spec("AT1234B0", "cam-3", 40, "car", "silver"),  # O read as 0
    "ins": Spec("AT12345BO", "cam-3", 50, "car", "white"),  # one extra character
    "cand": Spec("BC0000XX", "cam-4", 70, "van", "black", candidates=("AT1234BO",)),
    "k": Spec("KA5678CC", "cam-12", 100, "truck", "red"),
    "raw": Spec("AI9999AA", "cam-12", 110, "car", "blue", raw="AI 9999 AA"),
    "none": Spec(None, "cam-12", 120, "van", "silver"),
}


@pytest.fixture(scope="module", params=[None, T0 + 55, T0 + 10_000], ids=["tail", "half", "all"])
def loaded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Database, dict[str, str]]]:
    """The sightings of ``SPECS``, none, some or all of them in the plate index."""
    db = Database(tmp_path_factory.mktemp("search") / "s.duckdb")
    ids = dict(zip(SPECS, store(db, list(SPECS.values())), strict=True))
    _index(db, request.param)
    yield db, ids
    db.close()


def _index(db: Database, upto: float | None) -> None:
    """Index rows received before ``upto`` (None: leave everything in the tail)."""
    if upto is not None:
        # small slices and merge ranges: the bounded writer jobs are what is tested
        PlateIndexer(db, lag_s=0, clock=lambda: upto, max_rows=4).compact()


def _names(ids: dict[str, str], rows: list[dict[str, Any]]) -> set[str]:
    back = {v: k for k, v in ids.items()}
    return {back[r["event_id"]] for r in rows}


CASES = [
    ("exact", dict(plate=PlateQuery.parse("AT1234BO", None)), {"a1", "a2", "a3", "cand"}),
    ("cyrillic", dict(plate=PlateQuery.parse("ат 1234 во", None)), {"a1", "a2", "a3", "cand"}),
    ("raw read", dict(plate=PlateQuery.parse("AI9999AA", "exact")), {"raw"}),
    (
        "wildcard",
        dict(plate=PlateQuery.parse("AT12??B?", None)),
        {"a1", "a2", "a3", "b", "conf", "cand"},
    ),
    ("contains", dict(plate=PlateQuery.parse("*567*", None)), {"k"}),
    (
        "fuzzy",
        dict(plate=PlateQuery.parse("AT1234BO", "fuzzy")),
        {"a1", "a2", "a3", "conf", "ins", "cand"},
    ),
    (
        "fuzzy deletion",
        dict(plate=PlateQuery.parse("AT12345B0", "fuzzy")),
        {"ins"} | {"a1", "a2", "a3", "conf", "cand"},
    ),
    (
        "time range",
        dict(start=parse_time(str(T0 + 30), "from"), end=parse_time(str(T0 + 70), "to")),
        {"b", "conf", "ins", "a2"},
    ),
    ("camera", dict(camera_ids=("cam-12",)), {"k", "raw", "none"}),
    ("cameras", dict(camera_ids=("cam-12", "cam-4")), {"k", "raw", "none", "cand"}),
    ("type colour", dict(vehicle_type="van", colour="silver"), {"b", "none"}),
    (
        "plate and camera",
        dict(plate=PlateQuery.parse("AT1234BO", None), camera_ids=("cam-2",)),
        {"a2"},
    ),
    ("agent", dict(agent_id="nobody"), set()),
]


@pytest.mark.parametrize(("name", "query", "expected"), CASES, ids=[c[0] for c in CASES])
def test_search_finds_exactly_the_matching_sightings(
    loaded: tuple[Database, dict[str, str]], name: str, query: dict[str, Any], expected: set[str]
) -> None:
    db, ids = loaded
    audit = AuditLog(db)
    page = SearchService(db, audit).search(SearchQuery(**query), "olena", "case 12/345")
    assert _names(ids, page.items) == expected, name
    times = [r["captured_at"] for r in page.items]
    assert times == sorted(times, reverse=True)
    [last] = audit.query(limit=1)
    assert (last.actor, last.action, last.reason) == ("olena", "search", "case 12/345")
    assert last.details["results"] == len(expected)


@pytest.mark.parametrize("indexed", [None, T0 + 400])
def test_pages_have_no_gaps_or_repeats(tmp_path: Path, indexed: float | None) -> None:
    db = Database(tmp_path / "p.duckdb")
    # Bursts of sightings at the same instant test the event-id tie break.
    specs = [Spec("AT0001AA", f"cam-{i % 5}", float(i // 3)) for i in range(200)]
    ids = set(store(db, specs))
    _index(db, indexed)
    service = SearchService(db, AuditLog(db))
    for plate in (None, PlateQuery.parse("AT0001AA", None), PlateQuery.parse("AT000?AA", None)):
        seen: list[str] = []
        cursor = None
        for _ in range(100):
            page = service.search(SearchQuery(plate=plate, limit=7, cursor=cursor), "u", "test")
            seen += [r["event_id"] for r in page.items]
            if page.next is None:
                break
            cursor = Cursor.decode(page.next)
        assert len(seen) == len(set(seen)) == len(ids) and set(seen) == ids
    db.close()


def test_indexing_in_small_jobs_gives_one_sorted_run_per_finished_day(tmp_path: Path) -> None:
    """Compaction in slices of at most ``max_rows`` sightings, then merging each finished
    day in key ranges of ``max_rows`` index rows, leaves exactly the rows a one-shot build
    makes, each day's rows in key order."""
    db = Database(tmp_path / "i.duckdb")
    day = 86_400.0
    specs = [Spec(f"AT{i % 37:04d}BO", f"cam-{i % 3}", i * 997.0) for i in range(300)]
    store(db, specs)
    PlateIndexer(db, lag_s=0, clock=lambda: T0 + 5 * day, max_rows=25).compact()
    with db.reader() as con:
        rows = con.execute(
            "SELECT time_bucket(INTERVAL 1 DAY, captured_at, TIMESTAMPTZ '2000-01-01') AS d, "
            "k, rev, text, event_id::VARCHAR FROM plate_index ORDER BY rowid"
        ).fetchall()
        expected = con.execute(
            f"SELECT k, rev, text, event_id::VARCHAR FROM ({key_rows_sql('sightings', 'TRUE')})"
        ).fetchall()
    assert sorted(r[1:] for r in rows) == sorted(expected)
    days = {r[0] for r in rows}
    assert len(days) >= 3  # several finished days were merged
    for d in days:
        keys = [r[1] for r in rows if r[0] == d]
        assert keys == sorted(keys)
    db.close()


def test_look_back_windows_page_through_weeks_without_gaps(tmp_path: Path) -> None:
    db = Database(tmp_path / "w.duckdb")
    day = 86_400.0
    specs = [Spec(f"AT{i % 7:04d}BO", f"cam-{i % 3}", i * 0.37 * day) for i in range(60)]
    ids = store(db, specs)
    _index(db, T0 + 10 * day)  # older part indexed, the rest in the tail
    newest = T0 + 59 * 0.37 * day
    service = SearchService(db, AuditLog(db), clock=lambda: newest + 3600)
    for plate in (None, PlateQuery.parse("*00*", None)):
        seen: list[str] = []
        cursor = None
        while True:
            query = SearchQuery(plate=plate, limit=4, cursor=cursor)
            page = service.search(query, "u", "test")
            seen += [r["event_id"] for r in page.items]
            if page.next is None:
                break
            cursor = Cursor.decode(page.next)
        assert seen == ids[::-1]
    db.close()


def test_journey_is_in_time_order_with_gaps_and_cameras(
    loaded: tuple[Database, dict[str, str]],
) -> None:
    db, ids = loaded
    audit = AuditLog(db)
    trip = SearchService(db, audit).journey(
        JourneyQuery(PlateQuery.parse("AT1234BO", "exact")), "olena", "case 7"
    )
    assert [s.sighting["event_id"] for s in trip.stops] == [
        ids["a1"],
        ids["a2"],
        ids["cand"],
        ids["a3"],
    ]
    assert [s.gap_s for s in trip.stops] == [None, 60.0, 10.0, 830.0]
    assert trip.cameras == ["cam-1", "cam-2", "cam-4", "cam-7"]
    [last] = audit.query(limit=1)
    assert last.action == "search.journey" and last.details["results"] == 4


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: PlateQuery.parse("AT%12", None), "plate"),
        (lambda: PlateQuery.parse("**", None), "plate"),
        (lambda: PlateQuery.parse("AT1", "fuzzy"), "fuzzy"),
        (lambda: PlateQuery.parse("AT1234BO", "regex"), "match"),
        (lambda: parse_time("yesterday", "from"), "from"),
        (lambda: Cursor.decode("not-a-cursor"), "cursor"),
        (lambda: SearchQuery(limit=0), "limit"),
        (
            lambda: SearchQuery(
                start=datetime(2026, 2, 1, tzinfo=UTC), end=datetime(2026, 1, 1, tzinfo=UTC)
            ),
            "from",
        ),
        (lambda: JourneyQuery(PlateQuery.parse("AT*", None)), "journey"),
    ],
)
def test_bad_parameters_are_refused_with_a_message(call: Any, error: str) -> None:
    with pytest.raises(InvalidRequest, match=error):
        call()


def test_time_parameters_accept_iso_and_unix() -> None:
    assert parse_time("2026-11-24T14:00:00Z", "from") == datetime(2026, 11, 24, 14, tzinfo=UTC)
    assert parse_time("2026-11-24T14:00:00", "from") == datetime(2026, 11, 24, 14, tzinfo=UTC)
    assert parse_time("1790000000", "from") == datetime.fromtimestamp(1_790_000_000, UTC)


def test_search_without_reason_searches_nothing(loaded: tuple[Database, dict[str, str]]) -> None:
    audit = AuditLog(loaded[0])
    before = audit.query(limit=1)
    with pytest.raises(InvalidRequest, match="reason"):
        SearchService(loaded[0], audit).search(SearchQuery(), "olena", "  ")
    assert audit.query(limit=1) == before  # nothing searched, nothing recorded


# -- over HTTP --------------------------------------------------------------------------


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    rig = make_rig(tmp_path)
    yield rig


def test_http_search_reason_audit_and_errors(rig: Rig) -> None:
    ids = store(rig.central.db, [SPECS["a1"], SPECS["a2"], SPECS["k"]])
    operator = bearer(rig.token(Role.OPERATOR))
    with TestClient(create_app(rig.central)) as http:
        url = "/api/v1/sightings/search"
        ok = http.get(url, params={"plate": "АТ1234ВО", "reason": "case 12/345"}, headers=operator)
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert [i["event_id"] for i in body["items"]] == [ids[1], ids[0]]
        assert body["items"][0]["thumbnails"][0]["url"].endswith("/thumbnails/0")
        assert body["next"] is None
        paged = http.get(url, params={"reason": "case 1", "limit": 2}, headers=operator).json()
        assert len(paged["items"]) == 2 and paged["next"]
        rest = http.get(
            url, params={"reason": "case 1", "limit": 2, "cursor": paged["next"]}, headers=operator
        ).json()
        assert [i["event_id"] for i in rest["items"]] == [ids[0]]
        for params in (
            {"plate": "AT1234BO"},  # no reason
            {"plate": "AT%", "reason": "case 1"},
            {"from": "noon", "reason": "case 1"},
            {"limit": "0", "reason": "case 1"},
            {"limit": "many", "reason": "case 1"},
            {"cursor": "zzz", "reason": "case 1"},
            {"plate": "AT1", "match": "fuzzy", "reason": "case 1"},
        ):
            bad = http.get(url, params=params, headers=operator)
            assert bad.status_code == 400, (params, bad.text)
            assert set(bad.json()) == {"status", "error", "detail"}
        trip = http.get(
            "/api/v1/vehicles/journey",
            params={"plate": "AT1234BO", "reason": "case 12/345", "from": T0 - 1, "to": T0 + 3600},
            headers=operator,
        )
        assert trip.status_code == 200, trip.text
        assert [s["sighting"]["camera_id"] for s in trip.json()["stops"]] == ["cam-1", "cam-2"]
        assert trip.json()["stops"][1]["gap_s"] == 60.0
        missing = http.get("/api/v1/vehicles/journey", params={"reason": "x1x"}, headers=operator)
        assert missing.status_code == 400
        police = bearer(rig.token(Role.POLICE_API))
        denied = http.get(url, params={"reason": "case 1"}, headers=police)
        assert denied.status_code == 403
        audit = rig.central.audit
        assert isinstance(audit, AuditLog)
        searches = [e for e in reversed(audit.query(limit=1000)) if e.action.startswith("search")]
        assert [(e.action, e.reason, e.details["results"]) for e in searches] == [
            ("search", "case 12/345", 2),
            ("search", "case 1", 2),
            ("search", "case 1", 1),
            ("search.journey", "case 12/345", 2),
        ]
        assert searches[0].target == "plate:AT1234BO" and searches[0].actor.startswith("operator")
