"""REST export of evidence packages: an alert or a journey as a ZIP (reason required, audited).

The package's layout and how it is checked: ``central/evidence/package.py``;
``varta central evidence verify FILE.zip`` checks one.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody, PathParameter

from central.accounts import Principal, Role
from central.api.auth import requires
from central.evidence import EvidenceService, Package
from central.search import JourneyQuery, PlateQuery
from central.search.query import parse_time

EXPORT = requires(Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR, scopes=["export"])
ZIP: Final = "application/zip"
ZIP_RESPONSE: Final = {
    200: ResponseSpec(
        bytes,
        description="The evidence package (ZIP): manifest.json with the sha256 of every "
        "file, manifest.sha256, sightings.csv/.json, thumbs/, audit.json with chain hashes.",
        media_type=ZIP,
    )
}


class EvidenceRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Why the package is made (case number or purpose; written to the audit log)."""

    reason: str


class JourneyEvidenceRequest(msgspec.Struct, forbid_unknown_fields=True, rename={"from_": "from"}):
    """A journey to export: the plate, optional time range and match, and the reason."""

    plate: str
    reason: str
    match: str = "exact"
    from_: str | None = None
    to: str | None = None


def zip_response(package: Package) -> Response[bytes]:
    """The package as a download."""
    return Response(
        package.data,
        media_type=ZIP,
        headers={"Content-Disposition": f'attachment; filename="{package.filename}"'},
    )


class EvidenceController(Controller):
    """Evidence packages for investigators and the courts."""

    tags = ("evidence",)
    guards = [EXPORT]  # noqa: RUF012

    @post(
        "/api/v1/alerts/{alert_id:int}/evidence",
        sync_to_thread=True,
        status_code=200,
        summary="Export an alert as an evidence package (ZIP)",
        responses=ZIP_RESPONSE,
    )
    def alert(
        self,
        evidence: NamedDependency[EvidenceService],
        principal: NamedDependency[Principal],
        alert_id: Annotated[int, PathParameter(description="The alert.")],
        data: JSONBody[EvidenceRequest],
    ) -> Response[bytes]:
        """The alert, its history, its trail's sightings with their crops and the audit rows
        concerning them; the export is audited as ``evidence.export``."""
        return zip_response(evidence.alert(alert_id, principal.user, data.reason))

    @post(
        "/api/v1/vehicles/journey/evidence",
        sync_to_thread=True,
        status_code=200,
        summary="Export a vehicle's journey as an evidence package (ZIP)",
        responses=ZIP_RESPONSE,
    )
    def journey(
        self,
        evidence: NamedDependency[EvidenceService],
        principal: NamedDependency[Principal],
        data: JSONBody[JourneyEvidenceRequest],
    ) -> Response[bytes]:
        """The plate's sightings in time order with crops, the journey, and the audit rows of
        the plate's searches and exports; audited as ``search.journey`` and
        ``evidence.export``."""
        query = JourneyQuery(
            plate=PlateQuery.parse(data.plate, data.match or "exact"),
            start=parse_time(data.from_, "from"),
            end=parse_time(data.to, "to"),
        )
        return zip_response(evidence.journey(query, principal.user, data.reason))
