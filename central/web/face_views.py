"""What the face pages show, read from the face services (``central/faces``) and shaped for
the templates: the board's queue, a candidate with its person and decisions, the persons.

Nothing here decides anything: the two-person rule, the required reasons and every audit
row are the services'. The one rule drawn here is the browser's mirror of that rule (the
user who confirmed already sees the button disabled); the service refuses them anyway.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

from central.api.faces import MAX_BODY
from central.faces.model import CONFIRMATIONS_NEEDED, Candidate, Person, PhotoInput
from central.faces.service import PERSON_STATUSES

if TYPE_CHECKING:
    from central.web.pages import Console

__all__ = ["PERSON_STATUSES"]

STATE_LABELS: Final = {
    "pending": "awaiting confirmation",
    "confirmed": "confirmed",
    "rejected": "match rejected",
}
"""A candidate's state as the pages name it (English msgids; translated when drawn)."""
DECISION_LABELS: Final = {"confirm": "confirmed the match", "reject": "rejected the match"}
STATUS_LABELS: Final = {"active": "active", "expired": "expired", "removed": "removed"}
QUEUE_SIZE: Final = 50
BROWSE_LIMIT: Final = 1000
MAX_ENROL_BYTES: Final = MAX_BODY + (1 << 20)
"""The largest enrolment form accepted: the REST API's, plus room for the text fields."""


def queue_view(console: Console, user: str) -> dict[str, Any]:
    """The pending candidates, newest first, with how far each one is and whether ``user``
    confirmed it already; ``max_id`` lets the page cue a new one."""
    pending = console.faces.list_all(state="pending", limit=QUEUE_SIZE)
    items = [
        {
            "candidate_id": c.candidate_id,
            "person_name": c.person_name,
            "score": c.score,
            "camera_id": c.camera_id,
            "captured_at": c.captured_at,
            "state": c.state,
            "confirmations": len(c.confirmers),
            "mine": user in c.confirmers,
            "seq": round(c.received_at * 1000),
        }
        for c in pending
    ]
    newest = max((c.received_at for c in pending), default=0.0)
    return {"rows": items, "max_id": round(newest * 1000)}


def candidate_view(console: Console, candidate_id: str, user: str) -> dict[str, Any]:
    """A candidate page's facts."""
    c: Candidate = console.faces.get(candidate_id)
    person = console.persons.person(c.person_id)
    photo = person.photos[0].photo_id if person.photos else ""
    rejection = next((d for d in c.decisions if d.decision == "reject"), None)
    return {
        "c": c,
        "person": person_dict(person, time.time()),
        "photo_url": f"/console/persons/{person.person_id}/photos/{photo}" if photo else "",
        "decisions": [
            {"user": d.actor, "decision": d.decision, "reason": d.reason, "at": d.at}
            for d in c.decisions
        ],
        "confirmations": c.confirmers,
        "needed": CONFIRMATIONS_NEEDED,
        "already": user in c.confirmers,
        "rejection": {"user": rejection.actor, "reason": rejection.reason} if rejection else None,
    }


def person_dict(person: Person, now: float) -> dict[str, Any]:
    """A person as the templates use it (status as of ``now``; photo ids only)."""
    return {
        "person_id": person.person_id,
        "name": person.name,
        "legal_basis": person.legal_basis,
        "reason": person.reason,
        "enrolled_by": person.enrolled_by,
        "enrolled_at": person.enrolled_at,
        "expires_at": person.expires_at,
        "status": person.status(now),
        "photos": [p.photo_id for p in person.photos],
    }


def persons_view(console: Console, name: str, status: str) -> list[dict[str, Any]]:
    """The persons with ``status`` (all when empty) whose name contains ``name`` (any case)."""
    now = time.time()
    people = console.persons.people(status=status or None, limit=BROWSE_LIMIT, name=name)
    return [person_dict(p, now) for p in people]


def person_view(console: Console, person_id: str) -> dict[str, Any]:
    """One person (NotFound from the service when there is none)."""
    return person_dict(console.persons.person(person_id), time.time())


def enrol_person(
    console: Console,
    fields: Any,
    expires_at: float,
    photos: Sequence[tuple[str, bytes]],
    actor: str,
) -> str:
    """Enrol through the service (it embeds, checks and audits); the new person's id."""
    person = console.persons.enrol(
        fields.name,
        fields.legal_basis,
        fields.reason,
        expires_at,
        [PhotoInput(name, data) for name, data in photos],
        actor,
    )
    return person.person_id
