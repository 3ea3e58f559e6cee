"""Response shapes of the REST API (msgspec structs, split by use) and the one conversion.

Services and repositories keep times as UNIX seconds; the API shows every time as an
RFC 3339 string with microseconds and an explicit offset, ``2026-12-05T09:04:21.123456+00:00``
(``Time``). ``to_read`` turns a domain object into its API shape, converting every field
typed ``Time`` on the way; nothing else converts times. In the free-form ``details`` of
alerts and audit rows, numbers under keys ending ``_at``, ``_seen`` or ``_until`` are times
by convention and are converted too.
"""

from __future__ import annotations

import datetime as dt
import functools
import types
import typing
from typing import Annotated, Any, Final, TypeVar

import msgspec
from litestar.openapi.spec import OpenAPIFormat
from litestar.params import KwargDefinition

R = TypeVar("R", bound=msgspec.Struct)

Time = Annotated[
    str,
    KwargDefinition(
        format=OpenAPIFormat.DATE_TIME,
        description="RFC 3339 with microseconds and offset, e.g. 2026-12-05T09:04:21.123456+00:00",
    ),
]
"""A point in time as the API shows it (``rfc3339``); OpenAPI ``string``, ``date-time``."""

TimeOrDate = Annotated[
    str,
    KwargDefinition(
        description="A time in RFC 3339, e.g. 2026-12-05T09:04:21+00:00, or a date "
        "(2026-12-05 or 05.12.2026) meaning that whole day",
    ),
]
"""A point in time as the API takes it from registry rows: a date-time or a whole date."""

DETAIL_TIME_SUFFIXES: Final = ("_at", "_seen", "_until")


def rfc3339(epoch: float) -> str:
    """UNIX seconds as RFC 3339 in UTC: ``2026-12-05T09:04:21.123456+00:00``."""
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="microseconds")


def to_read(value: Any, read_type: type[R]) -> R:
    """``value`` (a struct, dataclass or dict) as ``read_type``, times as RFC 3339.

    Fields ``read_type`` types as ``Time`` (also inside nested structs and lists of them)
    are converted from UNIX seconds; fields it lacks are dropped.
    """
    return msgspec.convert(_stamped(msgspec.to_builtins(value), read_type), read_type)


def _stamped(data: Any, read_type: type[msgspec.Struct]) -> Any:
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for name, kind in _fields(read_type).items():
        value = out.get(name)
        if value is None:
            continue
        if kind == "time":
            out[name] = rfc3339(value) if isinstance(value, int | float) else value
        elif kind == "details":
            out[name] = _detail_times(value)
        elif isinstance(kind, list):
            out[name] = [_stamped(v, kind[0]) for v in value]
        else:
            out[name] = _stamped(value, kind)
    return out


@functools.cache
def _fields(read_type: type[msgspec.Struct]) -> dict[str, Any]:
    """Which fields need work: ``"time"``, ``"details"``, a struct type, or ``[struct type]``."""
    kinds: dict[str, Any] = {}
    for name, hint in typing.get_type_hints(read_type, include_extras=True).items():
        union = typing.get_origin(hint) in (typing.Union, types.UnionType)
        options = typing.get_args(hint) if union else (hint,)
        for option in options:
            if option == Time:
                kinds[name] = "time"
            elif name == "details":
                kinds[name] = "details"
            elif isinstance(option, type) and issubclass(option, msgspec.Struct):
                kinds[name] = option
            elif typing.get_origin(option) is list:
                (item,) = typing.get_args(option)
                if isinstance(item, type) and issubclass(item, msgspec.Struct):
                    kinds[name] = [item]
    return kinds


def _detail_times(details: Any) -> Any:
    if not isinstance(details, dict):
        return details
    return {k: _detail_time(k, v) for k, v in details.items()}


def _detail_time(key: str, value: Any) -> Any:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return rfc3339(value) if number and key.endswith(DETAIL_TIME_SUFFIXES) else value


# agents and sightings -------------------------------------------------------------------


class CameraRead(msgspec.Struct):
    """A camera and its last reported health."""

    camera_id: str
    name: str
    source_kind: str
    online: bool | None  # None: no health reported yet
    fps_in: float
    fps_out: float
    frames_dropped: int
    error: str
    last_seen: Time


class AgentLinkRead(msgspec.Struct):
    """An agent's link to central, as its last heartbeat reported it (schema 1.2)."""

    reconnects: int
    last_ack_age_s: float | None  # None: no batch acknowledged yet
    spool_peak: int
    in_flight: int


class AgentClockRead(msgspec.Struct):
    """An agent's wall clock guard, as its last heartbeat reported it (schema 1.2)."""

    offset_s: float  # wall clock minus the stamps' clock: non-zero while a step is pending
    pending: bool
    steps: int
    steps_confirmed: int
    steps_reverted: int
    last_step_s: float


