"""Face matching end to end: a real central (uvicorn, DuckDB, CURVE ingest), a real edge
agent (spool + publisher) sending face observations computed with the real face chain
from real photos, enrolment over REST, the two-person rule, and what police can see."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from central.config import FacesConfig
from edge_agent.face_analysis import FaceAnalyser
from edge_agent.face_models import FaceModels
from models.store import ModelStore
from shared import wire
from tests.central.face_helpers import (
    BIDEN,
    CLAPTON,
    OBAMA,
    OBAMA_2,
    observation,
    photo_bytes,
    street_photo,
    two_faces_jpeg,
)
from tests.central.police_helpers import Agent, Server, page
from tests.harness import KeyRing, central_config, make_keyring, role_token, wait_for

OBAMA_3 = "faces-dev/images/examples__knn_examples__train__obama__obama2.jpg"
OBAMA_4 = "faces-dev/images/tests__test_images__obama3.jpg"


@pytest.fixture(scope="module")
def analyser(model_store: ModelStore) -> FaceAnalyser:
    return FaceAnalyser(FaceModels.load(model_store))


@pytest.fixture
def ring(tmp_path: Path) -> KeyRing:
    return make_keyring(tmp_path / "keys", ["a1"])


@pytest.fixture
def server(tmp_path: Path, ring: KeyRing, model_store: ModelStore) -> Iterator[Server]:
    cfg = central_config(ring, tmp_path / "central")
    cfg = cfg.model_copy(update={"faces": FacesConfig(models_dir=model_store.root)})
    s = Server(cfg)
    yield s
    s.stop()


@pytest.fixture
def agent(tmp_path: Path, ring: KeyRing, server: Server) -> Iterator[Agent]:
    a = Agent(tmp_path, ring, server.central.ingest.bound_endpoint)
    yield a
    a.stop()


class Users:
    """A supervisor, two operators and a police client of one server."""

    def __init__(self, server: Server) -> None:
        c = server.central
        self.sup = server.client(role_token(c, "supervisor"))
        self.op1 = server.client(role_token(c, "operator"))
        self.op2 = server.client(role_token(c, "operator"))
        self.police = server.client(server.police_token)
        self.names = {
            "op1": self.op1.get("/api/v1/auth/me").json()["user"],
            "op2": self.op2.get("/api/v1/auth/me").json()["user"],
        }


def _enrol(client: httpx.Client, photos: list[tuple[str, bytes]], **fields: str) -> httpx.Response:
    data = {
        "name": "Barack O.",
        "legal_basis": "court order 12/345",
        "reason": "missing person",
        "expires": "2099-12-31",
        **fields,
    }
    files = [("photo", (name, body, "image/jpeg")) for name, body in photos]
    return client.post("/api/v1/persons", data=data, files=files)


def _send(agent: Agent, obs: wire.FaceObservation) -> None:
    obs = wire.FaceObservation(**{**_fields(obs), "camera_id": "cam-1"})
    agent.agent.submit([(obs, [])])


def _fields(obs: wire.FaceObservation) -> dict[str, Any]:
    return {f: getattr(obs, f) for f in obs.__struct_fields__}


def _received(server: Server, count: int) -> bool:
    return wait_for(lambda: server.central.ingest.stats.faces_received >= count, 20)


def _candidates(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    resp = client.get("/api/v1/face-candidates", params=params)
    assert resp.status_code == 200, resp.text
    body: list[dict[str, Any]] = resp.json()
    return body


def _face_alerts(police: httpx.Client) -> list[dict[str, Any]]:
    changes = page(police, limit=1000)["items"]
    return [c["alert"] for c in changes if c["alert"]["kind"] == "face"]


def _all_blobs(server: Server) -> list[bytes]:
    found: list[bytes] = []
    with server.central.db.reader() as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE data_type = 'BLOB'"
        ).fetchall()
        for table, column in columns:
            found += [r[0] for r in con.execute(f'SELECT "{column}" FROM "{table}"').fetchall()]
    return [bytes(b) for b in found if b is not None]


def test_enrolment_refuses_no_face_and_two_faces_over_rest(
    server: Server, shared_data: Path
) -> None:
    users = Users(server)
    street = street_photo(shared_data)
    resp = _enrol(users.sup, [(street.name, street.read_bytes())])
    assert resp.status_code == 400
    assert f"{street.name}: no face found" in resp.json()["error"]
    resp = _enrol(users.sup, [("pair.jpg", two_faces_jpeg(shared_data))])
    assert resp.status_code == 400
    assert "pair.jpg: 2 faces found; use a photo showing only the person" in resp.json()["error"]
    resp = _enrol(users.sup, [("o.jpg", photo_bytes(shared_data, OBAMA))], legal_basis="")
    assert resp.status_code == 400 and "legal_basis: required" in resp.json()["error"]
    resp = _enrol(users.sup, [("o.jpg", photo_bytes(shared_data, OBAMA))], expires="2001-01-01")
    assert resp.status_code == 400 and "expected a time in the future" in resp.json()["error"]
    # Operators read but do not enrol; police reach no face endpoint at all.
    assert _enrol(users.op1, [("o.jpg", photo_bytes(shared_data, OBAMA))]).status_code == 403
    for path in ("/api/v1/persons", "/api/v1/face-candidates"):
        assert users.police.get(path).status_code == 403
    assert users.op1.get("/api/v1/persons").json() == []


def test_match_two_person_rule_rejection_expiry_and_what_police_see(
    server: Server, agent: Agent, analyser: FaceAnalyser, shared_data: Path
) -> None:
    users = Users(server)
    person = _enrol_obama(server, users, shared_data)
    # Another photo of the same person -> a candidate; two other people -> nothing.
    same = observation(analyser, shared_data, OBAMA_2)
    others = [observation(analyser, shared_data, rel) for rel in (CLAPTON, BIDEN)]
    for obs in (same, *others):
        _send(agent, obs)
    assert _received(server, 3)
    assert wait_for(lambda: len(_candidates(users.op1)) == 1, 10)
    cand = _candidates(users.op1)[0]
    assert cand["candidate_id"] == same.event_id == cand["observation_id"]
    assert cand["person_id"] == person["person_id"] and cand["person_name"] == "Barack O."
    assert cand["score"] >= 0.5 and cand["watchlist_version"] == 1
    assert cand["state"] == "pending" and cand["crop_status"] in ("pending", "expired")
    # This agent has no face camera, so it holds no crop: central asks and marks it expired.
    cid = cand["candidate_id"]
    assert wait_for(
        lambda: users.op1.get(f"/api/v1/face-candidates/{cid}").json()["crop_status"] == "expired",
        10,
    )
    assert users.op1.get(f"/api/v1/face-candidates/{cid}/crop").status_code == 404
    assert cand["camera_id"] == "cam-1" and cand["agent_id"] == "a1"
    assert server.central.ingest.stats.faces_matched == 1
    alert = _two_person_rule(users, cand)
    rejected_id = _rejection(server, users, agent, analyser, shared_data)
    assert [a["alert_id"] for a in _face_alerts(users.police)] == [alert["alert_id"]]
    assert users.police.get(f"/api/v1/face-candidates/{rejected_id}").status_code == 403

    # After expiry the same person matches no more.
    expired = users.sup.post(
        f"/api/v1/persons/{person['person_id']}/expire", params={"reason": "found"}
    )
    assert expired.status_code == 200 and expired.json()["status"] == "expired"
    late = observation(analyser, shared_data, OBAMA_4)
    _send(agent, late)
    assert _received(server, 5)
    time.sleep(0.5)
    assert len(_candidates(users.op1)) == 2 and server.central.ingest.stats.faces_matched == 2

    _audit_trail(server, users, cand)
    # Nothing central stored holds a non-matching face's embedding (nor the expired one's).
    blobs = _all_blobs(server)
    for obs in (*others, late):
        assert not any(obs.embedding in b for b in blobs)
    assert any(same.embedding in b for b in blobs)  # the match's own embedding is kept
    with server.central.db.reader() as con:
        assert con.execute("SELECT count(*) FROM face_candidates").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM sightings").fetchone() == (0,)


def _enrol_obama(server: Server, users: Users, shared_data: Path) -> dict[str, Any]:
    resp = _enrol(users.sup, [("obama.jpg", photo_bytes(shared_data, OBAMA))])
    assert resp.status_code == 201, resp.text
    person: dict[str, Any] = resp.json()
    assert person["status"] == "active" and person["enrolled_by"].startswith("supervisor")
    assert person["legal_basis"] == "court order 12/345" and len(person["photos"]) == 1
    photo = users.op1.get(person["photos"][0]["url"])
    assert photo.status_code == 200 and photo.content[:3] == b"\xff\xd8\xff"
    assert server.central.faces is not None and server.central.faces.version == 1
    return person


def _two_person_rule(users: Users, cand: dict[str, Any]) -> dict[str, Any]:
    """Police see nothing until op1 and op2 confirmed; op1 twice is refused."""
    op1, op2 = users.names["op1"], users.names["op2"]
    cid = cand["candidate_id"]
    assert _face_alerts(users.police) == []
    assert users.police.get(f"/api/v1/face-candidates/{cid}").status_code == 403
    assert users.police.post(f"/api/v1/face-candidates/{cid}/confirm").status_code == 403
    first = users.op1.post(f"/api/v1/face-candidates/{cid}/confirm")
    assert first.status_code == 200 and first.json()["state"] == "pending"
    again = users.op1.post(f"/api/v1/face-candidates/{cid}/confirm")
    assert again.status_code == 409
    assert "already confirmed" in again.json()["error"]
    assert "different user" in again.json()["error"]
    assert _face_alerts(users.police) == []
    second = users.op2.post(f"/api/v1/face-candidates/{cid}/confirm").json()
    assert second["state"] == "confirmed" and second["alert_id"] is not None
    assert [(d["actor"], d["decision"]) for d in second["decisions"]] == [
        (op1, "confirm"),
        (op2, "confirm"),
    ]
    assert second["crop_note"] == "crop expired"
    (alert,) = _face_alerts(users.police)
    details = alert["details"]
    assert alert["alert_id"] == second["alert_id"] and alert["category"] == "face"
    assert details["person"] == "Barack O." and details["reason"] == "missing person"
    assert details["legal_basis"] == "court order 12/345" and details["camera_id"] == "cam-1"
    assert details["score"] == cand["score"] and details["watchlist_version"] == 1
    assert details["confirmed_by"] == [op1, op2] and details["crop"] == "crop expired"
    assert "embedding" not in str(alert)
    assert users.police.get(f"/api/v1/alerts/{alert['alert_id']}").status_code == 200
    return alert


def _rejection(
    server: Server, users: Users, agent: Agent, analyser: FaceAnalyser, shared_data: Path
) -> str:
    """A second match rejected with its reason: final and kept."""
    obs = observation(analyser, shared_data, OBAMA_3)
    _send(agent, obs)
    assert wait_for(lambda: len(_candidates(users.op1, state="pending")) == 1, 20)
    rid = obs.event_id
    no_reason = users.op1.post(f"/api/v1/face-candidates/{rid}/reject", json={})
    assert no_reason.status_code == 400 and "requires a reason" in no_reason.json()["error"]
    users.op1.post(f"/api/v1/face-candidates/{rid}/confirm")
    rejected = users.op2.post(
        f"/api/v1/face-candidates/{rid}/reject", json={"reason": "different person, beard"}
    )
    assert rejected.status_code == 200
    body = rejected.json()
    assert body["state"] == "rejected" and body["reject_reason"] == "different person, beard"
    late = users.op2.post(f"/api/v1/face-candidates/{rid}/confirm")
    assert late.status_code == 409 and "rejected already" in late.json()["error"]
    again = users.op1.get(f"/api/v1/face-candidates/{rid}").json()
    assert again["reject_reason"] == "different person, beard"
    assert users.op1.get(f"/api/v1/face-candidates/{rid}/crop").status_code == 404
    with server.central.db.reader() as con:
        row = con.execute(
            "SELECT octet_length(embedding), crop_jpeg, score FROM face_candidates "
            "WHERE candidate_id = ?",
            [rid],
        ).fetchone()
    assert row is not None and row[0] == 0 and row[1] is None and row[2] >= 0.4
    return rid


def _audit_trail(server: Server, users: Users, cand: dict[str, Any]) -> None:
    """Each use audited with the watchlist version, observation, score and confirmers."""
    op1, op2 = users.names["op1"], users.names["op2"]
    with server.central.db.reader() as con:
        rows = con.execute(
            "SELECT action, actor, reason, details FROM audit_log "
            "WHERE action LIKE 'faces.%' ORDER BY id"
        ).fetchall()
    assert [r[0] for r in rows] == [
        "faces.person.enrol",
        "faces.matched",
        "faces.candidate.confirm",
        "faces.candidate.confirm",
        "faces.matched",
        "faces.candidate.confirm",
        "faces.candidate.reject",
        "faces.person.expire",
    ]
    matched = json.loads(rows[1][3])
    assert matched["observation_id"] == cand["candidate_id"]
    assert matched["watchlist_version"] == 1 and matched["score"] == cand["score"]
    confirm = json.loads(rows[3][3])
    assert confirm["confirmers"] == [op1, op2] and confirm["watchlist_version"] == 1
    assert confirm["observation_id"] == cand["candidate_id"]
    assert confirm["score"] == cand["score"]
    assert [d["actor"] for d in confirm["decisions"]] == [op1, op2]
    reject = json.loads(rows[6][3])
    assert rows[6][2] == "different person, beard"
    assert reject["decisions"][-1]["decision"] == "reject"


def test_remove_deletes_photos_and_embeddings_but_keeps_the_record(
    server: Server, shared_data: Path
) -> None:
    users = Users(server)
    made = _enrol(
        users.sup,
        [
            ("o1.jpg", photo_bytes(shared_data, OBAMA)),
            ("o2.jpg", photo_bytes(shared_data, OBAMA_3)),
        ],
    ).json()
    assert len(made["photos"]) == 2
    resp = users.sup.delete(
        f"/api/v1/persons/{made['person_id']}", params={"reason": "order ended"}
    )
    assert resp.status_code == 200
    body = resp.json()
    assert (
        body["status"] == "removed"
        and body["photos"] == []
        and body["removed_reason"] == ("order ended")
    )
    assert users.op1.get(made["photos"][0]["url"]).status_code == 404
    with server.central.db.reader() as con:
        assert con.execute("SELECT count(*) FROM face_photos").fetchone() == (0,)
        assert con.execute("SELECT count(*) FROM face_persons").fetchone() == (1,)
    listed = users.op1.get("/api/v1/persons", params={"status": "removed"}).json()
    assert [p["person_id"] for p in listed] == [made["person_id"]]
    assert (
        users.sup.delete(
            f"/api/v1/persons/{made['person_id']}", params={"reason": "again"}
        ).status_code
        == 400
    )
