"""The face pages of the console in headless Chromium: enrolling a wanted person from real
photos (a refused photo says why), the face-candidate queue on the live board, the
candidate page with the enrolled photo beside the edge crop, and the two-person rule in the
browser and on the server; police see nothing before two different people confirm.

Central runs in this process on a real uvicorn (``tests.central.police_helpers.Server``)
with the real face models; candidates come through the real path: a real edge agent sends
the ``FaceObservation`` of another photo of the enrolled person (embedded by the edge's
own face chain) over CURVE ZeroMQ, ingest matches it, and central fetches the face's crop
from the agent's crop buffer over the same link (or hears that it expired). Only "agent
unreachable" is stored through the service's own ``set_crop`` (what its crop worker does
when an agent does not answer).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from central.config import FacesConfig
from central.faces.candidates import FaceCandidates
from central.faces.model import Candidate, PhotoInput
from central.faces.service import FaceWatchlist
from central.web.face_pages import POLL_S
from edge_agent.app import EdgeAgent
from edge_agent.config import AgentConfig
from edge_agent.face_analysis import FaceAnalyser
from edge_agent.face_crops import FaceCropStore
from edge_agent.face_models import FaceModels
from models.store import ModelStore
from shared import wire
from shared.config import load
from tests.central.face_helpers import (
    BIDEN,
    OBAMA,
    OBAMA_2,
    OBAMA_AND_BIDEN,
    observation,
    photo_bytes,
    street_photo,
)
from tests.central.police_helpers import Server, police_config
from tests.harness import KeyRing, agent_config_file, make_keyring, role_token, wait_for
from tests.web.conftest import PASSWORD
from tests.web.console_helpers import check_page, sign_in

pytestmark = pytest.mark.slow

USERS = {
    "olena": "operator",
    "maria": "operator",
    "petro": "supervisor",
    "pavlo": "police-api",
}
OBAMA_3 = "faces-dev/images/tests__test_images__obama3.jpg"
LENNON = "faces-dev-2/images/lennon-1.jpg"
LENNON_2 = "faces-dev-2/images/lennon-2.jpg"
QUEUE_ROW = "#face-queue tr[data-candidate-id]"
FORCED_POST = """async ([url, body]) => {
    const token = document.querySelector("input[name=_csrf_token]").value;
    const headers = {"Content-Type": "application/x-www-form-urlencoded", "x-csrftoken": token};
    const r = await fetch(url, {method: "POST", body, headers, redirect: "manual"});
    return [r.status, await r.text()];
}"""


@pytest.fixture(scope="module")
def analyser(model_store: ModelStore) -> FaceAnalyser:
    """The edge's face chain (what an agent embeds an observed face with)."""
    return FaceAnalyser(FaceModels.load(model_store))


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> KeyRing:
    return make_keyring(tmp_path_factory.mktemp("faces-keys"), ["a1"])


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, model_store: ModelStore, ring: KeyRing
) -> Iterator[Server]:
    """Central with face matching on (the model store of this session), and four users."""
    root = tmp_path_factory.mktemp("faces-console")
    config = police_config(ring, root / "central").model_copy(
        update={"faces": FacesConfig(models_dir=model_store.root)}
    )
    s = Server(config)
    accounts = s.central.accounts
    assert accounts is not None
    for name, role in USERS.items():
        accounts.create_user(name, role, PASSWORD, "test")
    try:
        yield s
    finally:
        s.stop()


def _faces(server: Server) -> tuple[FaceWatchlist, FaceCandidates]:
    persons, candidates = server.central.faces, server.central.face_candidates
    assert persons is not None and candidates is not None
    return persons, candidates


@pytest.fixture(scope="module")
def obama(server: Server, shared_data: Path) -> str:
    """A wanted person enrolled (through the service) from one photo; their id."""
    persons, _ = _faces(server)
    person = persons.enrol(
        "Обама Барак",
        "Ухвала слідчого судді 757/1234/26-к від 01.12.2026",
        "розшук за підозрою у шахрайстві",
        1_900_000_000.0,
        [PhotoInput("obama.jpg", photo_bytes(shared_data, OBAMA))],
        "petro",
    )
    return person.person_id