class AgentRead(msgspec.Struct):
    """An edge agent: identity, last-seen, health, spool, link and clock state.

    ``clock_skew_s`` is the agent's wall clock minus central's, measured on its last
    heartbeat; ``link`` and ``clock`` are None for an agent older than schema 1.2.
    """

    agent_id: str
    software_version: str
    models: dict[str, str]
    first_seen: Time
    last_seen: Time
    started_at: Time | None
    online: bool
    health: str
    problems: list[str]
    spool_depth: int
    spool_bytes: int
    spool_evictions: int
    dead_letters: int
    sightings_received: int
    clock_skew_s: float | None
    link: AgentLinkRead | None
    clock: AgentClockRead | None
    cameras: list[CameraRead]


class CandidateRead(msgspec.Struct):
    """An alternative plate reading."""

    text: str
    confidence: float


class ThumbnailRead(msgspec.Struct):
    """A stored thumbnail and where to fetch it."""

    role: str
    width: int
    height: int
    url: str


class SightingRead(msgspec.Struct):
    """One stored sighting."""

    event_id: str
    agent_id: str
    camera_id: str
    captured_at: Time
    received_at: Time
    plate: str | None
    plate_raw: str | None
    plate_confidence: float | None
    plate_candidates: list[CandidateRead] | None
    plate_format: str | None
    plate_region: str | None
    plate_box: list[float] | None
    vehicle_box: list[float] | None
    vehicle_type: str | None
    vehicle_type_confidence: float | None
    colour: str | None
    colour_confidence: float | None
    track_frames: int
    track_seconds: float
    thumbnails: list[ThumbnailRead]
    archived: bool = False
    """Read from the archive (the database no longer holds it): no thumbnails."""


class SightingPage(msgspec.Struct):
    """A page of sightings, newest first; pass ``next_before`` as ``before`` for the next."""

    items: list[SightingRead]
    next_before: Time | None


def sighting_read(row: dict[str, Any]) -> SightingRead:
    """A stored row as the API shows it (thumbnail URLs instead of pack references)."""
    thumbs = [
        {
            "role": t["role"],
            "width": t["width"],
            "height": t["height"],
            "url": f"/api/v1/sightings/{row['event_id']}/thumbnails/{i}",
        }
        for i, t in enumerate(row.get("thumbnails") or [])
    ]
    return to_read({**row, "thumbnails": thumbs}, SightingRead)


# alerts ---------------------------------------------------------------------------------


class TrailItemRead(msgspec.Struct, kw_only=True):
    """One sighting that fed an alert, with its evidence (thumbnail URLs)."""

    event_id: str
    agent_id: str
    camera_id: str
    captured_at: Time
    plate: str
    score: float
    match_kind: str
    reason: str
    thumbnails: list[str] = []
    historical: bool = False


class HistoryItemRead(msgspec.Struct, kw_only=True):
    """One recorded step of an alert: who did what, when and why."""

    at: Time
    actor: str
    action: str
    from_state: str
    to_state: str
    reason: str = ""


class AlertRead(msgspec.Struct, kw_only=True):
    """An alert (``central.alerts.model.Alert`` with times as RFC 3339)."""

    alert_id: int
    kind: str
    state: str
    priority: int
    category: str
    title: str
    subject: str
    dedup_key: str
    details: dict[str, Any]
    created_at: Time
    updated_at: Time
    first_seen: Time
    last_seen: Time
    sightings: int = 0
    seq: int = 0
    police_ack_by: str = ""
    police_ack_at: Time | None = None
    latest: TrailItemRead | None = None
    historical: bool = False


class AlertDetailRead(msgspec.Struct, kw_only=True):
    """An alert with its whole trail of sightings and its history."""

    alert: AlertRead
    trail: list[TrailItemRead]
    history: list[HistoryItemRead]


class ChangeRead(msgspec.Struct, kw_only=True):
    """One entry of the change feed: the alert as it was right after the change."""

    seq: int
    change: str
    at: Time
    alert: AlertRead


class ChangePageRead(msgspec.Struct, kw_only=True):
    """A page of the change feed; pass ``next`` as ``after`` to continue."""

    items: list[ChangeRead]
    next: str


# accounts and audit ---------------------------------------------------------------------


class UserRead(msgspec.Struct, frozen=True):
    """A user as shown to administrators (never the password hash)."""

    username: str
    role: str
    disabled: bool
    created_at: Time
    created_by: str
    last_login_at: Time | None


class TokenRead(msgspec.Struct, frozen=True):
    """An API token's metadata (never its secret)."""

    token_id: str
    username: str
    label: str
    scopes: list[str]
    created_at: Time
    created_by: str
    expires_at: Time | None
    last_used_at: Time | None
    revoked_at: Time | None
    revoked_by: str | None


class TokenCreated(msgspec.Struct, frozen=True):
    """A new API token: ``secret`` is shown this once and never stored."""

    token: TokenRead
    secret: str


class SessionCreated(msgspec.Struct, frozen=True):
    """A new login session: ``token`` is the bearer secret (also set as an HttpOnly cookie)."""

    token: str
    session_id: str
    username: str
    role: str
    expires_at: Time


class AuditEntryRead(msgspec.Struct, frozen=True):
    """One audit row."""

    id: int
    at: Time
    actor: str
    action: str
    target: str
    reason: str
    details: dict[str, Any]
    hash: str
