"""What every console page is drawn with: the services, the signed-in user's language and
navigation, and the one function that turns a template name and its facts into a response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from litestar import Request
from litestar.response import Redirect, Template

from central.accounts.model import Principal
from central.accounts.prefs import PrefsService, UserPrefs
from central.accounts.service import AccountService
from central.alerts.board import BoardService
from central.alerts.service import AlertService
from central.audit import AuditLog
from central.camera_health import CameraHealthService
from central.config import CameraPlaceConfig, ConsoleConfig
from central.evidence import EvidenceService
from central.faces.candidates import FaceCandidates
from central.faces.service import FaceWatchlist
from central.search import SearchService
from central.watchlist.service import WatchlistService
from central.web.access import navigation
from central.web.i18n import LANGUAGE_NAMES, Catalogues, Translator

HOME: Final = "/console/"
LOGIN: Final = "/console/login"


@dataclass(frozen=True)
class Console:
    """The services the console's handlers call (built in ``central.app.create_app``).

    Attributes:
        alerts: Alert reads, the change feed and actions (audited).
        board: The board's queries.
        prefs: Language and sound per user.
        accounts: Login sessions.
        audit: The audit log (viewer).
        health: Agents, cameras and their per-minute history (health page).
        catalogues: The languages.
        config: The console's configuration.
        searches: Sighting search and journeys (audited; the REST API's service).
        evidence: Evidence packages (audited).
        cameras: Configured camera positions (the journey map).
        watchlists: The wanted lists (the REST API's service: checks, audit).
        persons: The wanted persons of face matching (the REST API's service).
        faces: Face candidates and the two-person rule (the REST API's service).
    """

    alerts: AlertService
    board: BoardService
    prefs: PrefsService
    accounts: AccountService
    audit: AuditLog
    health: CameraHealthService
    catalogues: Catalogues
    config: ConsoleConfig
    searches: SearchService
    evidence: EvidenceService
    cameras: tuple[CameraPlaceConfig, ...]
    watchlists: WatchlistService
    persons: FaceWatchlist
    faces: FaceCandidates

    def user_prefs(self, principal: Principal | None) -> UserPrefs:
        """The signed-in user's preferences (defaults for nobody)."""
        return self.prefs.get(principal.user) if principal is not None else UserPrefs()

    def translator(self, prefs: UserPrefs) -> Translator:
        """The translator of a user's language."""
        return self.catalogues.get(prefs.locale)


def render(
    console: Console,
    request: Request[Any, Any, Any],
    template: str,
    page: str,
    status_code: int = 200,
    prefs: UserPrefs | None = None,
    **facts: Any,
) -> Template:
    """A page: ``template`` with ``facts`` plus the user, language and navigation.

    Args:
        console: The console's services.
        request: The request being answered.
        template: Template file name.
        page: The page's key (marks the current link; ``data-page`` on the body).
        status_code: HTTP status.
        prefs: The user's preferences when already read (else read here).
        **facts: What the template shows.
    """
    principal = request.scope.get("user")
    if not isinstance(principal, Principal):
        principal = None
    prefs = prefs or console.user_prefs(principal)
    t = console.translator(prefs)
    context = {
        "t": t,
        "_": t.gettext,
        "ngettext": t.ngettext,
        "principal": principal,
        "prefs": prefs,
        "nav": navigation(principal.role) if principal else [],
        "page": page,
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "languages": LANGUAGE_NAMES,
        **facts,
    }
    return Template(template_name=template, context=context, status_code=status_code)


def safe_next(target: str | None, default: str = HOME) -> str:
    """Where to go after a form: only a path inside the console (no other site)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/console/"):
        return default
    if parts.path.startswith("//") or "\\" in target:
        return default
    return target


def back(target: str | None, default: str = HOME) -> Redirect:
    """A 303 to ``target`` when it is inside the console, else to ``default``."""
    return Redirect(path=safe_next(target, default), status_code=303)
