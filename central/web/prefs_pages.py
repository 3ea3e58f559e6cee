"""The signed-in user's console preferences: language and the new-alert sound."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body

from central.accounts.model import Principal
from central.api.auth import ALL_ROLES, requires
from central.web.pages import Console, back


class PrefsForm(msgspec.Struct):
    """What to change (empty fields stay as they are) and where to go back to."""

    locale: str = ""
    muted: str = ""
    next: str = ""


class PrefsController(Controller):
    """``POST /console/prefs``."""

    path = "/console/prefs"
    include_in_schema = False

    @post("/", guards=[requires(*ALL_ROLES)], sync_to_thread=True)
    def update(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        data: Annotated[PrefsForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Store the choice; an htmx request gets 204, a plain form goes back."""
        muted = None if data.muted == "" else data.muted == "true"
        console.prefs.update(principal.user, locale=data.locale or None, muted=muted)
        if request.headers.get("hx-request") == "true":
            return Response(content=b"", status_code=204)
        return back(data.next)
