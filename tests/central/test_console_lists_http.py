"""The wanted-list pages and the audit viewer over HTTP in process (real DuckDB, Litestar's
test client, the real watchlist service): who may see and do what, reasons required, CSRF,
entry changes audited with the actor and reason, filters and pages, the upload report and
the progress of a staged import, and a tampered audit chain named at its first broken row."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from central.app import create_app
from central.watchlist.model import ListChange
from central.watchlist.service import WatchlistService
from central.web.list_forms import EntryForm, ListForm, entry_fields, list_change, validity_of
from central.web.timefields import from_field, to_field
from shared.errors import InvalidRequest
from tests.central.auth_helpers import PASSWORD, Rig, make_rig

TOKEN = re.compile(r'name="_csrf_token" value="([0-9a-f]+)"')
KYIV = ZoneInfo("Europe/Kyiv")
CSV = (
    "plate,category,priority,reason,case_ref\n"
    "АА1234ВВ,stolen,1,викрадено,12025000001\n"
    "BAD!,stolen,1,,\n"
    "КА7777СА,wanted,2,розшук,12025000002\n"
)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = make_rig(tmp_path)
    r.user("olena", "operator")
    r.user("petro", "supervisor")
    service(r).configure("national", ListChange(), "setup", "the national list")
    yield r


def service(rig: Rig) -> WatchlistService:
    assert rig.central.watchlists is not None
    return rig.central.watchlists


@pytest.fixture
def client(rig: Rig) -> Iterator[TestClient[Litestar]]:
    with TestClient(create_app(rig.central)) as c:
        yield c


def sign_in(client: TestClient[Litestar], user: str) -> str:
    """Sign ``user`` in; return a CSRF token for the forms."""
    match = TOKEN.search(client.get("/console/login?lang=en").text)
    assert match is not None
    body = {"username": user, "password": PASSWORD, "_csrf_token": match.group(1), "lang": "en"}
    resp = client.post("/console/login", data=body, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    client.post("/console/prefs", data={"locale": "en", "_csrf_token": match.group(1)})
    return match.group(1)


def audit_rows(rig: Rig, action: str) -> list[tuple[str, str, str]]:
    assert rig.central.audit is not None
    return [(r.actor, r.target, r.reason) for r in rig.central.audit.query(action=action)]


def keys(html: str) -> list[str]:
    return re.findall(r'<tr data-key="([^"]+)"', html)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/console/lists/national/entry"),
        ("get", "/console/lists/national/progress"),
        ("post", "/console/lists"),
        ("post", "/console/lists/national/settings"),
        ("post", "/console/lists/national/entry"),
        ("post", "/console/lists/national/expire"),
        ("post", "/console/lists/national/remove"),
        ("post", "/console/lists/national/upload"),
        ("get", "/console/audit"),
    ],
)
def test_operator_may_read_lists_but_not_change_them(
    client: TestClient[Litestar], rig: Rig, method: str, path: str
) -> None:
    token = sign_in(client, "olena")
    data = {"_csrf_token": token, "key": "x", "why": "a reason", "name": "n"}
    resp = client.request(method, path, data=data if method == "post" else None)
    assert resp.status_code == 403 and 'data-status="403"' in resp.text
    assert audit_rows(rig, "watchlist.entry.add") == []


def test_operator_sees_entries_without_change_forms(client: TestClient[Litestar]) -> None:
    sign_in(client, "olena")
    board = client.get("/console/").text
    assert 'data-nav="lists"' in board and 'data-nav="audit"' not in board
    overview = client.get("/console/lists")
    assert overview.status_code == 200 and 'data-list="national"' in overview.text
    assert 'action="/console/lists"' not in overview.text  # no "new list" form
    page = client.get("/console/lists/national").text
    assert "upload-form" not in page and "settings-form" not in page and "add-entry" not in page


def test_forms_without_the_csrf_token_are_refused(client: TestClient[Litestar], rig: Rig) -> None:
    sign_in(client, "petro")
    data = {"plate": "АА0001ВВ", "why": "a new case"}
    resp = client.post("/console/lists/national/entry", data=data)
    assert resp.status_code == 403 and "did not come from this console" in resp.text
    assert service(rig).repository.count("national") == 0


@pytest.mark.parametrize("why", ["", "  ", "no"])
def test_changes_need_a_reason_and_keep_the_typed_values(
    client: TestClient[Litestar], rig: Rig, why: str
) -> None:
    token = sign_in(client, "petro")
    data = {"plate": "АА0001ВВ", "case_ref": "12025000009", "why": why, "_csrf_token": token}
    resp = client.post("/console/lists/national/entry", data=data)
    assert resp.status_code == 400
    assert "reason: expected why the list changes" in resp.text
    assert 'value="АА0001ВВ"' in resp.text and 'value="12025000009"' in resp.text
    new = {"name": "local", "why": why, "_csrf_token": token}
    created = client.post("/console/lists", data=new)
    assert created.status_code == 400 and 'id="form-error"' in created.text
    assert [s.name for s in service(rig).lists()] == ["national"]
    assert service(rig).repository.count("national") == 0


def test_add_edit_expire_remove_an_entry_audited(client: TestClient[Litestar], rig: Rig) -> None:
    token = sign_in(client, "petro")
    add = {"plate": "ВН0001АА", "category": "stolen", "priority": "1", "entry_reason": "викрадено",
           "case_ref": "12025000010", "valid_until": "2099-01-01T12:00", "why": "new case",
           "_csrf_token": token}  # fmt: skip
    resp = client.post("/console/lists/national/entry", data=add, follow_redirects=False)
    assert resp.status_code == 303
    assert resp.headers["location"] == "/console/lists/national/entry?key=BH0001AA&done=saved"
    entry = service(rig).entry("national", "BH0001AA")
    assert (entry["plate_raw"], entry["category"], entry["priority"]) == ("ВН0001АА", "stolen", 1)
    assert entry["valid_until"] == dt.datetime(2099, 1, 1, 10, tzinfo=dt.UTC).timestamp()  # Kyiv

    page = client.get("/console/lists/national/entry?key=BH0001AA").text
    assert 'value="2099-01-01T12:00"' in page and 'data-validity="active"' in page
    edit = {**add, "key": "BH0001AA", "category": "wanted", "why": "category corrected"}
    resp = client.post("/console/lists/national/entry", data=edit, follow_redirects=False)
    assert resp.status_code == 303
    assert service(rig).entry("national", "BH0001AA")["category"] == "wanted"

    before = time.time()
    expire = {"key": "BH0001AA", "why": "vehicle found", "_csrf_token": token}
    resp = client.post("/console/lists/national/expire", data=expire)
    assert resp.status_code == 200 and 'data-done="expired"' in resp.text
    assert 'id="entry-validity" data-validity="expired"' in resp.text
    ended = service(rig).entry("national", "BH0001AA")["valid_until"]
    assert before - 1 <= ended <= time.time() + 1
    assert len(service(rig).matcher) == 0  # the matcher was rebuilt without it

    remove = {"key": "BH0001AA", "why": "entered by mistake", "_csrf_token": token}
    resp = client.post("/console/lists/national/remove", data=remove)
    assert resp.status_code == 200 and 'data-done="removed"' in resp.text
    assert service(rig).repository.count("national") == 0
    target = "watchlist:national/BH0001AA"
    assert audit_rows(rig, "watchlist.entry.add") == [("petro", target, "new case")]
    assert audit_rows(rig, "watchlist.entry.edit") == [
        ("petro", target, "vehicle found"),
        ("petro", target, "category corrected"),
    ]
    assert audit_rows(rig, "watchlist.entry.remove") == [("petro", target, "entered by mistake")]


def test_a_plate_keyed_entry_cannot_change_its_plate(client: TestClient[Litestar]) -> None:
    token = sign_in(client, "petro")
    add = {"plate": "ВН0001АА", "why": "new case", "_csrf_token": token}
    client.post("/console/lists/national/entry", data=add)
    edit = {**add, "key": "BH0001AA", "plate": "ВН0002АА", "why": "typo"}
    resp = client.post("/console/lists/national/entry", data=edit)
    assert resp.status_code == 400 and "remove it and add a new entry instead" in resp.text
    duplicate = client.post("/console/lists/national/entry", data=add)
    assert duplicate.status_code == 409 and "edit it instead" in duplicate.text


def test_upload_reports_row_errors(client: TestClient[Litestar], rig: Rig) -> None:
    token = sign_in(client, "petro")
    files = {"file": ("export.csv", CSV.encode(), "text/csv")}
    data = {"why": "registry export of today", "_csrf_token": token}
    fragment = client.post(
        "/console/lists/national/upload", data=data, files=files, headers={"hx-request": "true"}
    )
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'data-rows="3" data-rejected="1"' in fragment.text
    row = '<tr data-line="3"><td>3</td><td class="wrap">plate &#39;BAD!&#39; is not'
    assert row in fragment.text
    assert service(rig).repository.count("national") == 2
    overview = client.get("/console/lists").text
    assert 'data-count="2"' in overview and "2 added, 0 changed, 0 removed, 1 rejected" in overview
    assert audit_rows(rig, "watchlist.import") == [
        ("petro", "watchlist:national", "registry export of today")
    ]
    refused = client.post(  # a plain form gets the whole page, the file is not applied
        "/console/lists/national/upload", data={**data, "why": ""}, files=files
    )
    assert refused.status_code == 400 and "<html" in refused.text
    assert 'id="upload-error"' in refused.text and len(audit_rows(rig, "watchlist.import")) == 1


def test_settings_and_a_new_list(client: TestClient[Litestar], rig: Rig) -> None:
    token = sign_in(client, "petro")
    form = {"strict": "on", "retention_days": "30", "default_priority": "2", "source": "МВС",
            "why": "stricter matching", "_csrf_token": token}  # fmt: skip
    resp = client.post("/console/lists/national/settings", data=form)
    assert resp.status_code == 200 and 'data-done="settings"' in resp.text
    settings = service(rig).get_list("national")
    assert (settings.strict, settings.retention_days, settings.default_priority) == (True, 30, 2)
    bad = client.post("/console/lists/national/settings", data={**form, "retention_days": "0"})
    assert bad.status_code == 400 and "retention_days: expected 1..36500" in bad.text
    created = client.post(
        "/console/lists", data={"name": "local", "why": "a local list", "_csrf_token": token}
    )
    assert created.status_code == 200 and "<h1>List local</h1>" in created.text
    again = client.post(
        "/console/lists", data={"name": "local", "why": "a local list", "_csrf_token": token}
    )
    assert again.status_code == 409 and "exists already" in again.text
    assert [a for a, _, _ in audit_rows(rig, "watchlist.settings")] == ["petro"]
    assert audit_rows(rig, "watchlist.create")[0] == ("petro", "watchlist:local", "a local list")


def test_entries_are_filtered_and_paged(client: TestClient[Litestar], rig: Rig) -> None:
    now = dt.datetime.now(dt.UTC)
    rows = [
        {"plate": f"АА{i:04d}ВВ", "category": "stolen" if i % 2 else "wanted",
         "valid_until": (now + dt.timedelta(days=-1 if i % 3 == 0 else 1)).isoformat()}
        for i in range(1, 121)
    ]  # fmt: skip
    csv = "plate,category,valid_until\n" + "".join(
        f"{r['plate']},{r['category']},{r['valid_until']}\n" for r in rows
    )
    service(rig).upload(
        "national", csv.encode(), "csv", full=False, change=ListChange(), actor="t", reason="test"
    )
    sign_in(client, "olena")
    first = client.get("/console/lists/national").text
    assert len(keys(first)) == 50 and keys(first)[0] == "AA0001BB"
    nxt = re.search(r'href="([^"]+)" id="page-next"', first)
    assert nxt is not None
    second = client.get(nxt.group(1).replace("&amp;", "&")).text
    assert keys(second)[0] == "AA0051BB" and len(keys(second)) == 50
    stolen = client.get("/console/lists/national?category=stolen&plate=аа00").text
    assert len(keys(stolen)) == 50 and all(int(k[2:6]) % 2 for k in keys(stolen))
    expired = keys(client.get("/console/lists/national?validity=expired&plate=AA001").text)
    assert expired == ["AA0012BB", "AA0015BB", "AA0018BB"]
    bad = client.get("/console/lists/national?validity=soon")
    assert bad.status_code == 400 and "validity: expected one of" in bad.text


def test_progress_of_a_staged_import(client: TestClient[Litestar], rig: Rig) -> None:
    sign_in(client, "petro")
    assert client.get("/console/lists/national/progress").text.strip() == ""
    started = dt.datetime(2026, 12, 5, 10, 0)
    rig.central.db.writer.call(  # an import as loading.py leaves it half-way (test-only path)
        lambda con: (
            con.execute(
                "INSERT INTO watchlist_imports VALUES (7, 'national', false, 'applying', [], "
                "?, ?, 'K3')",
                [started, started],
            ),
            con.execute(
                "INSERT INTO watchlist_import_rows SELECT 7, 'K' || i, 'plate', 'K' || i, '', "
                "'other', 3, '', '', NULL, NULL, '', '', '' FROM range(1, 5) t(i)"
            ),
        )
    )
    progress = client.get("/console/lists/national/progress").text
    assert 'data-state="applying" data-staged="4" data-applied="2"' in progress
    assert "Applying to the list: 2 of 4 entries" in progress
    assert '<progress max="4" value="2"' in progress
    rig.central.db.writer.call(
        lambda con: con.execute("UPDATE watchlist_imports SET state = 'staging'")
    )
    assert "Staging entries: 4 so far" in client.get("/console/lists/national/progress").text


def test_audit_viewer_filters_and_pages(client: TestClient[Litestar], rig: Rig) -> None:
    assert rig.central.audit is not None
    for i in range(60):
        rig.central.audit.record("ivan", "search", f"plate:AA{i:04d}BB", "case 1")
    sign_in(client, "petro")
    page = client.get("/console/audit?actor=ivan&action=search").text
    ids = [int(i) for i in re.findall(r'data-row-id="(\d+)"', page)]
    assert len(ids) == 50 and ids == sorted(ids, reverse=True)
    older = re.search(r'href="([^"]+)" id="page-older"', page)
    assert older is not None
    rest = client.get(older.group(1).replace("&amp;", "&")).text
    assert len(re.findall(r'data-row-id="(\d+)"', rest)) == 10
    hour = dt.timedelta(hours=1)
    now = dt.datetime.now(KYIV)
    window = {"actor": "ivan", "since": to_field((now - hour).timestamp(), KYIV)}
    assert len(re.findall("data-row-id", client.get("/console/audit", params=window).text)) == 50
    window["until"] = to_field((now - hour / 2).timestamp(), KYIV)
    assert "No rows match." in client.get("/console/audit", params=window).text
    assert audit_rows(rig, "audit.view")[0][0] == "petro"


def test_a_tampered_chain_shows_its_first_broken_row(
    client: TestClient[Litestar], rig: Rig
) -> None:
    sign_in(client, "petro")
    assert 'data-ok="true"' in client.get("/console/audit").text
    rig.central.db.writer.call(  # someone with the database file edits a row (test-only path)
        lambda con: con.execute("UPDATE audit_log SET reason = 'nothing to see' WHERE id = 2")
    )
    page = client.get("/console/audit").text
    assert 'data-ok="false" data-first-broken="2"' in page
    link = re.search(r'<a href="([^"]+)" id="first-broken">First broken row: 2</a>', page)
    assert link is not None and link.group(1) == "/console/audit?before=3#row-2"
    broken = client.get("/console/audit?before=3").text
    assert '<tr id="row-2" data-row-id="2" class="broken-row"' in broken


@pytest.mark.parametrize(
    ("form", "before", "expected", "error"),
    [
        (EntryForm(plate=" АА1 ", priority=""), None,
         {"plate": "АА1", "priority": "", "valid_from": "", "valid_until": ""}, None),
        (EntryForm(id=" 42 ", valid_from="2026-12-05T14:30"), None,
         {"id": "42", "valid_from": "2026-12-05T14:30:00+02:00"}, None),
        (EntryForm(key="id:42", valid_from="2025-12-05T14:30"), {"valid_from": 1_764_937_845.0,
         "valid_until": None}, {}, None),  # both as the form showed them: not sent, seconds kept
        (EntryForm(valid_until="tomorrow"), None, {}, "valid_until: expected a date and time"),
    ],
)  # fmt: skip
def test_entry_fields(
    form: EntryForm, before: dict[str, object] | None, expected: dict[str, str], error: str | None
) -> None:
    if error is not None:
        with pytest.raises(InvalidRequest, match=error):
            entry_fields(form, KYIV, before)
        return
    fields = entry_fields(form, KYIV, before)
    assert {k: fields[k] for k in expected} == expected
    if before is not None:
        assert "valid_from" not in fields and "valid_until" not in fields and "id" not in fields


def test_list_change_and_validity() -> None:
    change = list_change(ListForm(strict="on", retention_days=" 30 ", default_priority=""))
    assert change == ListChange(strict=True, retention_days=30, default_priority=None, source="")
    assert list_change(ListForm()).strict is False
    with pytest.raises(InvalidRequest, match="retention_days: expected a whole number"):
        list_change(ListForm(retention_days="ninety"))
    entry = {"valid_from": 100.0, "valid_until": 200.0}
    states = [validity_of(entry, t) for t in (50.0, 100.0, 199.9, 200.0)]
    assert states == ["pending", "active", "active", "expired"]
    moment = dt.datetime(2026, 12, 5, 14, 30, tzinfo=KYIV)
    assert from_field("2026-12-05T14:30", KYIV, "x") == moment
    assert from_field(" ", KYIV, "x") is None and to_field(None, KYIV) == ""
