"""The console's search and journey pages and evidence export over HTTP in process (real
DuckDB, Litestar's test client), and the camera-position and tile-server configuration."""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import TestClient
from pydantic import ValidationError

from central.app import create_app
from central.config import CameraPlaceConfig, CentralConfig, ConsoleConfig
from central.evidence import verify_package
from central.web import search_pages
from shared.errors import InvalidRequest
from tests.central.auth_helpers import PASSWORD, Rig, make_rig
from tests.central.test_evidence import sight

TOKEN = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')
CAMERAS = [
    {"id": "cam-1", "lat": 50.4501, "lon": 30.5234, "heading": 90, "label": "Хрещатик"},
    {"id": "cam-2", "lat": 50.4547, "lon": 30.5166, "heading": 180},
    {"id": "cam-9", "lat": 50.44, "lon": 30.53},
]


def _rig(tmp_path: Path, console: dict[str, Any] | None = None) -> Rig:
    r = make_rig(tmp_path)
    r.central.config = r.central.config.model_copy(
        update={
            "cameras": [CameraPlaceConfig(**c) for c in CAMERAS],
            "console": ConsoleConfig(**(console or {})),
        }
    )
    for name, role in (("olena", "operator"), ("ivan", "engineer")):
        r.user(name, role)
    return r


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    yield _rig(tmp_path)


@pytest.fixture
def client(rig: Rig) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(rig.central)) as c:
        yield c


