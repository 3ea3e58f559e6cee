"""Mount the console on central's Litestar app: router, templates, CSRF, static files and
the OpenAPI pages (served from vendored files, never a CDN).

``central.app.create_app`` calls :func:`console_parts` and passes what it returns to
``Litestar(...)``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.handlers import get
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin, YamlRenderPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

from central.api.auth import PUBLIC
from central.web.alert_pages import AlertPageController
from central.web.audit_pages import AuditPageController
from central.web.board import BoardController
from central.web.errors import error_handlers
from central.web.evidence_pages import EvidencePageController
from central.web.face_pages import FacePageController
from central.web.health_pages import HealthPageController
from central.web.list_pages import ListPageController
from central.web.pages import HOME, Console
from central.web.person_pages import PersonPageController
from central.web.prefs_pages import PrefsController
from central.web.search_pages import SearchPageController
from central.web.sign_in import SignInController

WEB_DIR: Final = Path(__file__).parent
STATIC: Final = "/console/static"
SWAGGER: Final = f"{STATIC}/vendor/swagger-ui"
CSRF_COOKIE: Final = "varta_csrf"
CSRF_HEADER: Final = "x-csrftoken"
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; media-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def security_headers(tile_origin: str = "") -> dict[str, str]:
    """The console's headers; a configured map tile server's origin (and only that) is
    added to ``img-src`` so the journey map can show its tiles."""
    if not tile_origin:
        return dict(SECURITY_HEADERS)
    csp = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self' data:;", f"img-src 'self' data: {tile_origin};"
    )
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp}


@dataclass(frozen=True)
class ConsoleParts:
    """What the app needs to serve the console."""

    router: Router
    static: Router
    template_config: TemplateConfig[JinjaTemplateEngine]
    csrf_config: CSRFConfig
    openapi_config: OpenAPIConfig


def csrf_secret(path: Path) -> str:
    """The CSRF signing secret kept in ``path`` (made, mode 0600, on first start).

    Kept across restarts so the forms of open pages stay valid when central restarts.
    """
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secret)
    return secret


def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(WEB_DIR / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


@get("/", opt=PUBLIC, include_in_schema=False, sync_to_thread=False)
def root() -> Redirect:
    """The site's root opens the console."""
    return Redirect(path=HOME, status_code=302)


def console_parts(console: Console, data_dir: Path, cookie_secure: bool) -> ConsoleParts:
    """Build the console's router and the app-level configs it needs.

    Args:
        console: The services the pages call.
        data_dir: Central's data directory (the CSRF secret file lives there).
        cookie_secure: Send the CSRF cookie over HTTPS only (as the session cookie).
    """
    router = Router(
        path="/",
        route_handlers=[
            root,
            SignInController,
            BoardController,
            AlertPageController,
            PrefsController,
            AuditPageController,
            SearchPageController,
            EvidencePageController,
            HealthPageController,
            ListPageController,
            FacePageController,
            PersonPageController,
        ],
        dependencies={"console": Provide(lambda: console, sync_to_thread=False)},
        exception_handlers=error_handlers(console),
        response_headers=security_headers(console.config.tile_origin),
        include_in_schema=False,
    )
    static = create_static_files_router(
        path=STATIC,
        directories=[WEB_DIR / "static"],
        opt=PUBLIC,
        include_in_schema=False,
        name="console-static",
    )
    csrf = CSRFConfig(
        secret=csrf_secret(data_dir / "console_csrf.key"),
        cookie_name=CSRF_COOKIE,
        header_name=CSRF_HEADER,
        cookie_secure=cookie_secure,
        cookie_httponly=True,
        cookie_samesite="strict",
        # The REST API authenticates with bearer tokens (and refuses cross-origin changes
        # carried by the session cookie itself, central/api/auth.py): unchanged for clients.
        exclude=["^/api/", "^/schema"],
    )
    templates = TemplateConfig(
        engine=JinjaTemplateEngine.from_environment(_environment()),
    )
    openapi = OpenAPIConfig(
        title="Varta central API",
        version="1.0.0",
        path="/schema",
        render_plugins=[
            SwaggerRenderPlugin(
                path="/swagger",
                js_url=f"{SWAGGER}/swagger-ui-bundle.js",
                css_url=f"{SWAGGER}/swagger-ui.css",
                standalone_preset_js_url=f"{SWAGGER}/swagger-ui-standalone-preset.js",
                favicon=f"<link rel='icon' href='{STATIC}/favicon.svg'>",
            ),
            YamlRenderPlugin(path="/openapi.yaml"),
        ],
    )
    return ConsoleParts(router, static, templates, csrf, openapi)
