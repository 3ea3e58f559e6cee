"""Who may use which part of the console: one table feeds both the navigation and the guards.

A page or action names a permission; a role holds a set of permissions. The navigation
shows only the links the signed-in role holds, and every handler is guarded with the same
permission (``allowed``), so what is not shown is not allowed either. The alert
permissions follow the REST API's guards on /api/v1/alerts (operators, supervisors and
administrators read and act; police clients use the API, engineers have no alert access).
The wanted-list permissions follow /api/v1/watchlists: operators, supervisors and
administrators read lists; supervisors and administrators change them.
The face permissions follow /api/v1/face-candidates and /api/v1/persons: operators,
supervisors and administrators review face candidates and read the wanted persons;
supervisors and administrators enrol, expire and remove persons; police clients see
neither (they get confirmed face alerts through the API only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from central.accounts.model import Role
from central.api.auth import RoleGuard, requires

ALERTS_VIEW: Final = "alerts.view"
ALERTS_ACT: Final = "alerts.act"
AUDIT_VIEW: Final = "audit.view"
API_DOCS: Final = "api.docs"
SEARCH: Final = "search"  # as /api/v1/sightings/search: operators, supervisors, admins
EVIDENCE_EXPORT: Final = "evidence.export"
HEALTH_VIEW: Final = "health.view"
LISTS_VIEW: Final = "lists.view"
LISTS_MANAGE: Final = "lists.manage"
FACES_REVIEW: Final = "faces.review"  # face candidates: view, confirm, reject
PERSONS_VIEW: Final = "persons.view"
PERSONS_MANAGE: Final = "persons.manage"

_SUPERVISE: Final = frozenset(
    {ALERTS_VIEW, ALERTS_ACT, AUDIT_VIEW, API_DOCS, SEARCH, EVIDENCE_EXPORT, HEALTH_VIEW}
    | {LISTS_VIEW, LISTS_MANAGE}
    | {FACES_REVIEW, PERSONS_VIEW, PERSONS_MANAGE}
)

PERMISSIONS: Final[dict[Role, frozenset[str]]] = {
    Role.ADMIN: _SUPERVISE,
    Role.SUPERVISOR: _SUPERVISE,
    Role.OPERATOR: frozenset(
        {ALERTS_VIEW, ALERTS_ACT, SEARCH, EVIDENCE_EXPORT, LISTS_VIEW}
        | {FACES_REVIEW, PERSONS_VIEW}
    ),
    Role.ENGINEER: frozenset({API_DOCS, HEALTH_VIEW}),
    Role.POLICE_API: frozenset({API_DOCS}),
}


@dataclass(frozen=True)
class NavItem:
    """One link of the navigation.

    Attributes:
        key: Stable name (the current page's is marked).
        href: Where it goes.
        label: English label (translated when drawn).
        permission: What the role must hold to see it (and to open it).
    """

    key: str
    href: str
    label: str
    permission: str


NAV: Final[tuple[NavItem, ...]] = (
    NavItem("board", "/console/", "Alerts", ALERTS_VIEW),
    NavItem("search", "/console/search", "Search", SEARCH),
    NavItem("lists", "/console/lists", "Wanted lists", LISTS_VIEW),
    NavItem("persons", "/console/persons", "Wanted persons", PERSONS_VIEW),
    NavItem("audit", "/console/audit", "Audit log", AUDIT_VIEW),
    NavItem("health", "/console/health", "Health", HEALTH_VIEW),
    NavItem("api", "/schema/swagger", "API", API_DOCS),
)


def holds(role: Role, permission: str) -> bool:
    """Whether ``role`` holds ``permission``."""
    return permission in PERMISSIONS.get(role, frozenset())


def navigation(role: Role) -> list[NavItem]:
    """The links ``role`` may see, in order."""
    return [item for item in NAV if holds(role, item.permission)]


def allowed(permission: str) -> RoleGuard:
    """A guard admitting exactly the roles that hold ``permission``."""
    roles = [role for role, granted in PERMISSIONS.items() if permission in granted]
    return requires(*roles)
