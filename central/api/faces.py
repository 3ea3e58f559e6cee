"""The persons watchlist and face candidates over HTTP.

Persons (``/api/v1/persons``): supervisors and admins enrol, expire and remove
(``faces:write``); operators, supervisors and admins read (``faces:read``; operators
confirm candidates and need the enrolled photo beside the edge crop). Face candidates
(``/api/v1/face-candidates``): operators, supervisors and admins read and decide
(``faces:decide``). Police clients reach neither: they see a face match only as a ``face``
alert in ``/api/v1/alerts``, once two different users have confirmed it.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Annotated, Any, Final

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter, PathParameter, QueryParameter

from central.accounts import Principal, Role
from central.api.auth import requires
from central.api.dto import Time, to_read
from central.faces.bulk import enrol_uploaded, parse_expiry
from central.faces.candidates import FaceCandidates
from central.faces.model import (
    CONFIRMATIONS_NEEDED,
    BulkReport,
    Candidate,
    Person,
    PhotoInput,
)
from central.faces.service import MAX_PHOTO_BYTES, MAX_PHOTOS, FaceWatchlist
from shared.errors import InvalidRequest, NotFound

READ: Final = requires(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, scopes=["faces:read"])
WRITE: Final = requires(Role.SUPERVISOR, Role.ADMIN, scopes=["faces:write"])
DECIDE: Final = requires(Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, scopes=["faces:decide"])
MAX_BODY: Final = MAX_PHOTOS * MAX_PHOTO_BYTES
MAX_BULK_BODY: Final = 512 << 20

PersonId = Annotated[str, PathParameter(description="The person's id.")]
CandidateId = Annotated[str, PathParameter(description="The candidate's id (the observation id).")]
Reason = Annotated[str, Parameter(description="Why (required; written to the audit log).")]


class PhotoRead(msgspec.Struct):
    """An enrolled photo; its JPEG at ``url``."""

    photo_id: str
    file_name: str
    quality: float
    added_at: Time
    url: str = ""


class PersonRead(msgspec.Struct):
    """A person on the face watchlist."""

    person_id: str
    name: str
    legal_basis: str
    reason: str
    enrolled_by: str
    enrolled_at: Time
    expires_at: Time
    status: str
    removed_at: Time | None
    removed_by: str
    removed_reason: str
    photos: list[PhotoRead]


class DecisionRead(msgspec.Struct):
    """One user's decision on a candidate."""

    actor: str
    decision: str
    reason: str
    at: Time


class CandidateRead(msgspec.Struct):
    """A face match waiting for (or past) the two-person rule.

    ``crop_status``: pending (not fetched yet), ok (at ``crop_url``), expired (the edge
    no longer held it; ``crop_note`` says "crop expired") or unreachable.
    """

    candidate_id: str
    observation_id: str
    agent_id: str
    camera_id: str
    captured_at: Time
    received_at: Time
    box: list[float]
    quality: float
    person_id: str
    person_name: str
    score: float
    watchlist_version: int
    state: str
    crop_status: str
    crop_note: str
    crop_url: str | None
    confirmations_needed: int
    decisions: list[DecisionRead]
    alert_id: int | None
    reject_reason: str
    decided_at: Time | None


class ProblemRead(msgspec.Struct):
    """A bulk row that was not enrolled: its CSV line and why."""

    line: int
    reason: str


class BulkRead(msgspec.Struct):
    """What a bulk enrolment did."""

    rows: int
    enrolled: list[PersonRead]
    problems: list[ProblemRead]


class RejectRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A rejection; the reason is required and kept."""

    reason: str = ""


def person_read(person: Person, now: float) -> PersonRead:
    """A person for the API, with photo URLs."""
    data = msgspec.structs.asdict(to_read(person, _PersonIn))
    photos = [
        msgspec.structs.replace(p, url=f"/api/v1/persons/{person.person_id}/photos/{p.photo_id}")
        for p in data.pop("photos")
    ]
    return PersonRead(**data, status=person.status(now), photos=photos)


class _PersonIn(msgspec.Struct):
    person_id: str
    name: str
    legal_basis: str
    reason: str
    enrolled_by: str
    enrolled_at: Time
    expires_at: Time
    removed_at: Time | None
    removed_by: str
    removed_reason: str
    photos: list[PhotoRead]


def candidate_read(cand: Candidate) -> CandidateRead:
    """A candidate for the API (crop note and URLs added)."""
    data = msgspec.to_builtins(cand)
    data["observation_id"] = cand.candidate_id
    data["box"] = list(cand.box)
    data["crop_note"] = {
        "expired": "crop expired",
        "unreachable": "agent unreachable",
        "pending": "crop not fetched yet",
    }.get(cand.crop_status, "")
    ok = cand.crop_status == "ok"
    data["crop_url"] = f"/api/v1/face-candidates/{cand.candidate_id}/crop" if ok else None
    data["confirmations_needed"] = CONFIRMATIONS_NEEDED
    return to_read(data, CandidateRead)


def bulk_read(report: BulkReport, now: float) -> BulkRead:
    """A bulk report for the API."""
    return BulkRead(
        rows=report.rows,
        enrolled=[person_read(p, now) for p in report.enrolled],
        problems=[ProblemRead(p.line, p.reason) for p in report.problems],
    )


async def _photos(request: Request[Any, Any, Any]) -> tuple[dict[str, str], list[PhotoInput]]:
    """The text fields and the ``photo`` files of a multipart request."""
    form = await request.form()
    fields = {k: str(v) for k, v in form.items() if not isinstance(v, UploadFile)}
    photos = [
        PhotoInput(f.filename or f"photo-{i + 1}", await f.read())
        for i, f in enumerate(form.getall("photo", []))
        if isinstance(f, UploadFile)
    ]
    return fields, photos


class PersonController(Controller):
    """Wanted persons: enrol (multipart), list, one, photos, expire, remove."""

    path = "/api/v1/persons"
    tags = ("faces",)

    @post(
        "/",
        guards=[WRITE],
        status_code=201,
        request_max_body_size=MAX_BODY,
        summary="Enrol a person from one or more photos",
    )
    async def enrol(
        self,
        request: Request[Any, Any, Any],
        faces: NamedDependency[FaceWatchlist],
        principal: NamedDependency[Principal],
    ) -> PersonRead:
        """``multipart/form-data``: fields ``name``, ``legal_basis``, ``reason``, ``expires``
        (ISO 8601, a date meaning its end, or UNIX seconds) and one or more ``photo`` files.

        A photo with no usable face, or several faces, is refused (400) with the reason;
        nothing is enrolled then.
        """
        fields, photos = await _photos(request)
        expires = parse_expiry(fields.get("expires", ""))
        run = partial(
            faces.enrol,
            fields.get("name", ""),
            fields.get("legal_basis", ""),
            fields.get("reason", ""),
            expires,
            photos,
            principal.user,
        )
        person = await anyio.to_thread.run_sync(run)
        return person_read(person, time.time())

    @post(
        "/bulk",
        guards=[WRITE],
        status_code=200,
        request_max_body_size=MAX_BULK_BODY,
        summary="Enrol many persons: a CSV plus their photos",
    )
    async def bulk(
        self,
        request: Request[Any, Any, Any],
        faces: NamedDependency[FaceWatchlist],
        principal: NamedDependency[Principal],
    ) -> BulkRead:
        """``multipart/form-data``: a ``csv`` file (columns ``files``, ``name``,
        ``legal_basis``, ``reason``, ``expires``; see docs/faces.md) and the ``photo``
        files it names. Rows that fail are listed with their line and reason; the others
        are enrolled."""
        form = await request.form()
        sheet = form.get("csv")
        if not isinstance(sheet, UploadFile):
            raise InvalidRequest("csv: expected the CSV file as the 'csv' field")
        text = (await sheet.read()).decode("utf-8-sig", errors="replace")
        photos = {
            f.filename: await f.read()
            for f in form.getall("photo", [])
            if isinstance(f, UploadFile) and f.filename
        }
        run = partial(enrol_uploaded, faces, text, photos, principal.user)
        return bulk_read(await anyio.to_thread.run_sync(run), time.time())

    @get("/", guards=[READ], sync_to_thread=True, summary="Persons on the face watchlist")
    def people(
        self,
        faces: NamedDependency[FaceWatchlist],
        status_: Annotated[
            str | None,
            QueryParameter(name="status", description="active, expired or removed (default: all)."),
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000, description="Page size.")] = 100,
        offset: Annotated[int, Parameter(ge=0, description="Rows to skip.")] = 0,
        name: Annotated[
            str, Parameter(max_length=200, description="Part of the name, any case.")
        ] = "",
    ) -> list[PersonRead]:
        """Newest enrolment first."""
        now = time.time()
        return [person_read(p, now) for p in faces.people(status_, limit, offset, name)]

    @get("/{person_id:str}", guards=[READ], sync_to_thread=True, summary="One person")
    def person(self, faces: NamedDependency[FaceWatchlist], person_id: PersonId) -> PersonRead:
        """A person with their photos."""
        return person_read(faces.person(person_id), time.time())

    @get(
        "/{person_id:str}/photos/{photo_id:str}",
        guards=[READ],
        sync_to_thread=True,
        summary="An enrolled photo (JPEG)",
        media_type="image/jpeg",
    )
    def photo(
        self,
        faces: NamedDependency[FaceWatchlist],
        person_id: PersonId,
        photo_id: FromPath[str],
    ) -> Response[bytes]:
        """The enrolled photo as stored (re-encoded JPEG, no metadata)."""
        return Response(faces.photo(person_id, photo_id), media_type="image/jpeg")

    @post(
        "/{person_id:str}/expire",
        guards=[WRITE],
        sync_to_thread=True,
        status_code=200,
        summary="Stop matching a person now",
    )
    def expire(
        self,
        faces: NamedDependency[FaceWatchlist],
        principal: NamedDependency[Principal],
        person_id: PersonId,
        reason: Reason = "",
    ) -> PersonRead:
        """The person stops matching at once; their photos stay until removed."""
        return person_read(faces.expire(person_id, principal.user, reason), time.time())

    @delete(
        "/{person_id:str}",
        guards=[WRITE],
        sync_to_thread=True,
        status_code=200,
        summary="Remove a person (photos and embeddings deleted)",
    )
    def remove(
        self,
        faces: NamedDependency[FaceWatchlist],
        principal: NamedDependency[Principal],
        person_id: PersonId,
        reason: Reason = "",
    ) -> PersonRead:
        """Photos and embeddings are deleted; the person's record stays (audit trail)."""
        return person_read(faces.remove(person_id, principal.user, reason), time.time())


