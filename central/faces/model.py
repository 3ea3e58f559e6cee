"""Types of the persons watchlist and its face candidates (no I/O here).

A *person* is someone wanted, enrolled from one or more photos with a legal basis, a
reason and an expiry. A *candidate* is one face observation that matched a person; it is
shown to police only once two different users have confirmed it (``state`` ``confirmed``).
Times are UNIX seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, Literal

PersonStatus = Literal["active", "expired", "removed"]
CandidateState = Literal["pending", "confirmed", "rejected"]
CropStatus = Literal["pending", "ok", "expired", "unreachable"]
DecisionKind = Literal["confirm", "reject"]

CANDIDATE_STATES: Final[tuple[CandidateState, ...]] = ("pending", "confirmed", "rejected")
CONFIRMATIONS_NEEDED: Final = 2
"""Different users who must confirm a candidate before police see it (two-person rule)."""


@dataclass(frozen=True)
class PhotoInput:
    """One photo to enrol: its bytes as uploaded and a name to cite in a refusal."""

    name: str
    data: bytes


@dataclass(frozen=True)
class PersonPhoto:
    """An enrolled photo (its JPEG and embedding stay in the store)."""

    photo_id: str
    person_id: str
    file_name: str
    quality: float
    added_at: float


@dataclass(frozen=True)
class Person:
    """A wanted person on the face watchlist.

    Attributes:
        person_id: Identity (a UUID).
        name: Name or label shown to operators and police.
        legal_basis: Legal basis / authorisation reference (court order, warrant number).
        reason: Why the person is wanted.
        enrolled_by: The user who enrolled them.
        enrolled_at: When.
        expires_at: Matching stops by itself at this time.
        removed_at: When removed (photos and embeddings deleted), or None.
        removed_by: Who removed them.
        removed_reason: Why.
        photos: The enrolled photos (empty once removed).
    """

    person_id: str
    name: str
    legal_basis: str
    reason: str
    enrolled_by: str
    enrolled_at: float
    expires_at: float
    removed_at: float | None = None
    removed_by: str = ""
    removed_reason: str = ""
    photos: list[PersonPhoto] = field(default_factory=list)

    def status(self, now: float) -> PersonStatus:
        """``removed``, ``expired`` (at or after ``expires_at``) or ``active``."""
        if self.removed_at is not None:
            return "removed"
        return "expired" if now >= self.expires_at else "active"


@dataclass(frozen=True)
class Decision:
    """One user's decision on a candidate."""

    actor: str
    decision: DecisionKind
    reason: str
    at: float


@dataclass(frozen=True)
class Candidate:
    """A face observation that matched an enrolled person.

    Attributes:
        candidate_id: The face observation id (also the key of its crop on the edge).
        agent_id: The agent that sent it.
        camera_id: The camera that saw it.
        captured_at: When.
        received_at: When central stored it.
        box: The face box in the frame (x1, y1, x2, y2).
        quality: The edge's quality score of the face.
        person_id: The person it resembles.
        person_name: Their name (as enrolled).
        score: Cosine similarity to the person's best photo.
        watchlist_version: The watchlist version it was matched against.
        state: pending, confirmed or rejected.
        crop_status: pending (not fetched yet), ok, expired (the edge no longer holds
            it) or unreachable.
        decisions: Every confirmation and rejection, oldest first.
        alert_id: The police alert raised when confirmed.
        reject_reason: Why it was rejected.
        decided_at: When it was confirmed or rejected.
    """

    candidate_id: str
    agent_id: str
    camera_id: str
    captured_at: float
    received_at: float
    box: tuple[float, float, float, float]
    quality: float
    person_id: str
    person_name: str
    score: float
    watchlist_version: int
    state: CandidateState
    crop_status: CropStatus
    decisions: list[Decision] = field(default_factory=list)
    alert_id: int | None = None
    reject_reason: str = ""
    decided_at: float | None = None

    @property
    def confirmers(self) -> list[str]:
        """The users who confirmed, in order."""
        return [d.actor for d in self.decisions if d.decision == "confirm"]


@dataclass(frozen=True)
class MatchedFace:
    """A face observation that matched, ready to be stored with its batch (ingest)."""

    candidate_id: str
    agent_id: str
    camera_id: str
    captured_at: float
    box: tuple[float, float, float, float]
    quality: float
    person_id: str
    score: float
    watchlist_version: int
    embedding: bytes
    model: str


@dataclass(frozen=True)
class BulkProblem:
    """A bulk-enrolment row that was not enrolled: its CSV line and why."""

    line: int
    reason: str


@dataclass(frozen=True)
class BulkReport:
    """What a bulk enrolment did."""

    rows: int
    enrolled: list[Person]
    problems: list[BulkProblem]
