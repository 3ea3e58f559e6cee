"""The persons watchlist with real photos, the real face chain and a real DuckDB file:
enrolment, refusals, versions, gallery rebuilds, expiry by itself, removal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from central.audit import AuditLog
from central.faces.enrol import EnrolmentRefused
from central.faces.matcher import decode_embedding
from central.faces.model import PhotoInput
from central.faces.service import FaceWatchlist
from central.store.db import Database
from edge_agent.face_analysis import FaceAnalyser
from edge_agent.face_models import FaceModels
from models.store import ModelStore
from shared.errors import InvalidRequest, NotFound
from tests.central.face_helpers import (
    BIDEN,
    BIDEN_2,
    CLAPTON,
    OBAMA,
    OBAMA_2,
    observation,
    photo_bytes,
    street_photo,
    two_faces_jpeg,
)
from tests.harness import wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def analyser(model_store: ModelStore) -> FaceAnalyser:
    return FaceAnalyser(FaceModels.load(model_store))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    d = Database(tmp_path / "central.duckdb")
    yield d
    d.close()


def _watchlist(db: Database, analyser: FaceAnalyser, clock: Clock) -> FaceWatchlist:
    return FaceWatchlist(db, AuditLog(db, clock), lambda: analyser, clock=clock)


def test_enrol_match_expire_and_remove(
    db: Database, analyser: FaceAnalyser, shared_data: Path
) -> None:
    clock = Clock()
    faces = _watchlist(db, analyser, clock)
    assert faces.version == 0 and faces.gallery().rows == 0
    obama = faces.enrol(
        "Barack O.",
        "court order 12/345",
        "missing person",
        clock.now + 3600,
        [PhotoInput("obama.jpg", photo_bytes(shared_data, OBAMA))],
        "sup1",
    )
    assert faces.version == 1 and obama.enrolled_by == "sup1" and len(obama.photos) == 1
    probe = observation(analyser, shared_data, OBAMA_2)
    found = faces.match(decode_embedding(probe.embedding, probe.dim))
    assert [(c.person_id, c.watchlist_version) for c in found] == [(obama.person_id, 1)]
    assert found[0].score >= 0.5
    other = observation(analyser, shared_data, CLAPTON)
    assert faces.match(decode_embedding(other.embedding, other.dim)) == []
    jpeg = faces.photo(obama.person_id, obama.photos[0].photo_id)
    assert jpeg[:3] == b"\xff\xd8\xff"
    # A second person enrolled from two photos; the version grows with each change.
    biden = faces.enrol(
        "Joe B.",
        "warrant 7",
        "fraud",
        clock.now + 7200,
        [
            PhotoInput("b1.jpg", photo_bytes(shared_data, BIDEN)),
            PhotoInput(
                "b2.jpg",
                photo_bytes(shared_data, BIDEN_2),
            ),
        ],
        "sup1",
    )
    assert faces.version == 2 and faces.gallery().rows == 3 and len(faces.gallery()) == 2
    # Expiry by itself: past Obama's expiry he no longer matches; the version records it.
    clock.now += 3601
    assert faces.match(decode_embedding(probe.embedding, probe.dim)) == []
    assert wait_for(lambda: faces.version == 3, 10)  # rebuilt in the background
    assert len(faces.gallery()) == 1
    assert faces.match(decode_embedding(probe.embedding, probe.dim)) == []
    assert faces.person(obama.person_id).status(clock.now) == "expired"
    assert [p.person_id for p in faces.people(status="active")] == [biden.person_id]
    # Browsing by a part of the name, in any case, with or without a status.
    assert [p.person_id for p in faces.people(name="joe")] == [biden.person_id]
    both = {biden.person_id, obama.person_id}  # enrolled at the same (test) moment
    assert {p.person_id for p in faces.people(name=" O")} == both
    assert [p.person_id for p in faces.people(name="o.")] == [obama.person_id]
    assert faces.people(status="active", name="barack") == []
    # Remove: photos and embeddings deleted, tombstone kept.
    removed = faces.remove(biden.person_id, "sup2", "warrant withdrawn")
    assert removed.removed_by == "sup2" and removed.photos == [] and faces.version == 4
    assert faces.gallery().rows == 0
    with db.reader() as con:
        assert con.execute(
            "SELECT count(*) FROM face_photos WHERE person_id = ?", [biden.person_id]
        ).fetchone() == (0,)
        actions = [r[0] for r in con.execute("SELECT action FROM audit_log ORDER BY id").fetchall()]
    assert actions == [
        "faces.person.enrol",
        "faces.person.enrol",
        "faces.person.expired",
        "faces.person.remove",
    ]
    with pytest.raises(NotFound):
        faces.photo(biden.person_id, removed.person_id)
    # A new watchlist over the same file starts from the stored version and gallery.
    again = _watchlist(db, analyser, clock)
    assert again.version == 4 and again.gallery().rows == 0


def test_expire_by_hand_stops_matching_at_once(
    db: Database, analyser: FaceAnalyser, shared_data: Path
) -> None:
    clock = Clock()
    faces = _watchlist(db, analyser, clock)
    person = faces.enrol(
        "Barack O.",
        "court order 1",
        "wanted",
        clock.now + 86_400,
        [PhotoInput("o.jpg", photo_bytes(shared_data, OBAMA))],
        "sup1",
    )
    probe = observation(analyser, shared_data, OBAMA_2)
    assert faces.match(decode_embedding(probe.embedding, probe.dim))
    faces.expire(person.person_id, "sup1", "found")
    assert faces.match(decode_embedding(probe.embedding, probe.dim)) == []
    with pytest.raises(InvalidRequest, match="expired already"):
        faces.expire(person.person_id, "sup1", "again")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "", "name: required"),
        ("legal_basis", " ", "legal_basis: required"),
        ("reason", "", "reason: required"),
        ("expires_at", -1.0, "expires_at: expected a time in the future"),
    ],
)
def test_enrolment_needs_every_field(
    db: Database,
    analyser: FaceAnalyser,
    shared_data: Path,
    field: str,
    value: object,
    message: str,
) -> None:
    clock = Clock()
    faces = _watchlist(db, analyser, clock)
    args: dict[str, object] = {
        "name": "X Y",
        "legal_basis": "order 1",
        "reason": "wanted",
        "expires_at": clock.now + 10,
    }
    args[field] = value if field != "expires_at" else clock.now + float(str(value))
    photos = [PhotoInput("o.jpg", photo_bytes(shared_data, OBAMA))]
    with pytest.raises(InvalidRequest, match=message):
        faces.enrol(photos=photos, actor="sup1", **args)  # type: ignore[arg-type]
    assert faces.people() == [] and faces.version == 0


def test_refused_photos_enrol_nothing(
    db: Database, analyser: FaceAnalyser, shared_data: Path
) -> None:
    clock = Clock()
    faces = _watchlist(db, analyser, clock)
    good = PhotoInput("o.jpg", photo_bytes(shared_data, OBAMA))
    street = street_photo(shared_data)
    cases = [
        (PhotoInput(street.name, street.read_bytes()), rf"{street.name}: no face found"),
        (
            PhotoInput("pair.jpg", two_faces_jpeg(shared_data)),
            r"pair.jpg: 2 faces found; use a photo showing only the person",
        ),
        (PhotoInput("notes.jpg", b"not an image"), r"not an image format"),
    ]
    for bad, message in cases:
        with pytest.raises(EnrolmentRefused, match=message):
            faces.enrol("X Y", "order 1", "wanted", clock.now + 60, [good, bad], "sup1")
    assert faces.people() == [] and faces.version == 0
    with db.reader() as con:
        assert con.execute("SELECT count(*) FROM face_photos").fetchone() == (0,)
    assert np.asarray(faces.gallery().embeddings).shape[0] == 0


def test_bulk_csv_without_a_required_column_enrols_nothing(
    db: Database, analyser: FaceAnalyser, tmp_path: Path
) -> None:
    from central.faces.bulk import enrol_folder, parse_expiry

    faces = _watchlist(db, analyser, Clock())
    with pytest.raises(InvalidRequest, match=r"missing column\(s\) legal_basis"):
        enrol_folder(faces, tmp_path, "files,name,reason,expires\na.jpg,X,y,2099-01-01\n", "s")
    assert faces.people() == []
    assert parse_expiry("2099-01-31") == 4_073_587_199.999999
    assert parse_expiry("2099-01-31T12:00:00Z") == 4_073_544_000.0
    with pytest.raises(InvalidRequest, match="expires: expected ISO 8601"):
        parse_expiry("next week")


def test_undecided_candidates_lapse_and_lose_their_face_data(
    db: Database, analyser: FaceAnalyser, shared_data: Path
) -> None:
    from central.faces.candidates import FaceCandidates

    clock = Clock()
    faces = _watchlist(db, analyser, clock)
    faces.enrol(
        "Barack O.",
        "court order 12/345",
        "missing person",
        clock.now + 30 * 86_400,
        [PhotoInput("obama.jpg", photo_bytes(shared_data, OBAMA))],
        "sup1",
    )
    candidates = FaceCandidates(db, AuditLog(db, clock), faces, clock=clock)
    matched = [candidates.match("a1", observation(analyser, shared_data, p)) for p in (OBAMA_2,)]
    assert all(m is not None for m in matched)
    stored = db.writer.call(lambda con: candidates.write(con, [m for m in matched if m], clock.now))
    (first,) = stored
    clock.now += 3 * 86_400
    assert candidates.lapse(7) == 0  # three days: still waiting for two people
    candidates.confirm(first.candidate_id, "olena")  # one confirmation is not a decision
    clock.now += 5 * 86_400
    assert candidates.lapse(7) == 1
    lapsed = candidates.get(first.candidate_id)
    assert lapsed.state == "rejected" and "not decided within 7 days" in lapsed.reject_reason
    assert [(d.actor, d.decision) for d in lapsed.decisions] == [
        ("olena", "confirm"),
        ("system", "reject"),
    ]
    with db.reader() as con:
        row = con.execute(
            "SELECT octet_length(embedding), crop_jpeg FROM face_candidates WHERE candidate_id = ?",
            [first.candidate_id],
        ).fetchone()
    assert row == (0, None)
    assert candidates.lapse(7) == 0  # nothing left to lapse
