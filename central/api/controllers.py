"""REST controllers for agents, sightings and ingest status: parse, call a service, return."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, Parameter

from central.accounts import Principal, Role
from central.alerts.service import AlertService
from central.api.auth import PUBLIC, requires
from central.api.dto import AgentRead, SightingPage, rfc3339, sighting_read, to_read
from central.audit import AuditLog
from central.search.query import parse_time
from central.services import AgentService, HealthService, SightingService, StatusService
from shared.errors import Forbidden

SIGHTING_ROLES = (Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR)


class AgentController(Controller):
    """Edge agents and their cameras."""

    path = "/api/v1/agents"
    tags = ("agents",)

    @get(
        "/",
        guards=[
            requires(
                Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.ENGINEER, scopes=["agents:read"]
            )
        ],
        sync_to_thread=True,
        summary="List agents with last-seen and health",
    )
    def list_agents(self, agents: NamedDependency[AgentService]) -> list[AgentRead]:
        """Every agent that ever said hello, with cameras, spool state and health."""
        return [to_read(a, AgentRead) for a in agents.list()]


class SightingController(Controller):
    """Stored sightings."""

    path = "/api/v1/sightings"
    tags = ("sightings",)

    @get(
        "/",
        guards=[requires(*SIGHTING_ROLES, scopes=["search"])],
        sync_to_thread=True,
        summary="Live sightings, newest first (older ones with a reason, audited)",
    )
    def recent(
        self,
        sightings: NamedDependency[SightingService],
        principal: NamedDependency[Principal],
        limit: Annotated[int, Parameter(ge=1, le=1000, description="Page size.")] = 50,
        camera_id: Annotated[str | None, Parameter(description="Only this camera.")] = None,
        agent_id: Annotated[str | None, Parameter(description="Only this agent.")] = None,
        before: Annotated[
            str | None,
            Parameter(
                description="Only sightings captured before (RFC 3339, or UNIX seconds); "
                "pass the last page's 'next_before'."
            ),
        ] = None,
        reason: Annotated[
            str | None,
            Parameter(
                description="Case number or purpose. Without it only the live window "
                "(search.live_window_s, 15 min by default) is listed; with it any age, and "
                "the listing is written to the audit log."
            ),
        ] = None,
    ) -> SightingPage:
        """A page of sightings, newest first."""
        start = parse_time(before, "before")
        until = start.timestamp() if start else None
        rows = sightings.recent(limit, camera_id, agent_id, until, principal.user, reason)
        items = [sighting_read(r) for r in rows]
        nxt = rows[-1]["captured_at"] if len(rows) == limit else None
        return SightingPage(items=items, next_before=rfc3339(nxt) if nxt is not None else None)

    @get(
        "/{event_id:str}/thumbnails/{index:int}",
        guards=[requires(*SIGHTING_ROLES, Role.POLICE_API, scopes=["evidence:read"])],
        sync_to_thread=True,
        media_type="image/jpeg",
        summary="One thumbnail (JPEG) of a sighting",
    )
    def thumbnail(
        self,
        sightings: NamedDependency[SightingService],
        alerts: NamedDependency[AlertService],
        audit: NamedDependency[AuditLog],
        principal: NamedDependency[Principal],
        event_id: FromPath[str],
        index: FromPath[int],
    ) -> Response[bytes]:
        """The JPEG bytes; the view is audited (evidence) before they are sent.

        Police API clients see evidence of alerted sightings only, never of other traffic.
        """
        if principal.role == Role.POLICE_API and not alerts.is_evidence(event_id):
            raise Forbidden(f"sighting {event_id} is not evidence of any alert")
        jpeg = sightings.thumbnail(event_id, index)
        audit.record(principal.user, "evidence.view", f"sighting:{event_id}/thumbnail/{index}")
        return Response(jpeg, media_type="image/jpeg")


class StatusController(Controller):
    """Health and operations counters."""

    path = "/api/v1"
    tags = ("status",)

    @get(
        "/health",
        opt=PUBLIC,
        sync_to_thread=True,
        summary="Liveness: threads, database writability, free disk (503 when failing)",
        responses={503: ResponseSpec(dict[str, Any], description="A check failed.")},
    )
    def health(self, health: NamedDependency[HealthService]) -> Response[dict[str, Any]]:
        """Each check (ingest, database writer, alert monitor, webhook senders, database
        writable, free disk) with ``ok`` or its problem; 503 when any fails."""
        healthy, body = health.report()
        return Response(body, status_code=200 if healthy else 503)

    @get(
        "/status/ingest",
        guards=[requires(Role.ADMIN, Role.ENGINEER, Role.SUPERVISOR, scopes=["status:read"])],
        sync_to_thread=False,
        summary="Ingest counters since start",
    )
    def ingest(self, status: NamedDependency[StatusService]) -> dict[str, Any]:
        """Messages, batches, stored, duplicates, rejections by reason, auth refusals."""
        return status.ingest()
