"""The national hub's HTTP API (registered only on a central configured ``national.hub``).

* ``GET /api/v1/national/lists/{name}``: a published list as a signed JSON Lines export,
  with ``ETag`` (``If-None-Match`` answers 304) and the ``X-Varta-Signature`` headers
  (``central/national/signing.py``). Regional centrals sync it (scope ``national:read``).
* ``POST /api/v1/national/alerts``: a region forwards alert changes (scope
  ``national:forward``, token of the hub user named after the region).
* ``GET /api/v1/national/alerts``: the regions' alerts for police clients (``alerts:read``).
* ``GET /api/v1/national/status``: published lists and regions (``status:read``).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Final

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ETag
from litestar.di import NamedDependency
from litestar.params import Parameter, PathParameter, QueryParameter
from litestar.response import File

from central.accounts import Principal, Role
from central.api.auth import requires
from central.national.forward import REGION_HEADER
from central.national.hub import HubStatus, NationalHub, ReceiveResult
from central.national.publish import MEDIA_TYPE
from central.national.signing import DIGEST_HEADER, KEY_ID_HEADER, LIST_HEADER, SIGNATURE_HEADER
from central.national.store import AlertPage

MAX_FORWARD_BYTES: Final = 64 << 20
POLICE_ROLES: Final = (Role.POLICE_API, Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
STATUS_ROLES: Final = (Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.ENGINEER, Role.POLICE_API)

ListName = Annotated[str, PathParameter(description="A published list, e.g. national-stolen.")]


class NationalController(Controller):
    """A national hub: signed wanted lists out, regions' alerts in."""

    path = "/api/v1/national"
    tags = ("national",)

    @get(
        "/lists/{name:str}",
        guards=[requires(Role.POLICE_API, Role.ADMIN, scopes=["national:read"])],
        sync_to_thread=True,
        summary="A published wanted list (signed export)",
    )
    def list_export(
        self,
        request: Request[Any, Any, Any],
        national_hub: NamedDependency[NationalHub],
        name: ListName,
    ) -> Response[Any]:
        """The whole list as JSON Lines, ordered by entry key, signed with the hub's key.

        ``If-None-Match`` with the current ETag answers 304 with no body. Headers:
        ``X-Varta-List`` (the list), ``X-Varta-Content-SHA256`` (of the body),
        ``Last-Modified`` (when the export was built) and ``X-Varta-Signature:
        ed25519=<base64>`` over the three (docs/national-hub.md).
        """
        published = national_hub.published(name)
        headers = {
            LIST_HEADER: published.name,
            DIGEST_HEADER: published.digest,
            SIGNATURE_HEADER: published.signature,
            KEY_ID_HEADER: published.key_id,
            "Last-Modified": published.last_modified,
            "Cache-Control": "no-cache",
        }
        if _matches(request.headers.get("if-none-match", ""), published.etag):
            return Response(
                content=b"", status_code=304, headers={**headers, "ETag": published.etag}
            )
        return File(
            published.path,
            media_type=MEDIA_TYPE,
            content_disposition_type="inline",
            filename=f"{published.name}.jsonl",
            etag=ETag(value=published.etag.strip('"')),
            headers=headers,
        )

    @post(
        "/alerts",
        guards=[requires(Role.POLICE_API, scopes=["national:forward"])],
        status_code=200,
        request_max_body_size=MAX_FORWARD_BYTES,
        summary="Forward a region's alert changes",
    )
    async def forward(
        self,
        request: Request[Any, Any, Any],
        national_hub: NamedDependency[NationalHub],
        principal: NamedDependency[Principal],
    ) -> ReceiveResult:
        """Store ``{"region": ..., "changes": [...]}``; repeats are counted, not stored twice.

        The region must be the caller's own hub user. Malformed changes are refused one by
        one (listed in ``refused``), the others stored; the answer comes after the commit.
        """
        body = await request.body()
        region = request.headers.get(REGION_HEADER.lower(), "")
        return await anyio.to_thread.run_sync(
            partial(national_hub.receive, principal, region, body)
        )

    @get(
        "/alerts",
        guards=[requires(*POLICE_ROLES, scopes=["alerts:read"])],
        sync_to_thread=True,
        summary="Alerts the regions forwarded",
    )
    def alerts(
        self,
        national_hub: NamedDependency[NationalHub],
        after: Annotated[
            int, Parameter(ge=0, description="Continue after this hub_seq (a page's next).")
        ] = 0,
        limit: Annotated[int, Parameter(ge=1, le=1000, description="Page size.")] = 100,
        region: Annotated[str | None, Parameter(description="Only this region's.")] = None,
        state_: Annotated[
            str | None, QueryParameter(name="state", description="Only alerts in this state.")
        ] = None,
    ) -> AlertPage:
        """New and changed alerts of every region in the order the hub stored them."""
        return national_hub.alerts(after, limit, region, state_)

    @get(
        "/status",
        guards=[requires(*STATUS_ROLES, scopes=["status:read"])],
        sync_to_thread=True,
        summary="Published lists and regions",
    )
    def status(self, national_hub: NamedDependency[NationalHub]) -> HubStatus:
        """Each published list's last build and each region's last request and counts."""
        return national_hub.status()


def _matches(if_none_match: str, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (or is ``*``)."""
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags
