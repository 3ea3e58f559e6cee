"""The SQL of the persons watchlist and face candidates (tables of migration 8).

Plain functions of a DuckDB connection: the writer's (inside its transaction) for changes,
a reader cursor for reads. Embeddings are stored as little-endian bytes: float32 for
enrolled photos (one contiguous read rebuilds the gallery), the edge's float16 as received
for a candidate. No embedding of a face that matched no one is ever written here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb
import numpy as np
from numpy.typing import NDArray

from central.faces.model import (
    Candidate,
    CropStatus,
    Decision,
    MatchedFace,
    Person,
    PersonPhoto,
)

_PERSON = (
    "person_id, name, legal_basis, reason, enrolled_by, epoch(enrolled_at), "
    "epoch(expires_at), epoch(removed_at), removed_by, removed_reason"
)
_CANDIDATE = (
    "c.candidate_id, c.agent_id, c.camera_id, epoch(c.captured_at), epoch(c.received_at), "
    "c.box, c.quality, c.person_id, coalesce(p.name, ''), c.score, c.watchlist_version, "
    "c.state, c.crop_status, c.alert_id, c.reject_reason, epoch(c.decided_at)"
)


def version(con: duckdb.DuckDBPyConnection) -> int:
    """The watchlist version (grows with every change of persons or photos)."""
    row = con.execute("SELECT version FROM face_watchlist WHERE id = 1").fetchone()
    return int(row[0]) if row else 0


def bump_version(con: duckdb.DuckDBPyConnection) -> int:
    """Advance the watchlist version by one; returns the new version (writer only)."""
    con.execute("UPDATE face_watchlist SET version = version + 1 WHERE id = 1")
    return version(con)


# -- persons -------------------------------------------------------------------------------


def insert_person(con: duckdb.DuckDBPyConnection, person: Person) -> None:
    """Add a person (their photos separately, :func:`insert_photo`)."""
    con.execute(
        "INSERT INTO face_persons (person_id, name, legal_basis, reason, enrolled_by, "
        "enrolled_at, expires_at) VALUES (?, ?, ?, ?, ?, to_timestamp(?), to_timestamp(?))",
        [
            person.person_id,
            person.name,
            person.legal_basis,
            person.reason,
            person.enrolled_by,
            person.enrolled_at,
            person.expires_at,
        ],
    )


def insert_photo(
    con: duckdb.DuckDBPyConnection,
    photo: PersonPhoto,
    jpeg: bytes,
    embedding: NDArray[np.float32],
    box: tuple[float, float, float, float],
) -> None:
    """Add one enrolled photo with its JPEG and float32 embedding."""
    con.execute(
        "INSERT INTO face_photos VALUES (?, ?, ?, ?, ?, ?, ?, to_timestamp(?))",
        [
            photo.photo_id,
            photo.person_id,
            photo.file_name,
            jpeg,
            np.asarray(embedding, dtype="<f4").tobytes(),
            photo.quality,
            list(box),
            photo.added_at,
        ],
    )


def _person(row: tuple[Any, ...], photos: list[PersonPhoto]) -> Person:
    return Person(
        person_id=row[0],
        name=row[1],
        legal_basis=row[2],
        reason=row[3],
        enrolled_by=row[4],
        enrolled_at=float(row[5]),
        expires_at=float(row[6]),
        removed_at=float(row[7]) if row[7] is not None else None,
        removed_by=row[8],
        removed_reason=row[9],
        photos=photos,
    )


def photos(con: duckdb.DuckDBPyConnection, person_ids: list[str]) -> dict[str, list[PersonPhoto]]:
    """The photos of each person, oldest first."""
    if not person_ids:
        return {}
    rows = con.execute(
        "SELECT photo_id, person_id, file_name, quality, epoch(added_at) FROM face_photos "
        "WHERE list_contains(?, person_id) ORDER BY added_at, photo_id",
        [person_ids],
    ).fetchall()
    out: dict[str, list[PersonPhoto]] = {}
    for r in rows:
        out.setdefault(r[1], []).append(PersonPhoto(r[0], r[1], r[2], float(r[3]), float(r[4])))
    return out


def get_person(con: duckdb.DuckDBPyConnection, person_id: str) -> Person | None:
    """One person with their photos, or None."""
    row = con.execute(
        f"SELECT {_PERSON} FROM face_persons WHERE person_id = ?", [person_id]
    ).fetchone()
    if row is None:
        return None
    return _person(row, photos(con, [person_id]).get(person_id, []))


def list_persons(
    con: duckdb.DuckDBPyConnection,
    now: float,
    status: str | None,
    limit: int,
    offset: int,
    name: str = "",
) -> list[Person]:
    """Persons by enrolment time, newest first; ``status`` active, expired or removed;
    ``name`` a part of the name in any case (empty: every name)."""
    where = {
        None: "true",
        "active": "removed_at IS NULL AND expires_at > to_timestamp(?)",
        "expired": "removed_at IS NULL AND expires_at <= to_timestamp(?)",
        "removed": "removed_at IS NOT NULL",
    }[status]
    params: list[Any] = [now] if status in ("active", "expired") else []
    if name:
        where += " AND contains(lower(name), lower(?))"
        params.append(name)
    rows = con.execute(
        f"SELECT {_PERSON} FROM face_persons WHERE {where} "
        "ORDER BY enrolled_at DESC, person_id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ).fetchall()
    found = photos(con, [r[0] for r in rows])
    return [_person(r, found.get(r[0], [])) for r in rows]


def set_expiry(con: duckdb.DuckDBPyConnection, person_id: str, expires_at: float) -> None:
    """Move a person's expiry (to now: matching stops at once)."""
    con.execute(
        "UPDATE face_persons SET expires_at = to_timestamp(?) WHERE person_id = ?",
        [expires_at, person_id],
    )


