"""Search and journeys: sightings by plate, time, camera, type and colour, and one vehicle's
journey as a timeline and on a map.

Both pages are plain GET forms calling ``SearchService`` - the service behind
``/api/v1/sightings/search`` and ``/api/v1/vehicles/journey`` - so a console search is
validated, required to have a reason and audited exactly as a REST one. A bad input shows
the form again with the values as typed and the service's message (status 400).

Times typed into the form are in the console's time zone (``console.timezone``); the map
draws the configured camera positions (``cameras`` in central.yaml) with Leaflet, on the
on-site tile server's tiles when ``console.map_tiles`` is set, else on a plain plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from central.accounts.model import Principal
from central.config import CameraPlaceConfig
from central.search import JourneyQuery, PlateQuery, SearchQuery
from central.search.query import Cursor, parse_time
from central.search.service import Journey
from central.watchlist.model import COLOURS, VEHICLE_TYPES
from central.web.access import EVIDENCE_EXPORT, SEARCH, allowed, holds
from central.web.pages import Console, render
from shared.errors import InvalidRequest, SourceUnavailable

PAGE_SIZE: Final = 50
JOURNEY_LIMIT: Final = 1000
# the vocabulary edge vision reports (the forms registries write map onto it)
TYPE_CHOICES: Final = tuple(sorted(set(VEHICLE_TYPES.values())))
COLOUR_CHOICES: Final = tuple(sorted(set(COLOURS.values())))
FIELDS: Final = ("plate", "match", "from", "to", "camera", "vehicle_type", "colour", "reason")


@dataclass(frozen=True)
class Form:
    """The search form's values as typed (shown again with an error)."""

    values: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        """One field's value, stripped ('' when absent)."""
        return self.values.get(name, "").strip()

    @property
    def submitted(self) -> bool:
        """Whether anything was asked (a first visit shows the empty form)."""
        return any(self.get(name) for name in FIELDS)


def local_time(value: str, name: str, tz: ZoneInfo) -> datetime | None:
    """A form time: ``datetime-local`` (no offset) is in the console's zone; anything else
    as the REST API takes it.

    Raises:
        InvalidRequest: Not a time.
    """
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return parse_time(value, name)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def search_query(form: Form, tz: ZoneInfo, cursor: str) -> SearchQuery:
    """The service's query from the form.

    Raises:
        InvalidRequest: A bad plate, pattern, time range or cursor.
    """
    plate = form.get("plate")
    return SearchQuery(
        plate=PlateQuery.parse(plate, form.get("match") or None) if plate else None,
        start=local_time(form.get("from"), "from", tz),
        end=local_time(form.get("to"), "to", tz),
        camera_ids=(form.get("camera"),) if form.get("camera") else (),
        vehicle_type=form.get("vehicle_type") or None,
        colour=form.get("colour") or None,
        limit=PAGE_SIZE,
        cursor=Cursor.decode(cursor) if cursor else None,
    )


def journey_query(form: Form, tz: ZoneInfo) -> JourneyQuery:
    """The journey query from the form (exact unless fuzzy is asked).

    Raises:
        InvalidRequest: No plate, a pattern, a bad time range.
    """
    if not form.get("plate"):
        raise InvalidRequest("plate: a journey needs the vehicle's plate, got none")
    match = "fuzzy" if form.get("match") == "fuzzy" else "exact"
    return JourneyQuery(
        plate=PlateQuery.parse(form.get("plate"), match),
        start=local_time(form.get("from"), "from", tz),
        end=local_time(form.get("to"), "to", tz),
        limit=JOURNEY_LIMIT,
    )


def map_plan(journey: Journey, cameras: tuple[CameraPlaceConfig, ...]) -> dict[str, Any]:
    """What the map draws: every configured camera (``seen`` when the vehicle passed it)
    and the route through the cameras with coordinates, in time order, a point per change
    of camera."""
    places = {c.id: c for c in cameras}
    route: list[list[float]] = []
    last = None
    for stop in journey.stops:
        place = places.get(stop.sighting["camera_id"])
        if place is None or place.id == last:
            continue
        route.append([place.lat, place.lon])
        last = place.id
    passed = {s.sighting["camera_id"] for s in journey.stops}
    return {
        "cameras": [
            {
                "id": c.id,
                "lat": c.lat,
                "lon": c.lon,
                "heading": c.heading,
                "label": c.label or c.id,
                "seen": c.id in passed,
            }
            for c in cameras
        ],
        "route": route,
    }


class SearchPageController(Controller):
    """``/console/search`` and ``/console/journey``."""

    path = "/console"
    include_in_schema = False

    @get("/search", guards=[allowed(SEARCH)], sync_to_thread=True)
    def search(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        cursor: FromQuery[str] = "",
    ) -> Template:
        """The form; with a submitted form, a page of results (searched and audited)."""
        form = Form({k: v for k, v in request.query_params.items() if k in FIELDS})
        facts: dict[str, Any] = {
            "form": form,
            "cameras": self._camera_ids(console),
            "vehicle_types": TYPE_CHOICES,
            "colours": COLOUR_CHOICES,
        }
        if not form.submitted:
            return render(console, request, "search.html", "search", **facts)
        try:
            query = search_query(form, ZoneInfo(console.config.timezone), cursor)
            page = console.searches.search(query, principal.user, form.get("reason"))
        except InvalidRequest as err:
            return render(console, request, "search.html", "search", 400, error=str(err), **facts)
        except SourceUnavailable as err:  # the archive of old days does not answer
            return render(console, request, "search.html", "search", 503, error=str(err), **facts)
        keep = {k: form.get(k) for k in FIELDS if form.get(k)}
        return render(
            console,
            request,
            "search.html",
            "search",
            rows=page.items,
            next_query={**keep, "cursor": page.next} if page.next else None,
            journey_query=keep,
            first_page=not cursor,
            **facts,
        )

    @get("/journey", guards=[allowed(SEARCH)], sync_to_thread=True)
    def journey(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
    ) -> Template:
        """A vehicle's journey: timeline, map and the evidence export (searched, audited)."""
        form = Form({k: v for k, v in request.query_params.items() if k in FIELDS})
        places = {c.id: c for c in console.cameras}
        facts: dict[str, Any] = {"form": form, "places": places}
        try:
            query = journey_query(form, ZoneInfo(console.config.timezone))
            trip = console.searches.journey(query, principal.user, form.get("reason"))
        except InvalidRequest as err:
            return render(console, request, "journey.html", "search", 400, error=str(err), **facts)
        except SourceUnavailable as err:  # the archive of old days does not answer
            return render(console, request, "journey.html", "search", 503, error=str(err), **facts)
        return render(
            console,
            request,
            "journey.html",
            "search",
            journey=trip,
            plan=json.dumps(map_plan(trip, console.cameras), ensure_ascii=False),
            tiles=console.config.map_tiles,
            can_export=holds(principal.role, EVIDENCE_EXPORT),
            **facts,
        )

    @staticmethod
    def _camera_ids(console: Console) -> list[str]:
        """Cameras to pick from: those that reported and those configured."""
        seen = set(console.board.options().cameras)
        return sorted(seen | {c.id for c in console.cameras})
