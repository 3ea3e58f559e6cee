"""An alert's page and its actions: acknowledge, dispatch, resolve, reject.

Each action is one form (the CSRF token in it) posted to ``/console/alerts/{id}/act`` and
carried out by ``AlertService.transition``, which writes the alert's history and the audit
log. Dispatching needs the patrol crew (and takes free text); rejecting needs one of the
configured reasons (``console.reject_reasons``).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Template

from central.accounts.model import Principal
from central.alerts.model import STATES, next_states
from central.web.access import ALERTS_ACT, ALERTS_VIEW, EVIDENCE_EXPORT, allowed, holds
from central.web.board import PRIORITY_NAMES
from central.web.pages import Console, back, render
from shared.errors import InvalidRequest

MAX_TEXT: Final = 500
ACTIONS: Final = ("acknowledged", "dispatched", "resolved", "rejected")


class ActionForm(msgspec.Struct):
    """One action's fields; which are needed depends on ``to``."""

    to: str = ""
    crew: str = ""
    note: str = ""
    reason: str = ""
    next: str = ""


def action_reason(form: ActionForm, reject_reasons: list[str]) -> str:
    """The reason recorded with the step, from the form's fields.

    Raises:
        InvalidRequest: No crew to dispatch to; a rejection reason not on the list; text too
            long; an unknown action.
    """
    if form.to not in ACTIONS:
        raise InvalidRequest(f"expected an action in {list(ACTIONS)}, got {form.to!r}")
    note = form.note.strip()
    if len(note) > MAX_TEXT or len(form.crew) > 100:
        raise InvalidRequest(f"expected a note of at most {MAX_TEXT} characters")
    if form.to == "dispatched":
        crew = form.crew.strip()
        if not crew:
            raise InvalidRequest("dispatching needs the patrol crew, got none")
        return f"crew {crew}" + (f": {note}" if note else "")
    if form.to == "rejected":
        if form.reason not in reject_reasons:
            raise InvalidRequest(
                f"expected a rejection reason from the list {reject_reasons}, got {form.reason!r}"
            )
        return form.reason + (f": {note}" if note else "")
    return note


class AlertPageController(Controller):
    """``/console/alerts/{id}``."""

    path = "/console/alerts"
    include_in_schema = False

    @get("/{alert_id:int}", guards=[allowed(ALERTS_VIEW)], sync_to_thread=True)
    def detail(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        alert_id: FromPath[int],
    ) -> Template:
        """The alert with its evidence, trail, history and the actions its state allows."""
        detail = console.alerts.get(alert_id, principal.user)  # audited as alert.view
        alert = detail.alert
        latest = alert.latest or (detail.trail[-1] if detail.trail else None)
        sighting = console.board.sighting(latest.event_id) if latest else None
        can_act = holds(principal.role, ALERTS_ACT)
        actions = [a for a in ACTIONS if a in next_states(alert.kind, alert.state)]
        return render(
            console,
            request,
            "alert.html",
            "alert",
            detail=detail,
            alert=alert,
            latest=latest,
            sighting=sighting,
            actions=actions if can_act else [],
            reject_reasons=console.config.reject_reasons,
            priorities=PRIORITY_NAMES,
            states=STATES,
            can_export=holds(principal.role, EVIDENCE_EXPORT),
        )

    @post("/{alert_id:int}/act", guards=[allowed(ALERTS_ACT)], sync_to_thread=True)
    def act(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        alert_id: FromPath[int],
        data: Annotated[ActionForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Response[Any]:
        """Carry out one action (audited), then back to the page it came from."""
        reason = action_reason(data, console.config.reject_reasons)
        console.alerts.transition(alert_id, data.to, reason, principal.user)
        if request.headers.get("hx-request") == "true" and not data.next:
            return Response(content=b"", status_code=204)
        return back(data.next, f"/console/alerts/{alert_id}")