def remove_person(
    con: duckdb.DuckDBPyConnection, person_id: str, at: float, actor: str, reason: str
) -> int:
    """Delete a person's photos and embeddings; keep the row as a tombstone. Returns the
    number of photos deleted."""
    row = con.execute(
        "SELECT count(*) FROM face_photos WHERE person_id = ?", [person_id]
    ).fetchone()
    con.execute("DELETE FROM face_photos WHERE person_id = ?", [person_id])
    con.execute(
        "UPDATE face_persons SET removed_at = to_timestamp(?), removed_by = ?, "
        "removed_reason = ? WHERE person_id = ?",
        [at, actor, reason, person_id],
    )
    return int(row[0]) if row else 0


def newly_expired(con: duckdb.DuckDBPyConnection, now: float) -> list[str]:
    """Mark persons whose expiry has passed as recorded; returns their ids (writer only)."""
    rows = con.execute(
        "UPDATE face_persons SET expiry_recorded = true WHERE NOT expiry_recorded "
        "AND removed_at IS NULL AND expires_at <= to_timestamp(?) RETURNING person_id",
        [now],
    ).fetchall()
    return sorted(r[0] for r in rows)


def photo_jpeg(con: duckdb.DuckDBPyConnection, person_id: str, photo_id: str) -> bytes | None:
    """An enrolled photo's JPEG."""
    row = con.execute(
        "SELECT jpeg FROM face_photos WHERE person_id = ? AND photo_id = ?", [person_id, photo_id]
    ).fetchone()
    return bytes(row[0]) if row else None


def gallery_rows(
    con: duckdb.DuckDBPyConnection, now: float
) -> tuple[NDArray[np.float32], list[str], dict[str, float]]:
    """The embeddings of active persons' photos, their owners, and each of those persons'
    expiry (after which the gallery must no longer return them)."""
    rows = con.execute(
        "SELECT f.person_id, f.embedding, epoch(p.expires_at) FROM face_photos f "
        "JOIN face_persons p USING (person_id) WHERE p.removed_at IS NULL "
        "AND p.expires_at > to_timestamp(?) ORDER BY f.person_id, f.photo_id",
        [now],
    ).fetchall()
    if not rows:
        return np.zeros((0, 256), np.float32), [], {}
    matrix = np.frombuffer(b"".join(bytes(r[1]) for r in rows), dtype="<f4").astype(np.float32)
    matrix = matrix.reshape(len(rows), -1)
    return matrix, [r[0] for r in rows], {r[0]: float(r[2]) for r in rows}


# -- candidates ----------------------------------------------------------------------------


def insert_candidates(
    con: duckdb.DuckDBPyConnection, faces: Iterable[MatchedFace], received_at: float
) -> list[str]:
    """Store matched faces as pending candidates; returns the ids that were new (an
    observation delivered again is not stored twice)."""
    faces = list(faces)
    if not faces:
        return []
    ids = [f.candidate_id for f in faces]
    known = {
        r[0]
        for r in con.execute(
            "SELECT candidate_id FROM face_candidates WHERE list_contains(?, candidate_id)",
            [ids],
        ).fetchall()
    }
    new: list[str] = []
    for f in faces:
        if f.candidate_id in known:
            continue
        known.add(f.candidate_id)
        con.execute(
            "INSERT INTO face_candidates (candidate_id, agent_id, camera_id, captured_at, "
            "received_at, box, quality, person_id, score, watchlist_version, embedding, model, "
            "state, crop_status) VALUES (?, ?, ?, to_timestamp(?), to_timestamp(?), ?, ?, ?, "
            "?, ?, ?, ?, 'pending', 'pending')",
            [
                f.candidate_id,
                f.agent_id,
                f.camera_id,
                f.captured_at,
                received_at,
                list(f.box),
                f.quality,
                f.person_id,
                f.score,
                f.watchlist_version,
                f.embedding,
                f.model,
            ],
        )
        new.append(f.candidate_id)
    return new