class FaceAgent:
    """A real edge agent (spool + CURVE ZeroMQ publisher) with the edge's crop buffer: it
    answers central's crop requests from it, as ``edge_agent.run`` wires a face camera."""

    def __init__(self, tmp: Path, ring: KeyRing, endpoint: str) -> None:
        cfg = agent_config_file(tmp / "a1.yaml", ring, "a1", endpoint, tmp / "spool-a1")
        self.crops = FaceCropStore(max_count=16, max_age_s=600)
        self.agent = EdgeAgent(
            load(cfg, AgentConfig),
            cameras=[wire.CameraInfo(camera_id=f"cam-{i}") for i in (1, 2, 3)],
            crops=self._lookup,
        )
        self.agent.start()

    def _lookup(self, observation_id: str) -> bytes | None:
        crop = self.crops.get(observation_id)
        return crop.jpeg if crop is not None else None

    def see(self, obs: wire.FaceObservation, crop: bytes | None) -> None:
        """Keep the face's crop (None: the buffer has let it go), then send the observation."""
        if crop is not None:
            self.crops.put(obs.event_id, crop, obs.camera_id)
        self.agent.submit([(obs, [])])

    def stop(self) -> None:
        self.agent.stop()


@pytest.fixture
def agent(tmp_path: Path, server: Server, ring: KeyRing) -> Iterator[FaceAgent]:
    """A real edge agent with a crop buffer, publishing to the server's ingest over CURVE."""
    a = FaceAgent(tmp_path, ring, server.config.ingest.bind)
    yield a
    a.stop()


def _candidate(server: Server, obs: wire.FaceObservation) -> Candidate:
    """The candidate ingest made of ``obs`` (waits for it)."""
    _, candidates = _faces(server)
    found: list[Candidate] = []

    def made() -> bool:
        found[:] = [c for c in candidates.list_all() if c.candidate_id == obs.event_id]
        return bool(found)

    assert wait_for(made, 30), f"no candidate for {obs.event_id}"
    return found[0]


def _crop(shared_data: Path, rel: str, obs: wire.FaceObservation) -> bytes:
    """The JPEG an agent keeps of the observed face (the box of the photo, cut out)."""
    image = cv2.imread(str(shared_data / rel))
    assert image is not None, rel
    x1, y1, x2, y2 = (int(v) for v in obs.box)
    face = cv2.cvtColor(image[max(y1, 0) : y2, max(x1, 0) : x2], cv2.COLOR_BGR2RGB)
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(face)).save(out, "JPEG", quality=90)
    return out.getvalue()


def _police_sees(server: Server, candidate_id: str) -> bool:
    """Whether anything a police client can list names ``candidate_id`` (the alert feed
    from its start)."""
    with server.client() as police:
        resp = police.get("/api/v1/alerts", params={"limit": 500})
        assert resp.status_code == 200, resp.text
    return candidate_id in resp.text


def _images_loaded(page: Any) -> None:
    page.wait_for_function(
        "[...document.querySelectorAll('.face-compare img, .face-photos img')]"
        ".every(i => i.complete && i.naturalWidth > 0)"
    )


def _steady(page: Any) -> None:
    """Before a screenshot: observation ids are random (shown as …), and the expiries are
    fixed moments of the test data, so they are kept out of ``freeze_clock``'s shift of the
    times (else the latest of them, an expiry years ahead, would set the shift)."""
    page.evaluate(
        """() => {
            document.querySelectorAll("code.obs-id").forEach(c => { c.textContent = "…"; });
            document.querySelectorAll("time.expiry").forEach(t => {
                const kept = document.createElement("span");
                kept.textContent = t.textContent;
                t.replaceWith(kept);
            });
        }"""
    )


def _sign_out(page: Any) -> None:
    page.click("form[action='/console/logout'] button[type=submit]")
    page.wait_for_url("**/console/login**")


