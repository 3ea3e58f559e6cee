"""Sign in and out of the console, with the accounts service's sessions and login throttling.

The login form posts to ``accounts.login`` through the same ``LoginGate`` as
``POST /api/v1/auth/login``: the same password checks, waits after failures, 429 under a
flood and audit rows. A session is the same HttpOnly, SameSite=Strict cookie the API sets.
"""

from __future__ import annotations

import math
from functools import partial
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Template

from central.accounts.model import Principal
from central.accounts.prefs import LOCALES, UserPrefs
from central.api.auth import ALL_ROLES, PUBLIC, CookiePolicy, requires
from central.api.login_gate import LoginGate
from central.web.pages import LOGIN, Console, render, safe_next
from shared.errors import TooManyRequests, Unauthorized


class LoginForm(msgspec.Struct):
    """The login form's fields (the CSRF token is checked by the middleware)."""

    username: str = ""
    password: str = ""
    next: str = ""
    lang: str = ""


class SignInController(Controller):
    """``/console/login`` and ``/console/logout``."""

    path = "/console"
    include_in_schema = False

    @get("/login", opt=PUBLIC, sync_to_thread=False)
    def form(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        next: FromQuery[str] = "",
        lang: FromQuery[str] = "",
        expired: FromQuery[bool] = False,
    ) -> Template:
        """The login page (``?lang=en`` before anyone is signed in)."""
        prefs = UserPrefs(locale=lang if lang in LOCALES else LOCALES[0])
        return render(
            console,
            request,
            "login.html",
            "login",
            prefs=prefs,
            next=safe_next(next),
            username="",
            error="",
            expired=expired,
        )

    @post("/login", opt=PUBLIC, status_code=303)
    async def login(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[LoginForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
        console: NamedDependency[Console],
        cookie_policy: NamedDependency[CookiePolicy],
        login_gate: NamedDependency[LoginGate],
    ) -> Response[Any]:
        """Check the password; on success set the session cookie and go on."""
        client = request.client.host if request.client else ""
        prefs = UserPrefs(locale=data.lang if data.lang in LOCALES else LOCALES[0])
        t = console.translator(prefs)
        try:
            made = await login_gate.run(
                partial(console.accounts.login, data.username, data.password, client)
            )
        except TooManyRequests as err:
            wait = max(1, math.ceil(err.retry_after_s))
            message = t.gettext("Too many attempts. Try again in %(s)s s.", s=wait)
            return self._again(console, request, data, prefs, message, 429)
        except Unauthorized:
            message = t.gettext("Wrong user name or password.")
            return self._again(console, request, data, prefs, message, 401)
        cookie = Cookie(
            key=cookie_policy.name,
            value=made.token,
            max_age=cookie_policy.max_age_s,
            httponly=True,
            secure=cookie_policy.secure,
            samesite="strict",
            path="/",
        )
        return Redirect(path=safe_next(data.next), status_code=303, cookies=[cookie])

    @staticmethod
    def _again(
        console: Console,
        request: Request[Any, Any, Any],
        data: LoginForm,
        prefs: UserPrefs,
        error: str,
        status: int,
    ) -> Template:
        return render(
            console,
            request,
            "login.html",
            "login",
            status_code=status,
            prefs=prefs,
            next=safe_next(data.next),
            username=data.username,
            error=error,
            expired=False,
        )

    @post("/logout", guards=[requires(*ALL_ROLES)], status_code=303, sync_to_thread=True)
    def logout(
        self,
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        cookie_policy: NamedDependency[CookiePolicy],
    ) -> Redirect:
        """End the session and forget the cookie."""
        if principal.kind == "session":
            console.accounts.logout(principal)
        gone = Cookie(key=cookie_policy.name, value="", max_age=0, path="/", httponly=True)
        return Redirect(path=LOGIN, status_code=303, cookies=[gone])
