"""The live alert board: the page, its rows as a fragment, and the Server-Sent Events stream
that tells the page when to fetch the rows again (and the face-candidate queue, for
those who review it).

The stream waits on the alert change feed (``AlertService.wait_for_change``, the wait the
police long-poll uses): a board is redrawn only after an alert changed, with at most one
event per ``COALESCE_S`` however busy the feed is, and an idle board costs no query but
one check of the session every ``KEEPALIVE_S``: when the session has ended (logout,
expiry, revocation) the stream says ``ended`` and closes, and the page goes to the login.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any, Final

import anyio.to_thread
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage, Template

from central.accounts.model import Principal
from central.alerts.board import BoardFilter
from central.alerts.service import AlertService
from central.api.auth import ALL_ROLES, CookiePolicy, requires
from central.web.access import ALERTS_ACT, ALERTS_VIEW, FACES_REVIEW, allowed, holds
from central.web.face_pages import face_queue
from central.web.pages import Console, render
from shared.errors import Unauthorized

KEEPALIVE_S: Final = 15.0
COALESCE_S: Final = 0.2
FACES_CHECK_S: Final = 0.5
"""How often a reviewer's stream looks at the count of new face candidates (in memory)."""
PRIORITY_NAMES: Final = {1: "critical", 2: "high", 3: "medium", 4: "low", 5: "info"}


def _filter(console: Console, list_name: str, camera: str, state: str) -> BoardFilter:
    return BoardFilter(
        list_name=list_name, camera_id=camera, state=state, limit=console.config.max_rows
    )


class BoardController(Controller):
    """``/console/``: the board (or, for roles without alert access, the start page)."""

    path = "/console"
    include_in_schema = False

    @get("/", guards=[requires(*ALL_ROLES)], sync_to_thread=True)
    def home(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        list_name: FromQuery[str] = "",
        camera: FromQuery[str] = "",
        in_state: Annotated[str, QueryParameter(name="state")] = "",
    ) -> Template:
        """The board with its filters; the start page for roles without alert access."""
        if not holds(principal.role, ALERTS_VIEW):
            return render(console, request, "home.html", "home")
        board = console.board.board(
            _filter(console, list_name, camera, in_state), console.alerts.head
        )
        return render(
            console,
            request,
            "board.html",
            "board",
            board=board,
            options=console.board.options(),
            chosen={"list_name": list_name, "camera": camera, "state": in_state},
            can_act=holds(principal.role, ALERTS_ACT),
            priorities=PRIORITY_NAMES,
            faces=face_queue(console, principal),
        )

    @get("/board/rows", guards=[allowed(ALERTS_VIEW)], sync_to_thread=True)
    def rows(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        list_name: FromQuery[str] = "",
        camera: FromQuery[str] = "",
        in_state: Annotated[str, QueryParameter(name="state")] = "",
    ) -> Template:
        """The board's counts and rows (what the page swaps in after an event)."""
        board = console.board.board(
            _filter(console, list_name, camera, in_state), console.alerts.head
        )
        return render(
            console,
            request,
            "_board.html",
            "board",
            board=board,
            can_act=holds(principal.role, ALERTS_ACT),
            priorities=PRIORITY_NAMES,
        )

    @get("/board/events", guards=[allowed(ALERTS_VIEW)], sync_to_thread=False)
    def events(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        cookie_policy: NamedDependency[CookiePolicy],
        after: FromQuery[int] = 0,
    ) -> ServerSentEvent:
        """``changed`` events (data: the feed's head) whenever an alert changed; for face
        reviewers also ``faces`` events when a new face candidate is waiting."""
        last = request.headers.get("last-event-id", "")
        start = int(last) if last.isdigit() else after
        secret = request.cookies.get(cookie_policy.name, "")

        def session_valid() -> bool:
            try:
                console.accounts.authenticate(secret)
            except Unauthorized:
                return False
            return True

        seq = start if start > 0 else console.alerts.head
        faces = console.faces
        matched = (lambda: faces.faces_matched) if holds(principal.role, FACES_REVIEW) else None
        return ServerSentEvent(changes(console.alerts, seq, session_valid, faces_matched=matched))


async def changes(
    alerts: AlertService,
    seq: int,
    session_valid: Callable[[], bool],
    keepalive_s: float = KEEPALIVE_S,
    faces_matched: Callable[[], int] | None = None,
) -> AsyncIterator[ServerSentEventMessage]:
    """The event stream from change ``seq`` on (ends when the client goes away or the
    session ends; ``session_valid`` runs on a worker thread between changes).

    With ``faces_matched`` (the count of face candidates stored since start, for users who
    review them) a ``faces`` event also says when a new candidate is waiting: a candidate
    changes no alert until it is confirmed.
    """
    yield ServerSentEventMessage(comment="connected", retry=2000)
    faces = faces_matched() if faces_matched is not None else 0
    step = min(FACES_CHECK_S, keepalive_s) if faces_matched is not None else keepalive_s
    idle = 0.0
    while True:
        head = await alerts.wait_for_change(seq, step)
        if head > seq:
            seq, idle = head, 0.0
            yield ServerSentEventMessage(event="changed", data=str(head), id=head)
            await asyncio.sleep(COALESCE_S)
            continue
        if faces_matched is not None and (now := faces_matched()) != faces:
            faces, idle = now, 0.0
            yield ServerSentEventMessage(event="faces", data=str(now))
            await asyncio.sleep(COALESCE_S)
            continue
        idle += step
        if idle < keepalive_s:
            continue
        idle = 0.0
        if not await anyio.to_thread.run_sync(session_valid):
            yield ServerSentEventMessage(event="ended", data="session")
            return
        yield ServerSentEventMessage(comment="keepalive")