def test_supervisor_enrols_a_person_and_a_refused_photo_says_why(
    page: Any, server: Server, shared_data: Path, tmp_path: Path
) -> None:
    sign_in(page, server, "petro")  # type: ignore[arg-type]
    page.click("a[data-nav=persons]")
    page.wait_for_selector("#persons")
    assert page.locator("h1").inner_text() == "Розшукувані особи"
    page.click("#enrol-person")
    page.wait_for_selector("#enrol-form")
    page.fill("#pe-name", "Байден Джо")
    page.fill("#pe-basis", "Ухвала 757/999/26-к")
    page.fill("#pe-reason", "свідок у справі 12026000111")
    page.fill("#pe-expires", "2030-06-30T18:00")
    two = tmp_path / "obama_and_biden.jpg"
    two.write_bytes(photo_bytes(shared_data, OBAMA_AND_BIDEN))
    page.set_input_files("#pe-photos", str(two))
    page.click("#enrol")
    page.wait_for_selector("#form-error")
    error = page.locator("#form-error").inner_text()
    assert "obama_and_biden.jpg: 2 faces found" in error, error
    assert page.locator("#pe-name").input_value() == "Байден Джо"  # what was typed is kept
    assert page.locator("#pe-basis").input_value() == "Ухвала 757/999/26-к"
    check_page(page, "person-refused")

    street = street_photo(shared_data)
    page.set_input_files("#pe-photos", str(street))
    page.click("#enrol")
    page.wait_for_selector("#form-error")
    assert f"{street.name}: no face found" in page.locator("#form-error").inner_text()

    page.set_input_files("#pe-photos", str(shared_data / BIDEN))
    page.click("#enrol")
    page.wait_for_url("**/console/persons/*?done=enrolled")
    assert page.locator("#person-status").get_attribute("data-status") == "active"
    assert page.locator("h1").inner_text().startswith("Байден Джо")
    _images_loaded(page)
    assert page.locator(".face-photos img").count() == 1
    _steady(page)
    check_page(page, "person")

    persons, _ = _faces(server)
    (biden,) = [p for p in persons.people() if p.name == "Байден Джо"]
    assert (biden.enrolled_by, biden.legal_basis) == ("petro", "Ухвала 757/999/26-к")
    with server.client(role_token(server.central, "admin")) as api:
        audit = api.get("/api/v1/audit", params={"actor": "petro"})
    assert audit.status_code == 200, audit.text
    assert "faces.person.enrol" in {r["action"] for r in audit.json()}

    page.click("a[data-nav=persons]")
    page.fill("#p-name", "байден")  # any case
    page.select_option("#p-status", "active")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**/console/persons?*name=*")
    rows = page.locator("#persons tr[data-person-id]")
    assert rows.count() == 1 and rows.first.get_attribute("data-person-id") == biden.person_id
    _steady(page)
    check_page(page, "persons")


def test_expire_and_remove_a_person_with_a_confirmation_step(
    page: Any, server: Server, shared_data: Path
) -> None:
    persons, _ = _faces(server)
    person = persons.enrol(
        "Тестова Особа",
        "Ухвала 1/1",
        "перевірка вилучення",
        1_900_000_000.0,
        [PhotoInput("clapton.jpg", photo_bytes(shared_data, "faces-dev-2/images/clapton-1.jpg"))],
        "petro",
    )
    sign_in(page, server, "petro")  # type: ignore[arg-type]
    page.goto(f"{server.url}/console/persons/{person.person_id}")
    page.fill("#ex-why", "warrant withdrawn")
    page.click("#expire")
    page.wait_for_url("**?done=expired")
    assert page.locator("#person-status").get_attribute("data-status") == "expired"
    assert persons.person(person.person_id).status(time.time()) == "expired"
    page.click("#remove-start")
    page.wait_for_selector("#remove-form")
    assert "Буде видалено 1 фото" in page.locator("#remove-form").inner_text()
    page.fill("#rm-why", "case closed")
    page.click("#remove")
    page.wait_for_url("**/console/persons?done=removed*")
    assert "Тестова Особа вилучено" in page.locator("#done").inner_text()
    gone = persons.person(person.person_id)
    assert gone.removed_by == "petro" and gone.photos == []


def _arrives_live(page: Any, send: Callable[[], None], candidate_id: str) -> Any:
    """Send an observation while the board is open: its row must come without a reload,
    with the cue. Then the board's screenshot (reloaded: no cue animation)."""
    page.wait_for_selector("#face-queue")
    page.evaluate("window.__sameDocument = true")
    started = time.monotonic()
    send()
    row = page.locator(f"#face-{candidate_id}")
    row.wait_for(state="visible", timeout=20_000)
    elapsed = time.monotonic() - started
    print(f"face queue: the match on the open board {elapsed:.2f} s after the agent sent it")
    assert elapsed < POLL_S / 2  # announced by the board's event stream, not the period
    assert page.evaluate("window.__sameDocument") is True
    assert row.get_attribute("data-confirmations") == "0"
    page.wait_for_function("document.body.dataset.cueCount >= 1")
    page.reload()
    page.wait_for_selector(f"body[data-ready=true] #face-{candidate_id}")
    check_page(page, "board-faces")
    return row


