"""Search controllers: sighting search and vehicle journeys (reason required, audited)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter, QueryParameter

from central.accounts import Principal, Role
from central.api.auth import requires
from central.api.dto import SightingRead, sighting_read
from central.search import JourneyQuery, PlateQuery, SearchQuery, SearchService
from central.search.query import Cursor, parse_time

SEARCH_ROLES = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)

Reason = Annotated[
    str | None,
    Parameter(description="Case number or purpose (required; written to the audit log)."),
]
Plate = Annotated[str | None, Parameter(description="Plate (Cyrillic or Latin) or pattern.")]
Match = Annotated[
    str | None,
    Parameter(description="exact, wildcard (? one, * any) or fuzzy (OCR look-alikes + 1 edit)."),
]
From = Annotated[
    str | None,
    QueryParameter(name="from", description="Captured at or after (ISO 8601 or UNIX s)."),
]
To = Annotated[
    str | None, QueryParameter(name="to", description="Captured before (ISO 8601 or UNIX s).")
]


class SearchPageRead(msgspec.Struct):
    """A page of search results; pass ``next`` as ``cursor`` for the following page."""

    items: list[SightingRead]
    next: str | None


class StopRead(msgspec.Struct):
    """One sighting on a journey; ``gap_s`` is the time since the previous sighting."""

    sighting: SightingRead
    gap_s: float | None
    camera_changed: bool


class JourneyRead(msgspec.Struct):
    """A vehicle's sightings in time order and the cameras passed, in order."""

    plate: str
    stops: list[StopRead]
    cameras: list[str]
    truncated: bool


class SearchController(Controller):
    """Investigators' search of stored sightings."""

    tags = ("search",)
    guards = [requires(*SEARCH_ROLES, scopes=["search"])]  # noqa: RUF012

    @get("/api/v1/sightings/search", sync_to_thread=True, summary="Search sightings")
    def search(
        self,
        searches: NamedDependency[SearchService],
        principal: NamedDependency[Principal],
        reason: Reason = None,
        plate: Plate = None,
        match: Match = None,
        from_: From = None,
        to: To = None,
        camera_id: Annotated[
            list[str] | None, Parameter(description="Camera id; repeat for several.")
        ] = None,
        agent_id: Annotated[str | None, Parameter(description="Only this agent.")] = None,
        vehicle_type: Annotated[str | None, Parameter(description="car, van, truck ...")] = None,
        colour: Annotated[str | None, Parameter(description="silver, white ...")] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000, description="Page size.")] = 50,
        cursor: Annotated[str | None, Parameter(description="'next' of the last page.")] = None,
    ) -> SearchPageRead:
        """Sightings matching every given condition, newest first, in keyset pages."""
        query = SearchQuery(
            plate=PlateQuery.parse(plate, match) if plate else None,
            start=parse_time(from_, "from"),
            end=parse_time(to, "to"),
            camera_ids=tuple(camera_id or ()),
            agent_id=agent_id,
            vehicle_type=vehicle_type,
            colour=colour,
            limit=limit,
            cursor=Cursor.decode(cursor) if cursor else None,
        )
        page = searches.search(query, principal.user, reason)
        return SearchPageRead([sighting_read(r) for r in page.items], page.next)

    @get("/api/v1/vehicles/journey", sync_to_thread=True, summary="One vehicle's journey")
    def journey(
        self,
        searches: NamedDependency[SearchService],
        principal: NamedDependency[Principal],
        plate: Annotated[str, Parameter(description="The vehicle's plate.")],
        reason: Reason = None,
        match: Annotated[str | None, Parameter(description="exact (default) or fuzzy.")] = None,
        from_: From = None,
        to: To = None,
        limit: Annotated[int, Parameter(ge=1, le=10_000, description="Most sightings.")] = 1000,
    ) -> JourneyRead:
        """The vehicle's sightings across cameras in time order, with gaps."""
        query = JourneyQuery(
            plate=PlateQuery.parse(plate, match or "exact"),
            start=parse_time(from_, "from"),
            end=parse_time(to, "to"),
            limit=limit,
        )
        trip = searches.journey(query, principal.user, reason)
        stops = [StopRead(sighting_read(s.sighting), s.gap_s, s.camera_changed) for s in trip.stops]
        return JourneyRead(trip.plate, stops, trip.cameras, trip.truncated)
