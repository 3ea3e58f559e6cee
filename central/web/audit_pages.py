"""The audit viewer for supervisors: the chain's verification (with a link to the first
broken row), and the rows filtered by actor, action and time range, newest first, in pages.

Reading the log is itself audited (``audit.view``), as the REST API does.
"""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.response import Template

from central.accounts.model import Principal
from central.web.access import AUDIT_VIEW, allowed
from central.web.pages import Console, render
from central.web.timefields import from_field

ROWS: Final = 50


class AuditPageController(Controller):
    """``/console/audit``."""

    path = "/console/audit"
    include_in_schema = False

    @get("/", guards=[allowed(AUDIT_VIEW)], sync_to_thread=True)
    def audit(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        actor: FromQuery[str] = "",
        action: FromQuery[str] = "",
        since: FromQuery[str] = "",
        until: FromQuery[str] = "",
        before: FromQuery[int | None] = None,
    ) -> Template:
        """Whether the chain holds (the first broken row if not), then a page of rows."""
        tz = console.catalogues.get(console.user_prefs(principal).locale).tz
        start, end = from_field(since, tz, "from"), from_field(until, tz, "until")
        verification = console.audit.verify()
        rows = console.audit.query(
            actor=actor.strip() or None,
            action=action.strip() or None,
            since=start.timestamp() if start else None,
            until=end.timestamp() if end else None,
            before=before,
            limit=ROWS + 1,  # one more: whether an older page exists
        )
        older = rows[ROWS - 1].id if len(rows) > ROWS else None
        rows = rows[:ROWS]
        chosen = {"actor": actor, "action": action, "since": since, "until": until}
        details = {**chosen, "before": before, "rows": len(rows), "via": "console"}
        console.audit.record(principal.user, "audit.view", details=details)  # as the API does
        return render(
            console,
            request,
            "audit.html",
            "audit",
            verification=verification,
            rows=rows,
            chosen=chosen,
            before=before,
            older=older,
            page_size=ROWS,
        )
