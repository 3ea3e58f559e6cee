"""Evidence export from the console: the alert page's and the journey page's forms post here
(CSRF token and a reason in each) and get the ZIP back as a download.

``EvidenceService`` builds the package and audits the export, as for the REST API.
"""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

import msgspec
from litestar import Controller, Response, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from central.accounts.model import Principal
from central.api.evidence import zip_response
from central.web.access import EVIDENCE_EXPORT, allowed
from central.web.pages import Console
from central.web.search_pages import Form, journey_query


class ExportForm(msgspec.Struct):
    """An export's fields: the reason, and for a journey the search it shows."""

    reason: str = ""
    plate: str = ""
    match: str = ""
    from_: str = msgspec.field(default="", name="from")
    to: str = ""


Posted = Annotated[ExportForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


class EvidencePageController(Controller):
    """``/console/evidence/...``."""

    path = "/console/evidence"
    include_in_schema = False

    @post(
        "/alerts/{alert_id:int}",
        guards=[allowed(EVIDENCE_EXPORT)],
        status_code=200,
        sync_to_thread=True,
    )
    def alert(
        self,
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        alert_id: FromPath[int],
        data: Posted,
    ) -> Response[bytes]:
        """The alert's evidence package (audited as ``evidence.export``)."""
        return zip_response(console.evidence.alert(alert_id, principal.user, data.reason))

    @post("/journey", guards=[allowed(EVIDENCE_EXPORT)], status_code=200, sync_to_thread=True)
    def journey(
        self, console: NamedDependency[Console], principal: NamedDependency[Principal], data: Posted
    ) -> Response[bytes]:
        """The journey's evidence package (audited as ``evidence.export``)."""
        form = Form({"plate": data.plate, "match": data.match, "from": data.from_, "to": data.to})
        query = journey_query(form, ZoneInfo(console.config.timezone))
        return zip_response(console.evidence.journey(query, principal.user, data.reason))