def _second_confirmation(page: Any, server: Server, candidate_id: str) -> None:
    """Another user (maria) confirms: the match is confirmed and visible to police."""
    _sign_out(page)
    sign_in(page, server, "maria")  # type: ignore[arg-type]
    page.goto(f"{server.url}/console/faces/{candidate_id}")
    page.wait_for_selector("body[data-ready=true]")
    assert not page.locator("#confirm").is_disabled()
    page.click("#confirm")
    page.wait_for_selector("article[data-state=confirmed]")
    assert page.locator("#police-visible").is_visible()
    users = [li.get_attribute("data-user") for li in page.locator("#decisions li").all()]
    assert users == ["olena", "maria"]
    _images_loaded(page)
    _steady(page)
    check_page(page, "face-confirmed")


def test_two_person_rule_in_the_browser_and_on_the_server(
    page: Any,
    server: Server,
    agent: FaceAgent,
    analyser: FaceAnalyser,
    shared_data: Path,
    obama: str,
) -> None:
    _, candidates = _faces(server)
    sign_in(page, server, "olena")  # type: ignore[arg-type]
    obs = observation(analyser, shared_data, OBAMA_2, camera_id="cam-1")
    crop = _crop(shared_data, OBAMA_2, obs)
    row = _arrives_live(page, lambda: agent.see(obs, crop), obs.event_id)
    cand = _candidate(server, obs)
    assert cand.person_id == obama and cand.state == "pending"
    assert not _police_sees(server, obs.event_id)

    assert wait_for(lambda: candidates.get(obs.event_id).crop_status == "ok", 20)
    assert candidates.crop(obs.event_id, "") == crop  # fetched over the agent's CURVE link
    row.locator("a").click()
    page.wait_for_url(f"**/console/faces/{obs.event_id}")
    page.wait_for_selector("body[data-ready=true] article[data-state=pending]")
    _images_loaded(page)
    assert page.locator("#watchlist-version").inner_text() == str(cand.watchlist_version)
    assert float(page.locator("#face-score").get_attribute("data-score") or 0) >= 0.4
    assert "757/1234/26-к" in page.locator("#legal-basis").inner_text()
    _steady(page)
    check_page(page, "face-candidate")

    page.keyboard.press("c")  # olena confirms: one of two
    page.wait_for_url("**?done=confirmed")
    assert page.locator("#confirm").is_disabled()
    assert "друга, інша людина" in page.locator("#confirm-why").inner_text()
    assert page.locator("#decisions li[data-decision=confirm]").count() == 1
    status, body = page.evaluate(FORCED_POST, [f"/console/faces/{obs.event_id}/confirm", ""])
    assert status == 409, status  # the server refuses her second confirmation
    assert "already confirmed" in body
    assert candidates.get(obs.event_id).confirmers == ["olena"]
    assert not _police_sees(server, obs.event_id)
    with server.client() as police:  # nor can police ask for candidates
        assert police.get("/api/v1/face-candidates").status_code == 403

    _second_confirmation(page, server, obs.event_id)
    done = candidates.get(obs.event_id)
    assert done.state == "confirmed" and done.confirmers == ["olena", "maria"]
    assert _police_sees(server, obs.event_id)
    page.goto(f"{server.url}/console/")
    page.wait_for_selector("#face-queue")
    assert page.locator(f"#face-{obs.event_id}").count() == 0  # no longer waiting
    alert = page.locator("#board tr[data-alert-id]", has_text="Обама Барак")  # the face alert
    alert.locator("a").click()
    page.wait_for_selector("article.alert-detail")
    page.click("#face-candidate-link")
    page.wait_for_url(f"**/console/faces/{obs.event_id}")