def _candidate(row: tuple[Any, ...], decisions: list[Decision]) -> Candidate:
    box = [float(v) for v in row[5]]
    return Candidate(
        candidate_id=row[0],
        agent_id=row[1],
        camera_id=row[2],
        captured_at=float(row[3]),
        received_at=float(row[4]),
        box=(box[0], box[1], box[2], box[3]),
        quality=float(row[6]),
        person_id=row[7],
        person_name=row[8],
        score=round(float(row[9]), 4),
        watchlist_version=int(row[10]),
        state=row[11],
        crop_status=row[12],
        alert_id=int(row[13]) if row[13] is not None else None,
        reject_reason=row[14],
        decided_at=float(row[15]) if row[15] is not None else None,
        decisions=decisions,
    )


def _decisions(con: duckdb.DuckDBPyConnection, ids: list[str]) -> dict[str, list[Decision]]:
    if not ids:
        return {}
    rows = con.execute(
        'SELECT candidate_id, actor, decision, reason, epoch("at") FROM face_decisions '
        'WHERE list_contains(?, candidate_id) ORDER BY "at"',
        [ids],
    ).fetchall()
    out: dict[str, list[Decision]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(Decision(r[1], r[2], r[3], float(r[4])))
    return out


def get_candidate(con: duckdb.DuckDBPyConnection, candidate_id: str) -> Candidate | None:
    """One candidate with its decisions, or None."""
    row = con.execute(
        f"SELECT {_CANDIDATE} FROM face_candidates c LEFT JOIN face_persons p "
        "USING (person_id) WHERE c.candidate_id = ?",
        [candidate_id],
    ).fetchone()
    if row is None:
        return None
    return _candidate(row, _decisions(con, [candidate_id]).get(candidate_id, []))


def list_candidates(
    con: duckdb.DuckDBPyConnection, state: str | None, limit: int, offset: int
) -> list[Candidate]:
    """Candidates, newest first, optionally of one state."""
    rows = con.execute(
        f"SELECT {_CANDIDATE} FROM face_candidates c LEFT JOIN face_persons p "
        "USING (person_id) WHERE (? IS NULL OR c.state = ?) "
        "ORDER BY c.received_at DESC, c.candidate_id LIMIT ? OFFSET ?",
        [state, state, limit, offset],
    ).fetchall()
    found = _decisions(con, [r[0] for r in rows])
    return [_candidate(r, found.get(r[0], [])) for r in rows]


def undecided_before(con: duckdb.DuckDBPyConnection, before: float) -> list[str]:
    """Ids of the pending candidates received before ``before`` (UNIX seconds), oldest first."""
    rows = con.execute(
        "SELECT candidate_id FROM face_candidates WHERE state = 'pending' "
        "AND received_at < to_timestamp(?) ORDER BY received_at, candidate_id",
        [before],
    ).fetchall()
    return [str(r[0]) for r in rows]


def add_decision(con: duckdb.DuckDBPyConnection, candidate_id: str, decision: Decision) -> None:
    """Record one user's decision."""
    con.execute(
        "INSERT INTO face_decisions VALUES (?, ?, ?, ?, to_timestamp(?))",
        [candidate_id, decision.actor, decision.decision, decision.reason, decision.at],
    )


def decide(
    con: duckdb.DuckDBPyConnection,
    candidate_id: str,
    state: str,
    at: float,
    reason: str = "",
    alert_id: int | None = None,
) -> None:
    """Close a candidate: confirmed (with its alert) or rejected (with the reason).

    A rejected candidate was judged not to be the wanted person: its embedding and crop are
    deleted with the decision (central keeps no face data of a non-match); the row keeps
    the score, person, watchlist version, decisions and reason for the audit trail.
    """
    con.execute(
        "UPDATE face_candidates SET state = ?, decided_at = to_timestamp(?), "
        "reject_reason = ?, alert_id = ? WHERE candidate_id = ?",
        [state, at, reason, alert_id, candidate_id],
    )
    if state == "rejected":
        con.execute(
            "UPDATE face_candidates SET embedding = ''::BLOB, crop_jpeg = NULL "
            "WHERE candidate_id = ?",
            [candidate_id],
        )


def set_crop(
    con: duckdb.DuckDBPyConnection,
    candidate_id: str,
    status: CropStatus,
    jpeg: bytes | None,
    at: float,
) -> None:
    """Store what the agent answered to the crop request of a candidate (the image of
    one rejected meanwhile is not kept)."""
    con.execute(
        "UPDATE face_candidates SET crop_status = ?, crop_at = to_timestamp(?), "
        "crop_jpeg = CASE WHEN state = 'rejected' THEN NULL ELSE ? END WHERE candidate_id = ?",
        [status, at, jpeg, candidate_id],
    )


def crops_to_fetch(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(agent, candidate) of pending candidates whose crop was not asked for yet."""
    rows = con.execute(
        "SELECT agent_id, candidate_id FROM face_candidates "
        "WHERE state = 'pending' AND crop_status = 'pending' ORDER BY received_at"
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def crop_jpeg(con: duckdb.DuckDBPyConnection, candidate_id: str) -> bytes | None:
    """A candidate's edge crop, when fetched."""
    row = con.execute(
        "SELECT crop_jpeg FROM face_candidates WHERE candidate_id = ?", [candidate_id]
    ).fetchone()
    return bytes(row[0]) if row and row[0] is not None else None
