"""The persons watchlist: enrol, list, expire and remove wanted persons; the live gallery.

Public interface (REST, CLI and console call it; it imports no web framework)::

    watchlist = FaceWatchlist(db, audit, analyser=lambda: FaceAnalyser(models))
    person = watchlist.enrol(name, legal_basis, reason, expires_at, [PhotoInput(...)], actor)
    watchlist.people(status="active")          # list[Person], newest first
    watchlist.person(person_id)                # Person (NotFound)
    watchlist.photo(person_id, photo_id)       # JPEG bytes of an enrolled photo
    watchlist.expire(person_id, actor, reason) # matching stops now; photos kept
    watchlist.remove(person_id, actor, reason) # photos + embeddings deleted; tombstone kept
    watchlist.version                          # the watchlist version (grows on every change)
    watchlist.match(embedding)                 # list[FaceCandidate] above the threshold

Every change bumps the watchlist version and is audited in the same transaction, then the
:class:`FaceGallery` is rebuilt from the store and swapped in (readers keep the one they
hold; a search never sees half a gallery). A person stops matching at ``expires_at``
without anyone acting: :meth:`FaceWatchlist.gallery` rebuilds the gallery as soon as the
earliest expiry among its persons has passed (recording the expiry as a version change).
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import duckdb
import numpy as np
from numpy.typing import NDArray

from central.audit.log import AuditLog, canonical_details
from central.faces import store
from central.faces.enrol import Enrolled, EnrolmentRefused, decode_photo, enrol_photo
from central.faces.matcher import DEFAULT_THRESHOLD, FaceCandidate, FaceGallery
from central.faces.model import Person, PersonPhoto, PhotoInput
from central.store.db import Database
from shared.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from edge_agent.face_analysis import FaceAnalyser

log = logging.getLogger(__name__)

MAX_PHOTOS: Final = 20
MAX_PHOTO_BYTES: Final = 20 << 20
MAX_TEXT: Final = 500
PERSON_STATUSES: Final = ("active", "expired", "removed")
LAST_EXPIRY: Final = 253_402_300_799.0  # 9999-12-31T23:59:59Z


def audit_in(
    con: duckdb.DuckDBPyConnection,
    audit: AuditLog,
    now: float,
    actor: str,
    action: str,
    target: str,
    reason: str,
    details: dict[str, Any],
) -> None:
    """Append an audit row inside the writer's transaction (commits with the change)."""
    at_us = round(now * 1_000_000)
    audit.append(con, at_us, actor, action, target, reason, canonical_details(details))


def _text(field: str, value: str, required: bool = True) -> str:
    text = (value or "").strip()
    if required and len(text) < 2:
        raise InvalidRequest(f"{field}: required (at least 2 characters), got {value!r}")
    if len(text) > MAX_TEXT:
        raise InvalidRequest(f"{field}: expected at most {MAX_TEXT} characters, got {len(text)}")
    return text


