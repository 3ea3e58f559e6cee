"""REST controllers for alerts: the police change feed, one alert, acknowledgements, lifecycle."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter

from central.accounts import Principal, Role
from central.alerts.model import IllegalTransition
from central.alerts.service import MAX_LIMIT, MAX_WAIT_S, AlertService
from central.api.auth import requires
from central.api.dto import AlertDetailRead, AlertRead, ChangePageRead, to_read
from central.api.errors import error_body

READ = requires(Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR, Role.POLICE_API, scopes=["alerts:read"])
POLICE_ACK = requires(Role.ADMIN, Role.SUPERVISOR, Role.POLICE_API, scopes=["alerts:ack"])
OPERATE = requires(Role.ADMIN, Role.SUPERVISOR, Role.OPERATOR, scopes=["alerts:ack"])


class TransitionRequest(msgspec.Struct, forbid_unknown_fields=True):
    """A lifecycle step: the target state and why (required to reject)."""

    to: str
    reason: str = ""


def illegal_transition(_: Request[Any, Any, Any], exc: IllegalTransition) -> Response[Any]:
    """An illegal lifecycle step is a conflict with the alert's current state."""
    return Response(error_body(409, str(exc)), status_code=409)


class AlertController(Controller):
    """Alerts for police clients and operators."""

    path = "/api/v1/alerts"
    tags = ("alerts",)
    exception_handlers = {IllegalTransition: illegal_transition}  # noqa: RUF012

    @get("/", guards=[READ], summary="Alert changes after a cursor, optionally long-polling")
    async def changes(
        self,
        alerts: NamedDependency[AlertService],
        after: Annotated[
            str | None,
            Parameter(description="Cursor from a previous page's 'next'; empty from the start."),
        ] = None,
        limit: Annotated[
            int, Parameter(ge=1, le=MAX_LIMIT, description="Changes per page, at most.")
        ] = 100,
        wait: Annotated[
            float,
            Parameter(
                ge=0, le=MAX_WAIT_S, description="Seconds to wait for a change when none is new."
            ),
        ] = 0.0,
    ) -> ChangePageRead:
        """Every change to any alert (created, sighted again, transition, police ack) in order.

        An alert changed after the cursor appears again as a new change. Returns at once
        when changes are waiting, else when one arrives or ``wait`` seconds pass (empty).
        """
        return to_read(await alerts.changes(after, limit, wait), ChangePageRead)

    @get(
        "/{alert_id:int}",
        guards=[READ],
        sync_to_thread=True,
        summary="One alert with its trail and history",
    )
    def detail(
        self,
        alerts: NamedDependency[AlertService],
        alert_id: FromPath[int],
        principal: NamedDependency[Principal],
    ) -> AlertDetailRead:
        """The alert, every sighting on its trail (with thumbnail URLs) and every step."""
        return to_read(alerts.get(alert_id, principal.user), AlertDetailRead)

    @post(
        "/{alert_id:int}/ack",
        guards=[POLICE_ACK],
        sync_to_thread=True,
        status_code=200,
        summary="Police acknowledge receipt of an alert",
    )
    def ack(
        self,
        alerts: NamedDependency[AlertService],
        alert_id: FromPath[int],
        principal: NamedDependency[Principal],
    ) -> AlertRead:
        """Record who received the alert, and when (idempotent per client)."""
        return to_read(alerts.police_ack(alert_id, principal.user), AlertRead)

    @post(
        "/{alert_id:int}/transition",
        guards=[OPERATE],
        sync_to_thread=True,
        status_code=200,
        summary="Move an alert through its lifecycle",
    )
    def transition(
        self,
        alerts: NamedDependency[AlertService],
        alert_id: FromPath[int],
        data: JSONBody[TransitionRequest],
        principal: NamedDependency[Principal],
    ) -> AlertRead:
        """new -> acknowledged -> dispatched -> resolved, or rejected with a reason.

        An illegal step is answered 409 with the allowed next states; a rejection without
        a reason or an unknown state 400.
        """
        return to_read(alerts.transition(alert_id, data.to, data.reason, principal.user), AlertRead)
