"""The audit viewer for supervisors: the chain's verification and the latest rows."""

from __future__ import annotations

from typing import Any, Final

from litestar import Controller, Request, get
from litestar.response import Template

from central.accounts.model import Principal
from central.web.access import AUDIT_VIEW, allowed
from central.web.pages import Console, render

ROWS: Final = 100


class AuditPageController(Controller):
    """``/console/audit``."""

    path = "/console/audit"
    include_in_schema = False

    @get("/", guards=[allowed(AUDIT_VIEW)], sync_to_thread=True)
    def audit(
        self,
        request: Request[Any, Any, Any],
        console: Console,
        principal: Principal,
        actor: str = "",
        action: str = "",
    ) -> Template:
        """Whether the chain holds (the first broken row if not), then the newest rows."""
        verification = console.audit.verify()
        rows = console.audit.query(actor=actor or None, action=action or None, limit=ROWS)
        details = {"actor": actor, "action": action, "rows": len(rows), "via": "console"}
        console.audit.record(principal.user, "audit.view", details=details)  # as the API does
        return render(
            console,
            request,
            "audit.html",
            "audit",
            verification=verification,
            rows=rows,
            chosen={"actor": actor, "action": action},
        )