class FaceWatchlist:
    """Wanted persons and the gallery their photos are matched in.

    Args:
        db: Central's database (changes go through its writer).
        audit: The audit log (rows are appended in the change's own transaction).
        analyser: Builds the face chain on first enrolment (loading models takes seconds;
            central without enrolments never loads them).
        threshold: Minimum cosine score of a match (``faces.threshold``).
        top_k: Persons a search returns at most (``faces.top_k``).
        clock: UNIX time source (tests inject one).
    """

    def __init__(
        self,
        db: Database,
        audit: AuditLog,
        analyser: Callable[[], FaceAnalyser] | None = None,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        top_k: int = 5,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._audit = audit
        self._make_analyser = analyser
        self._analyser: FaceAnalyser | None = None
        self._analyser_lock = threading.Lock()  # one enrolment runs the models at a time
        self.threshold = threshold
        self.top_k = top_k
        self._clock = clock
        self._swap = threading.Lock()
        self._gallery = FaceGallery(np.zeros((0, 256), np.float32), [], 0)
        self._expiries: dict[str, float] = {}
        self._next_expiry: float | None = None
        self._refreshing: threading.Thread | None = None
        self.rebuild()

    # -- the gallery ---------------------------------------------------------------------

    @property
    def version(self) -> int:
        """The version of the gallery in use (the watchlist version it was built from)."""
        return self._gallery.version

    def rebuild(self) -> FaceGallery:
        """Build the gallery from the store and swap it in; returns it.

        Readers keep the gallery they hold; the swap is one assignment. At 100,000 photos a
        build takes 1-2 s (PCA of the prefilter), so bulk enrolment builds once at its end.
        """
        with self._swap:
            now = self._clock()
            with self._db.reader() as con:
                matrix, owners, expiries = store.gallery_rows(con, now)
                current = store.version(con)
            gallery = FaceGallery(matrix, owners, current)
            self._gallery, self._expiries = gallery, expiries
            self._next_expiry = min(expiries.values()) if expiries else None
        log.info(
            "face gallery v%d: %d persons, %d photos", gallery.version, len(gallery), gallery.rows
        )
        return gallery

    def gallery(self) -> FaceGallery:
        """The gallery in use (it may still hold a person who expired a moment ago:
        :meth:`match` leaves them out, and a rebuild without them is under way)."""
        return self._gallery

    def match(self, embedding: NDArray[np.floating]) -> list[FaceCandidate]:
        """The enrolled persons ``embedding`` resembles at or above the threshold.

        A person whose expiry has passed is never returned, from that very moment; the
        first search after an expiry starts a background rebuild without them (recording
        the expiry as a version change), so ingest never waits for a rebuild.
        """
        gallery, expiries = self._gallery, self._expiries
        found = gallery.search(embedding, self.top_k, self.threshold)
        now = self._clock()
        due = self._next_expiry
        if due is not None and now >= due:
            self._refresh_soon()
            found = [c for c in found if expiries.get(c.person_id, math.inf) > now]
        return found

    def _refresh_soon(self) -> None:
        with self._swap:
            if self._refreshing is not None and self._refreshing.is_alive():
                return
            self._refreshing = threading.Thread(
                target=self.refresh_expired, name="face-gallery", daemon=True
            )
            self._refreshing.start()

    def refresh_expired(self) -> FaceGallery:
        """Record the expiries that have passed (version bump, audit) and rebuild."""
        try:
            self._record_expiries()
        except Exception:  # the rebuild still happens; the next expiry check retries
            log.exception("recording face watchlist expiries failed")
        return self.rebuild()

    def _record_expiries(self) -> None:
        now = self._clock()

        def job(con: duckdb.DuckDBPyConnection) -> None:
            expired = store.newly_expired(con, now)
            if expired:
                version = store.bump_version(con)
                audit_in(
                    con,
                    self._audit,
                    now,
                    "system",
                    "faces.person.expired",
                    "faces",
                    "expiry reached",
                    {"persons": expired, "watchlist_version": version},
                )

        self._db.writer.call(job)

    # -- persons -------------------------------------------------------------------------

    def enrol(
        self,
        name: str,
        legal_basis: str,
        reason: str,
        expires_at: float,
        photos: Sequence[PhotoInput],
        actor: str,
        *,
        rebuild: bool = True,
    ) -> Person:
        """Enrol a person from one or more photos (each must show exactly one usable face).

        ``rebuild=False`` leaves the gallery as it is (bulk enrolment rebuilds once, at its
        end, with :meth:`rebuild`).

        Raises:
            InvalidRequest: a field missing or too long, no photo, too many, an expiry
                not in the future.
            EnrolmentRefused: a photo shows no usable face or several (the message names
                the photo and says why); nothing is enrolled then.
        """
        name = _text("name", name)
        legal_basis = _text("legal_basis", legal_basis)
        reason = _text("reason", reason)
        now = self._clock()
        if not now < expires_at < LAST_EXPIRY:
            raise InvalidRequest(
                f"expires_at: expected a time in the future (before the year 10000), got "
                f"{expires_at:.0f} (now {now:.0f})"
            )
        if not photos:
            raise InvalidRequest("photos: expected at least one photo of the person")
        if len(photos) > MAX_PHOTOS:
            raise InvalidRequest(f"photos: expected at most {MAX_PHOTOS}, got {len(photos)}")
        embedded = [self._embed(p) for p in photos]
        person_id = str(uuid.uuid4())
        person = Person(
            person_id=person_id,
            name=name,
            legal_basis=legal_basis,
            reason=reason,
            enrolled_by=actor,
            enrolled_at=now,
            expires_at=float(expires_at),
            photos=[
                PersonPhoto(str(uuid.uuid4()), person_id, p.name, e.quality, now)
                for p, (e, _) in zip(photos, embedded, strict=True)
            ],
        )

        def job(con: duckdb.DuckDBPyConnection) -> int:
            store.insert_person(con, person)
            for photo, (enrolled, jpeg) in zip(person.photos, embedded, strict=True):
                store.insert_photo(con, photo, jpeg, enrolled.embedding, enrolled.box)
            version = store.bump_version(con)
            audit_in(
                con,
                self._audit,
                now,
                actor,
                "faces.person.enrol",
                f"person:{person.person_id}",
                reason,
                {
                    "name": name,
                    "legal_basis": legal_basis,
                    "expires_at": expires_at,
                    "photos": len(photos),
                    "watchlist_version": version,
                },
            )
            return version

        self._db.writer.call(job)
        if rebuild:
            self.rebuild()
        return person

    def _embed(self, photo: PhotoInput) -> tuple[Enrolled, bytes]:
        """The photo's embedding and the JPEG kept of it (re-encoded: no metadata kept)."""
        import cv2

        if len(photo.data) > MAX_PHOTO_BYTES:
            raise EnrolmentRefused(
                f"{photo.name}: {len(photo.data)} bytes, at most {MAX_PHOTO_BYTES} accepted"
            )
        image = decode_photo(photo.data)
        with self._analyser_lock:
            if self._analyser is None:
                if self._make_analyser is None:
                    raise InvalidRequest("face enrolment is not available: no face models")
                self._analyser = self._make_analyser()
            enrolled = enrol_photo(self._analyser, image, photo.name or "photo")
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise EnrolmentRefused(f"{photo.name}: the photo cannot be stored as JPEG")
        return enrolled, jpeg.tobytes()

    def people(
        self, status: str | None = None, limit: int = 100, offset: int = 0, name: str = ""
    ) -> list[Person]:
        """Persons, newest first; ``status`` active, expired or removed (None: all);
        ``name`` a part of the name, in any case (empty: all).

        Raises:
            InvalidRequest: unknown status or bad paging.
        """
        if status is not None and status not in PERSON_STATUSES:
            raise InvalidRequest(
                f"status: expected one of {', '.join(PERSON_STATUSES)}, got {status!r}"
            )
        if not 1 <= limit <= 1000 or offset < 0:
            raise InvalidRequest(f"limit 1..1000 and offset >= 0 expected, got {limit}, {offset}")
        with self._db.reader() as con:
            return store.list_persons(con, self._clock(), status, limit, offset, name.strip())

    def person(self, person_id: str) -> Person:
        """One person with their photos.

        Raises:
            NotFound: no such person.
        """
        with self._db.reader() as con:
            found = store.get_person(con, person_id)
        if found is None:
            raise NotFound(f"no person with id {person_id!r}")
        return found

    def photo(self, person_id: str, photo_id: str) -> bytes:
        """The JPEG of an enrolled photo (shown beside the edge crop of a candidate).

        Raises:
            NotFound: no such photo (or the person was removed).
        """
        with self._db.reader() as con:
            jpeg = store.photo_jpeg(con, person_id, photo_id)
        if jpeg is None:
            raise NotFound(f"person {person_id!r} has no photo {photo_id!r}")
        return jpeg

    def expire(self, person_id: str, actor: str, reason: str) -> Person:
        """End matching of a person now (their photos are kept until removed).

        Raises:
            NotFound: no such person.
            InvalidRequest: no reason, or the person is removed or already expired.
        """
        why = _text("reason", reason)
        now = self._clock()

        def job(con: duckdb.DuckDBPyConnection) -> None:
            person = self._live(con, person_id, now)
            store.set_expiry(con, person_id, now)
            version = store.bump_version(con)
            audit_in(
                con,
                self._audit,
                now,
                actor,
                "faces.person.expire",
                f"person:{person_id}",
                why,
                {"name": person.name, "watchlist_version": version},
            )

        self._db.writer.call(job)
        self.rebuild()
        return self.person(person_id)

    def remove(self, person_id: str, actor: str, reason: str) -> Person:
        """Delete a person's photos and embeddings; their row stays as a tombstone for the
        audit trail (and for candidates already recorded).

        Raises:
            NotFound: no such person.
            InvalidRequest: no reason, or already removed.
        """
        why = _text("reason", reason)
        now = self._clock()

        def job(con: duckdb.DuckDBPyConnection) -> None:
            person = store.get_person(con, person_id)
            if person is None:
                raise NotFound(f"no person with id {person_id!r}")
            if person.removed_at is not None:
                raise InvalidRequest(f"person {person_id!r} was already removed")
            deleted = store.remove_person(con, person_id, now, actor, why)
            version = store.bump_version(con)
            audit_in(
                con,
                self._audit,
                now,
                actor,
                "faces.person.remove",
                f"person:{person_id}",
                why,
                {"name": person.name, "photos_deleted": deleted, "watchlist_version": version},
            )

        self._db.writer.call(job)
        self.rebuild()
        return self.person(person_id)

    @staticmethod
    def _live(con: duckdb.DuckDBPyConnection, person_id: str, now: float) -> Person:
        person = store.get_person(con, person_id)
        if person is None:
            raise NotFound(f"no person with id {person_id!r}")
        status = person.status(now)
        if status != "active":
            raise InvalidRequest(f"person {person_id!r} is {status} already")
        return person