def test_rejection_keeps_its_reason_and_expired_crop_is_said(
    page: Any,
    server: Server,
    agent: FaceAgent,
    analyser: FaceAnalyser,
    shared_data: Path,
    obama: str,
) -> None:
    _, candidates = _faces(server)
    obs = observation(analyser, shared_data, OBAMA_3, camera_id="cam-2")
    agent.see(obs, None)  # the agent's buffer no longer holds the face
    _candidate(server, obs)
    assert wait_for(lambda: candidates.get(obs.event_id).crop_status == "expired", 20)
    candidates.set_crop(obs.event_id, "unreachable", None)  # as when the agent is away
    sign_in(page, server, "petro")  # type: ignore[arg-type]
    page.select_option("#pref-locale", "en")
    page.click("form:has(#pref-locale) button[type=submit]")
    page.wait_for_selector("html[lang=en] body[data-ready=true]")
    row = page.locator(f"#face-{obs.event_id}")
    row.wait_for(state="visible")
    row.locator("a").click()
    page.wait_for_selector("body[data-ready=true] article[data-crop=unreachable]")
    assert page.locator("#crop-notice").inner_text().startswith("Agent unreachable")
    candidates.set_crop(obs.event_id, "expired", None)  # what the agent answered
    page.reload()
    page.wait_for_selector("body[data-ready=true] article[data-crop=expired]")
    assert page.locator("#crop-notice").inner_text().startswith("Crop expired")
    status, body = page.evaluate(FORCED_POST, [f"/console/faces/{obs.event_id}/reject", "reason="])
    assert status == 400 and "requires a reason" in body  # the service's rule, not the page's
    page.keyboard.press("x")
    page.keyboard.type("a different man: the ears differ")
    page.click("#reject")
    page.wait_for_selector("article[data-state=rejected]")
    assert "the ears differ" in page.locator("#rejected-note").inner_text()
    assert page.locator("#crop-notice").get_attribute("data-crop") == "deleted"
    _images_loaded(page)
    _steady(page)
    check_page(page, "face-rejected-en")
    stored = candidates.get(obs.event_id)
    assert (stored.state, stored.reject_reason) == ("rejected", "a different man: the ears differ")
    assert not _police_sees(server, obs.event_id)
    status, _ = page.evaluate(FORCED_POST, [f"/console/faces/{obs.event_id}/confirm", ""])
    assert status == 409  # rejected is final


def test_operators_browse_persons_and_police_see_no_face_pages(
    page: Any, server: Server, obama: str
) -> None:
    sign_in(page, server, "olena")  # type: ignore[arg-type]
    page.click("a[data-nav=persons]")
    page.wait_for_selector(f"#persons tr[data-person-id='{obama}']")
    assert page.locator("#enrol-person").count() == 0  # read-only for operators
    page.goto(f"{server.url}/console/persons/{obama}")
    page.wait_for_selector(".face-photos img")
    assert page.locator("#expire-form, #remove-start").count() == 0
    response = page.goto(f"{server.url}/console/persons/new")
    assert response is not None and response.status == 403
    _sign_out(page)

    sign_in(page, server, "pavlo")  # type: ignore[arg-type]
    assert page.locator("#face-queue").count() == 0
    assert page.locator("a[data-nav=persons]").count() == 0
    for path in ("/console/faces/queue", f"/console/persons/{obama}", "/console/persons/"):
        response = page.goto(f"{server.url}{path}")
        assert response is not None and response.status == 403, path
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/console/faces/queue").status_code in (303, 401)


def test_a_match_of_a_person_expired_since_can_only_be_rejected(
    page: Any,
    server: Server,
    agent: FaceAgent,
    analyser: FaceAnalyser,
    shared_data: Path,
) -> None:
    persons, candidates = _faces(server)
    lennon = persons.enrol(
        "Леннон Джон",
        "Ухвала 2/2",
        "перевірка строку",
        1_900_000_000.0,
        [PhotoInput("lennon-1.jpg", photo_bytes(shared_data, LENNON))],
        "petro",
    )
    obs = observation(analyser, shared_data, LENNON_2, camera_id="cam-3")
    agent.see(obs, _crop(shared_data, LENNON_2, obs))
    assert _candidate(server, obs).person_id == lennon.person_id
    persons.expire(lennon.person_id, "petro", "ордер скасовано")
    sign_in(page, server, "olena")  # type: ignore[arg-type]
    page.goto(f"{server.url}/console/faces/{obs.event_id}")
    page.wait_for_selector("body[data-ready=true] article[data-state=pending]")
    assert page.locator("#confirm").is_disabled()
    assert "можна лише відхилити" in page.locator("#confirm-why").inner_text()
    status, body = page.evaluate(FORCED_POST, [f"/console/faces/{obs.event_id}/confirm", ""])
    assert status == 409, body  # the service's rule; the page only mirrors it
    assert candidates.get(obs.event_id).confirmers == []
    page.keyboard.press("x")
    page.keyboard.type("строк дії ухвали завершився")
    page.click("#reject")
    page.wait_for_selector("article[data-state=rejected]")
    assert not _police_sees(server, obs.event_id)
