"""Face candidates in the console: the queue on the alert board, a candidate's page (the
enrolled photo beside the edge crop, the match and the person, the decisions so far) and
its two actions, confirm and reject.

The two-person rule lives in one place, the face-candidate service the REST API calls
(``console.faces``): it refuses a second confirmation by the same user, needs a reason to
reject, and audits every view and decision. The page only mirrors it for the user's sake:
whoever confirmed already sees the confirm button disabled with the reason, and a forced
POST is still refused by the service and answered on the same page with its message.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from central.accounts.model import Principal
from central.web.access import FACES_REVIEW, PERSONS_VIEW, allowed, holds
from central.web.face_views import (
    DECISION_LABELS,
    STATE_LABELS,
    candidate_view,
    queue_view,
)
from central.web.pages import Console, render
from shared.errors import Conflict, InvalidRequest, NotFound

BASE: Final = "/console/faces"
POLL_S: Final = 10
"""How often an open board asks for the face queue besides the stream's events (seconds):
the stream's ``faces`` event announces a new candidate, and its ``changed`` event a
confirmation (it raises an alert); the period catches the rest (another user's first
confirmation or a rejection)."""
IMAGE_HEADERS: Final = {"Cache-Control": "private, no-store"}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)


class RejectForm(msgspec.Struct):
    """Why the match is wrong (the service requires it)."""

    reason: str = ""


def face_queue(console: Console, principal: Principal) -> dict[str, Any] | None:
    """What the board draws of the face queue (None for a role that may not review)."""
    if not holds(principal.role, FACES_REVIEW):
        return None
    return {"queue": queue_view(console, principal.user), "poll_s": POLL_S}


class FacePageController(Controller):
    """``/console/faces``."""

    path = BASE
    include_in_schema = False

    @get("/queue", guards=[allowed(FACES_REVIEW)], sync_to_thread=True)
    def queue(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
    ) -> Template:
        """The pending candidates (what the board swaps in)."""
        return render(
            console,
            request,
            "_face_queue.html",
            "board",
            queue=queue_view(console, principal.user),
        )

    @get("/{candidate_id:str}", guards=[allowed(FACES_REVIEW)], sync_to_thread=True)
    def detail(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        candidate_id: FromPath[str],
        done: FromQuery[str] = "",
    ) -> Template:
        """The candidate with both faces, the match, the person and the decisions."""
        return self._page(request, console, principal, candidate_id, done=done)

    def _page(
        self,
        request: Request[Any, Any, Any],
        console: Console,
        principal: Principal,
        candidate_id: str,
        status_code: int = 200,
        error: str = "",
        done: str = "",
    ) -> Template:
        view = candidate_view(console, candidate_id, principal.user)
        return render(
            console,
            request,
            "face.html",
            "face",
            status_code=status_code,
            error=error,
            done=done,
            state_labels=STATE_LABELS,
            decision_labels=DECISION_LABELS,
            can_persons=holds(principal.role, PERSONS_VIEW),
            **view,
        )

    @get("/{candidate_id:str}/crop", guards=[allowed(FACES_REVIEW)], sync_to_thread=True)
    def crop(
        self,
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        candidate_id: FromPath[str],
    ) -> Response[bytes]:
        """The face crop the agent sent for this match (404 when there is none); the
        service audits who viewed it."""
        jpeg = console.faces.crop(candidate_id, principal.user)
        if jpeg is None:
            raise NotFound(f"face candidate {candidate_id!r} has no crop (see its crop status)")
        return Response(content=jpeg, media_type="image/jpeg", headers=IMAGE_HEADERS)

    @post("/{candidate_id:str}/confirm", guards=[allowed(FACES_REVIEW)], sync_to_thread=True)
    def confirm(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        candidate_id: FromPath[str],
    ) -> Response[Any]:
        """One confirmation (the service refuses the same user twice, audited)."""
        try:
            console.faces.confirm(candidate_id, principal.user)
        except (Conflict, InvalidRequest) as err:
            status = 409 if isinstance(err, Conflict) else 400
            return self._page(request, console, principal, candidate_id, status, str(err))
        return _back(candidate_id, "confirmed")

    @post("/{candidate_id:str}/reject", guards=[allowed(FACES_REVIEW)], sync_to_thread=True)
    def reject(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        candidate_id: FromPath[str],
        data: Annotated[RejectForm, Form],
    ) -> Response[Any]:
        """Reject the match with a reason (final; audited)."""
        try:
            console.faces.reject(candidate_id, principal.user, data.reason)
        except (Conflict, InvalidRequest) as err:
            status = 409 if isinstance(err, Conflict) else 400
            return self._page(request, console, principal, candidate_id, status, str(err))
        return _back(candidate_id, "rejected")


def _back(candidate_id: str, done: str) -> Redirect:
    return Redirect(path=f"{BASE}/{candidate_id}", query_params={"done": done}, status_code=303)