def _sign_in(client: TestClient[Litestar], user: str) -> str:
    token = TOKEN.search(client.get("/console/login").text)
    assert token is not None
    body = {"username": user, "password": PASSWORD, "_csrf_token": token.group(1)}
    resp = client.post("/console/login", data=body, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return token.group(1)


def _audit(rig: Rig, action: str) -> list[Any]:
    assert rig.central.audit is not None
    return rig.central.audit.query(action=action)


def test_search_needs_a_reason_and_is_audited_as_the_rest_search(
    rig: Rig, client: TestClient[Litestar]
) -> None:
    ids = sight(rig, "AA7681TE", ["cam-1", "cam-2"], alert=False)
    _sign_in(client, "olena")
    first = client.get("/console/search")
    assert first.status_code == 200 and 'id="s-reason"' in first.text
    assert 'id="results"' not in first.text
    refused = client.get("/console/search", params={"plate": "АА7681ТЕ", "reason": " "})
    assert refused.status_code == 400
    assert "reason: expected a case number or purpose" in html.unescape(refused.text)
    assert 'value="АА7681ТЕ"' in refused.text  # what was typed is kept
    assert _audit(rig, "search") == []  # nothing searched
    found = client.get("/console/search", params={"plate": "АА7681ТЕ", "reason": "case 12/345"})
    assert found.status_code == 200
    rows = re.findall(r'<tr data-event-id="([0-9a-f-]+)"', found.text)
    assert sorted(rows) == sorted(ids)
    assert found.text.count(">АА7681ТЕ</span>") == 2  # registry form, Cyrillic
    assert "90,0%" in found.text  # read confidence, Ukrainian number format
    [entry] = _audit(rig, "search")
    assert (entry.actor, entry.target, entry.reason) == ("olena", "plate:AA7681TE", "case 12/345")
    assert entry.details["results"] == 2


def test_search_pages_and_next_page(
    rig: Rig, client: TestClient[Litestar], monkeypatch: pytest.MonkeyPatch
) -> None:
    sight(rig, "AA7681TE", ["cam-1"] * 3, alert=False)
    _sign_in(client, "olena")
    monkeypatch.setattr(search_pages, "PAGE_SIZE", 2)
    page1 = client.get("/console/search", params={"plate": "AA76*", "reason": "case 1"})
    nxt = re.search(r'href="(/console/search\?[^"]+)" id="next-page"', page1.text)
    assert nxt is not None
    page2 = client.get(html.unescape(nxt.group(1)))
    assert len(re.findall(r"<tr data-event-id", page1.text)) == 2
    assert len(re.findall(r"<tr data-event-id", page2.text)) == 1
    assert 'id="next-page"' not in page2.text and "First page" not in page2.text  # uk page
    assert [e.details["cursor"] is None for e in reversed(_audit(rig, "search"))] == [True, False]


def test_journey_page_draws_the_configured_cameras_and_route(
    rig: Rig, client: TestClient[Litestar]
) -> None:
    sight(rig, "AA7681TE", ["cam-1", "cam-2", "cam-5"], alert=False)
    _sign_in(client, "olena")
    page = client.get("/console/journey", params={"plate": "AA7681TE", "reason": "case 12/345"})
    assert page.status_code == 200
    plan = json.loads(html.unescape(re.search(r'data-plan="([^"]+)"', page.text).group(1)))  # type: ignore[union-attr]
    assert [(c["id"], c["seen"]) for c in plan["cameras"]] == [
        ("cam-1", True),
        ("cam-2", True),
        ("cam-9", False),
    ]
    assert plan["route"] == [[50.4501, 30.5234], [50.4547, 30.5166]]  # cam-5 has no place
    assert 'data-mode="plan"' in page.text and 'data-tiles=""' in page.text
    assert len(re.findall(r'<li data-camera="', page.text)) == 3  # cam-5 is on the timeline
    assert "Хрещатик" in page.text
    assert "img-src 'self' data:;" in page.headers["content-security-policy"]
    [entry] = _audit(rig, "search.journey")
    assert (entry.target, entry.reason) == ("plate:AA7681TE", "case 12/345")


def test_console_exports_a_journey_with_csrf_and_reason(
    rig: Rig, client: TestClient[Litestar]
) -> None:
    sight(rig, "AA7681TE", ["cam-1", "cam-2"], alert=False)
    token = _sign_in(client, "olena")
    form = {"plate": "AA7681TE", "reason": "case 12/345", "_csrf_token": token}
    refused = client.post("/console/evidence/journey", data={**form, "_csrf_token": ""})
    assert refused.status_code == 403
    no_reason = client.post("/console/evidence/journey", data={**form, "reason": ""})
    assert no_reason.status_code == 400 and "reason" in no_reason.text
    resp = client.post("/console/evidence/journey", data=form)
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/zip"
    assert verify_package(resp.content).ok
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        places = json.loads(zf.read("cameras.json"))
    assert [(p["id"], p["lat"], p["heading"]) for p in places] == [
        ("cam-1", 50.4501, 90.0),
        ("cam-2", 50.4547, 180.0),
    ]
    [export] = _audit(rig, "evidence.export")
    assert (export.actor, export.target, export.reason) == (
        "olena",
        "plate:AA7681TE",
        "case 12/345",
    )


def test_engineer_may_not_search_or_export(rig: Rig, client: TestClient[Litestar]) -> None:
    token = _sign_in(client, "ivan")
    assert 'data-nav="search"' not in client.get("/console/").text
    params = {"plate": "AA7681TE", "reason": "case 1"}
    assert client.get("/console/search", params=params).status_code == 403
    assert client.get("/console/journey", params=params).status_code == 403
    resp = client.post("/console/evidence/journey", data={**params, "_csrf_token": token})
    assert resp.status_code == 403
    assert _audit(rig, "search") == [] and _audit(rig, "evidence.export") == []


def test_tile_server_origin_is_the_only_one_added_to_img_src(tmp_path: Path) -> None:
    tiles = "http://tiles.centre.lan:8080/osm/{z}/{x}/{y}.png"
    rig = _rig(tmp_path, {"map_tiles": tiles})
    with TestClient(create_app(rig.central)) as client:
        _sign_in(client, "olena")
        sight(rig, "AA7681TE", ["cam-1"], alert=False)
        page = client.get("/console/journey", params={"plate": "AA7681TE", "reason": "case 1"})
    csp = page.headers["content-security-policy"]
    assert "img-src 'self' data: http://tiles.centre.lan:8080;" in csp
    assert "script-src 'self';" in csp and csp.count("tiles.centre.lan") == 1
    assert 'data-mode="tiles"' in page.text and f'data-tiles="{tiles}"' in page.text


@pytest.mark.parametrize(
    ("section", "value", "error"),
    [
        ("cameras", [{"id": "c", "lat": 91, "lon": 0}], "less than or equal to 90"),
        ("cameras", [{"id": "c", "lat": 0, "lon": -181}], "greater than or equal to -180"),
        ("cameras", [{"id": "c", "lat": 0, "lon": 0, "heading": 360}], "less than 360"),
        ("cameras", [{"id": "c", "lat": 0}], "Field required"),
        ("cameras", [{"id": "c", "lat": 0, "lon": 0, "tilt": 3}], "Extra inputs"),
        (
            "cameras",
            [{"id": "c", "lat": 0, "lon": 0}, {"id": "c", "lat": 1, "lon": 1}],
            "expected each camera id once, got c more than once",
        ),
        ("console", {"map_tiles": "tiles.lan/{z}/{x}/{y}.png"}, "should match pattern"),
        ("console", {"map_tiles": "http://tiles.lan/{z}/{x}.png"}, "missing {y}"),
        ("cameras", [{"id": "c", "lat": 50.45, "lon": 30.52, "heading": 359.5}], None),
        ("console", {"map_tiles": "https://t.lan/{z}/{x}/{y}.png"}, None),
    ],
)
def test_camera_places_and_tiles_are_validated(section: str, value: Any, error: str | None) -> None:
    if error is None:
        CentralConfig.model_validate({section: value})
        return
    with pytest.raises(ValidationError, match=re.escape(error)):
        CentralConfig.model_validate({section: value})


def test_tile_origin() -> None:
    assert ConsoleConfig().tile_origin == ""
    assert ConsoleConfig(map_tiles="https://t.lan:8443/a/{z}/{x}/{y}.png").tile_origin == (
        "https://t.lan:8443"
    )


@pytest.mark.parametrize(
    ("typed", "utc"),
    [
        ("2026-12-05T12:00", "2026-12-05T10:00:00+00:00"),  # datetime-local: Kyiv time
        ("2026-12-05T12:00:30", "2026-12-05T10:00:30+00:00"),
        ("2026-12-05T12:00:00Z", "2026-12-05T12:00:00+00:00"),  # an offset is kept
        ("1764936000", "2025-12-05T12:00:00+00:00"),  # UNIX seconds, as the REST API
        ("", None),
    ],
)
def test_form_times_are_in_the_consoles_zone(typed: str, utc: str | None) -> None:
    moment = search_pages.local_time(typed, "from", ZoneInfo("Europe/Kyiv"))
    assert (moment.astimezone(UTC).isoformat() if moment else None) == utc


def test_a_bad_form_time_says_what_was_expected() -> None:
    with pytest.raises(InvalidRequest, match="from: expected ISO 8601"):
        search_pages.local_time("yesterday", "from", ZoneInfo("Europe/Kyiv"))


def test_archived_sightings_are_marked_in_search_and_journey(rig: Rig) -> None:
    """Days older than the database keeps come from the archive, and the console says so:
    no pictures exist for them, and an investigator must know where a row came from."""
    import time

    from central.alerts.engine import AlertEngine
    from central.archive.export import ArchiveExporter
    from central.archive.target import open_target
    from central.config import ArchiveConfig
    from central.retention import Retention, RetentionPolicy
    from central.watchlist.repository import WatchlistRepository
    from central.watchlist.service import WatchlistService
    from tests.central.search_helpers import Spec, store

    central = rig.central
    day = 86_400.0
    old = store(
        central.db,
        [Spec("AA7681TE", "cam-1", 0), Spec("AA7681TE", "cam-2", 600)],
        base=(time.time() // day - 30) * day + 3600,  # 01:00 UTC 30 days ago
    )
    recent = sight(rig, "AA7681TE", ["cam-1"], alert=False)
    root = central.config.storage.data_dir / "archive"
    target = open_target(ArchiveConfig(enabled=True, root=str(root), region="UA-IF"))
    central.archive = ArchiveExporter(central.db, target, "UA-IF", 3600, 365)
    assert central.archive.export().rows == len(old)  # today's day is not closed yet
    engine = AlertEngine(central.db, WatchlistService(WatchlistRepository(central.db)))
    assert central.audit is not None
    Retention(
        central.db,
        central.config.storage.data_dir / "thumbs",
        engine,
        central.audit,
        RetentionPolicy(non_hit_days=14, chunk_rows=100, archive_hold=True),
        archive=central.archive,
    ).run()
    with TestClient(create_app(central)) as http:
        _sign_in(http, "olena")
        found = http.get("/console/search", params={"plate": "AA7681TE", "reason": "case 7"})
        assert found.status_code == 200, found.text
        rows = re.findall(r'<tr data-event-id="([0-9a-f-]+)">(.*?)</tr>', found.text, re.S)
        marked = {event_id for event_id, cells in rows if 'class="archived"' in cells}
        assert {event_id for event_id, _ in rows} == {*old, *recent}
        assert marked == set(old)  # the database's own rows carry no mark
        assert "з архіву" in found.text  # the operator's language
        trip = http.get("/console/journey", params={"plate": "AA7681TE", "reason": "case 7"})
        assert trip.status_code == 200
        assert trip.text.count('class="archived"') == len(old)
