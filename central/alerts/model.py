"""Alert types: kinds, the lifecycle and its legal transitions, trail, history and changes.

An alert is raised by a watchlist match of a stored sighting (``watchlist``), by a face
candidate two different users confirmed (``face``, see ``central/faces/candidates.py``) or by
central itself about its own health (``agent_offline``, ``camera_offline``, ``webhook_failing``).
Lifecycle::

    new -> acknowledged -> dispatched -> resolved
      \\-----------\\-------------\\-> rejected (reason required)

System alerts may also go ``new -> resolved`` (they auto-close when the cause goes away).
Every change to an alert is one entry of the change feed with a sequence number that only
grows; police clients and webhooks consume that feed in order.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from msgspec import Struct

from shared.errors import InvalidRequest

AlertKind = Literal["watchlist", "agent_offline", "camera_offline", "webhook_failing", "face"]
State = Literal["new", "acknowledged", "dispatched", "resolved", "rejected"]
ChangeKind = Literal["created", "sighted", "transition", "police_ack"]

KINDS: Final[tuple[AlertKind, ...]] = (
    "watchlist",
    "agent_offline",
    "camera_offline",
    "webhook_failing",
    "face",
)
STATES: Final[tuple[State, ...]] = ("new", "acknowledged", "dispatched", "resolved", "rejected")
OPEN_STATES: Final[frozenset[str]] = frozenset({"new", "acknowledged", "dispatched"})
SYSTEM_KINDS: Final[frozenset[str]] = frozenset(
    {"agent_offline", "camera_offline", "webhook_failing"}
)
SYSTEM_ACTOR: Final = "system"

_NEXT: Final[dict[str, frozenset[str]]] = {
    "new": frozenset({"acknowledged", "rejected"}),
    "acknowledged": frozenset({"dispatched", "resolved", "rejected"}),
    "dispatched": frozenset({"resolved", "rejected"}),
    "resolved": frozenset(),
    "rejected": frozenset(),
}


class IllegalTransition(InvalidRequest):
    """The alert's state does not allow the requested transition (HTTP 409)."""


def next_states(kind: str, current: str) -> frozenset[str]:
    """The states an alert of ``kind`` in state ``current`` may move to."""
    allowed = set(_NEXT.get(current, frozenset()))
    if kind in SYSTEM_KINDS and current == "new":
        allowed.add("resolved")
    return frozenset(allowed)


def check_transition(kind: str, current: str, target: str, reason: str) -> None:
    """Raise unless ``current -> target`` is legal for an alert of ``kind``.

    Args:
        kind: The alert's kind (system alerts may go straight from new to resolved).
        current: The alert's state now.
        target: The requested state.
        reason: The reason given; required to reject.

    Raises:
        InvalidRequest: ``target`` is no state, or a rejection has no reason.
        IllegalTransition: The lifecycle does not allow the step.
    """
    if target not in STATES:
        raise InvalidRequest(f"expected 'to' to be one of {', '.join(STATES)}, got {target!r}")
    if target == "rejected" and not reason.strip():
        raise InvalidRequest("rejecting an alert requires a reason, got an empty one")
    allowed = next_states(kind, current)
    if target not in allowed:
        options = ", ".join(sorted(allowed)) or "none (the alert is closed)"
        raise IllegalTransition(
            f"alert is {current!r}; cannot go to {target!r}; allowed next: {options}"
        )


class TrailItem(Struct, frozen=True, kw_only=True):
    """One sighting that fed an alert, with its evidence.

    Attributes:
        event_id: The sighting.
        agent_id: Edge agent that sent it.
        camera_id: Camera that captured it.
        captured_at: Capture time (UNIX seconds).
        plate: The plate as read (folded).
        score: Match score 0..1.
        match_kind: exact, confusion, edit, pattern or attribute.
        reason: Why it matched, for the operator.
        thumbnails: URLs of the sighting's thumbnails (evidence).
        historical: Found by matching a newly listed entry against past sightings.
    """

    event_id: str
    agent_id: str
    camera_id: str
    captured_at: float
    plate: str
    score: float
    match_kind: str
    reason: str
    thumbnails: list[str] = []
    historical: bool = False


class HistoryItem(Struct, frozen=True, kw_only=True):
    """One recorded step of an alert: who did what, when and why."""

    at: float
    actor: str
    action: str
    from_state: str
    to_state: str
    reason: str = ""


class Alert(Struct, frozen=True, kw_only=True):
    """An alert as police clients, operators and webhooks see it.

    Attributes:
        alert_id: Identity (grows with creation).
        kind: watchlist, agent_offline, camera_offline or webhook_failing.
        state: new, acknowledged, dispatched, resolved or rejected.
        priority: 1 (most urgent) .. 5.
        category: Watchlist category (stolen, wanted, ...) or ``system``.
        title: One line for a list view.
        subject: The plate, agent, camera or webhook endpoint concerned.
        dedup_key: Sightings with the same key within the window join this alert.
        details: Kind-specific facts (list, entry, case reference, listed plate ...).
        created_at: When raised (UNIX seconds).
        updated_at: Last change.
        first_seen: First sighting (or first detection of the problem).
        last_seen: Latest sighting.
        sightings: Number of sightings on the trail.
        seq: Sequence number of the latest change.
        police_ack_by: Police client that acknowledged receipt, if any.
        police_ack_at: When it did.
        latest: The latest sighting (watchlist alerts).
        historical: Raised by a past-read match: the entry was listed after the sighting
            (``first_seen`` is the sighting's own time).
    """

    alert_id: int
    kind: str
    state: str
    priority: int
    category: str
    title: str
    subject: str
    dedup_key: str
    details: dict[str, Any]
    created_at: float
    updated_at: float
    first_seen: float
    last_seen: float
    sightings: int = 0
    seq: int = 0
    police_ack_by: str = ""
    police_ack_at: float | None = None
    latest: TrailItem | None = None
    historical: bool = False

    @property
    def open(self) -> bool:
        """Whether the alert still needs work."""
        return self.state in OPEN_STATES


class AlertDetail(Struct, frozen=True, kw_only=True):
    """An alert with its whole trail of sightings and its history."""

    alert: Alert
    trail: list[TrailItem]
    history: list[HistoryItem]


class Change(Struct, frozen=True, kw_only=True):
    """One entry of the change feed: the alert as it was right after the change."""

    seq: int
    change: str
    at: float
    alert: Alert


class ChangePage(Struct, frozen=True, kw_only=True):
    """A page of the change feed; pass ``next`` as ``after`` to continue."""

    items: list[Change]
    next: str


class WebhookFilter(Struct, frozen=True, kw_only=True):
    """Which alert changes one webhook endpoint receives.

    Attributes:
        name: The endpoint's configured name.
        kinds: Alert kinds to send; empty for all.
        categories: Categories to send (stolen, wanted, ..., system); empty for all.
        max_priority: Send alerts with priority at most this (1 most urgent).
        lists: Wanted lists whose alerts to send; empty for all (an alert without a list,
            a system alert, passes only when empty).
    """

    name: str
    kinds: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    max_priority: int = 5
    lists: frozenset[str] = frozenset()

    def accepts(self, alert: Alert) -> bool:
        """Whether a change of ``alert`` goes to this endpoint."""
        return (
            (not self.kinds or alert.kind in self.kinds)
            and (not self.categories or alert.category in self.categories)
            and alert.priority <= self.max_priority
            and (not self.lists or alert.details.get("list_name") in self.lists)
        )