class FaceCandidateController(Controller):
    """Face candidates and the two-person rule."""

    path = "/api/v1/face-candidates"
    tags = ("faces",)

    @get("/", guards=[READ], sync_to_thread=True, summary="Face candidates")
    def candidates(
        self,
        face_candidates: NamedDependency[FaceCandidates],
        state_: Annotated[
            str | None,
            QueryParameter(
                name="state", description="pending, confirmed or rejected (default: all)."
            ),
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000, description="Page size.")] = 100,
        offset: Annotated[int, Parameter(ge=0, description="Rows to skip.")] = 0,
    ) -> list[CandidateRead]:
        """Newest first."""
        return [candidate_read(c) for c in face_candidates.list_all(state_, limit, offset)]

    @get("/{candidate_id:str}", guards=[READ], sync_to_thread=True, summary="One candidate")
    def candidate(
        self, face_candidates: NamedDependency[FaceCandidates], candidate_id: CandidateId
    ) -> CandidateRead:
        """A candidate with its decisions."""
        return candidate_read(face_candidates.get(candidate_id))

    @get(
        "/{candidate_id:str}/crop",
        guards=[READ],
        sync_to_thread=True,
        summary="The edge crop of a candidate (JPEG)",
        media_type="image/jpeg",
    )
    def crop(
        self,
        face_candidates: NamedDependency[FaceCandidates],
        principal: NamedDependency[Principal],
        candidate_id: CandidateId,
    ) -> Response[bytes]:
        """404 until the crop was fetched, or when it expired on the edge; a view is
        audited."""
        cand = face_candidates.get(candidate_id)
        jpeg = face_candidates.crop(candidate_id, principal.user)
        if jpeg is None:
            raise NotFound(f"face candidate {candidate_id}: no crop ({cand.crop_status})")
        return Response(jpeg, media_type="image/jpeg")

    @post(
        "/{candidate_id:str}/confirm",
        guards=[DECIDE],
        sync_to_thread=True,
        status_code=200,
        summary="Confirm a candidate (two different users needed)",
    )
    def confirm(
        self,
        face_candidates: NamedDependency[FaceCandidates],
        principal: NamedDependency[Principal],
        candidate_id: CandidateId,
    ) -> CandidateRead:
        """The second confirmation by a different user confirms it and raises the police
        ``face`` alert; the same user confirming twice is refused (409)."""
        return candidate_read(face_candidates.confirm(candidate_id, principal.user))

    @post(
        "/{candidate_id:str}/reject",
        guards=[DECIDE],
        sync_to_thread=True,
        status_code=200,
        summary="Reject a candidate with a reason",
    )
    def reject(
        self,
        face_candidates: NamedDependency[FaceCandidates],
        principal: NamedDependency[Principal],
        candidate_id: CandidateId,
        data: JSONBody[RejectRequest],
    ) -> CandidateRead:
        """Final: the candidate never reaches police; its reason is kept."""
        return candidate_read(face_candidates.reject(candidate_id, principal.user, data.reason))
