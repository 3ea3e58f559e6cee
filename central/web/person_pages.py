"""The wanted-persons pages: browse (by name and status), enrol from photos, one person's
page with their photos, expire now and remove (after a confirmation page).

Everything is done by the persons service the REST API uses (``console.persons``): it
embeds each photo with the edge's face chain and refuses one without a usable face or
with several faces (its message is shown on the form, the typed fields kept), requires
the legal basis, reason and a future expiry, bumps the watchlist version and audits every
change with the signed-in user. Reading follows the API's read roles (``PERSONS_VIEW``),
changes its write roles (``PERSONS_MANAGE``); the forms are drawn only for those.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

import anyio.to_thread
import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template

from central.accounts.model import Principal
from central.web.access import PERSONS_MANAGE, PERSONS_VIEW, allowed, holds
from central.web.face_views import (
    MAX_ENROL_BYTES,
    PERSON_STATUSES,
    STATUS_LABELS,
    enrol_person,
    person_view,
    persons_view,
)
from central.web.pages import Console, render
from central.web.timefields import from_field
from shared.errors import Conflict, InvalidRequest

BASE: Final = "/console/persons"
IMAGE_HEADERS: Final = {"Cache-Control": "private, no-store"}
Form = Body(media_type=RequestEncodingType.URL_ENCODED)


class EnrolForm(msgspec.Struct, kw_only=True):
    """The enrolment form's text fields as typed (kept when a photo is refused)."""

    name: str = ""
    legal_basis: str = ""
    reason: str = ""
    expires: str = ""


class WhyForm(msgspec.Struct, kw_only=True):
    """Why a person is expired or removed (required and audited by the service)."""

    why: str = ""


class PersonPageController(Controller):
    """``/console/persons``."""

    path = BASE
    include_in_schema = False

    @get("/", guards=[allowed(PERSONS_VIEW)], sync_to_thread=True)
    def overview(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        name: FromQuery[str] = "",
        in_status: Annotated[str, QueryParameter(name="status")] = "",
        done: FromQuery[str] = "",
        done_name: FromQuery[str] = "",
    ) -> Template:
        """The persons, filtered by name and status."""
        return render(
            console,
            request,
            "persons.html",
            "persons",
            persons=persons_view(console, name.strip(), in_status),
            chosen={"name": name, "status": in_status},
            statuses=PERSON_STATUSES,
            status_labels=STATUS_LABELS,
            can_manage=holds(principal.role, PERSONS_MANAGE),
            done=done,
            done_name=done_name,
        )

    @get("/new", guards=[allowed(PERSONS_MANAGE)], sync_to_thread=True)
    def new(self, request: Request[Any, Any, Any], console: NamedDependency[Console]) -> Template:
        """The enrolment form."""
        return _enrol_page(console, request, EnrolForm())

    @post("/new", guards=[allowed(PERSONS_MANAGE)], request_max_body_size=MAX_ENROL_BYTES)
    async def enrol(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
    ) -> Response[Any]:
        """Enrol a person from the uploaded photos; a refused photo is answered on the form."""
        form = await request.form()
        fields = EnrolForm(
            name=str(form.get("name") or ""),
            legal_basis=str(form.get("legal_basis") or ""),
            reason=str(form.get("reason") or ""),
            expires=str(form.get("expires") or ""),
        )
        photos = [
            (f.filename, await f.read())
            for f in form.getall("photos")
            if isinstance(f, UploadFile) and f.filename
        ]
        tz = console.translator(console.user_prefs(principal)).tz
        try:
            expires = from_field(fields.expires, tz, "expires")
            if expires is None:
                raise InvalidRequest("expires: expected the date and time matching stops, got none")
            run = anyio.to_thread.run_sync
            person_id = await run(
                lambda: enrol_person(console, fields, expires.timestamp(), photos, principal.user)
            )
        except (InvalidRequest, Conflict) as err:
            status = 409 if isinstance(err, Conflict) else 400
            return _enrol_page(console, request, fields, str(err), status)
        return _to_person(person_id, "enrolled")

    @get("/{person_id:str}", guards=[allowed(PERSONS_VIEW)], sync_to_thread=True)
    def detail(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        person_id: FromPath[str],
        done: FromQuery[str] = "",
    ) -> Template:
        """One person with their photos; expire and remove for managers."""
        return self._person(request, console, principal, person_id, done=done)

    def _person(
        self,
        request: Request[Any, Any, Any],
        console: Console,
        principal: Principal,
        person_id: str,
        template: str = "person.html",
        status_code: int = 200,
        error: str = "",
        done: str = "",
    ) -> Template:
        return render(
            console,
            request,
            template,
            "persons",
            status_code=status_code,
            person=person_view(console, person_id),
            status_labels=STATUS_LABELS,
            can_manage=holds(principal.role, PERSONS_MANAGE),
            error=error,
            done=done,
        )

    @get(
        "/{person_id:str}/photos/{photo_id:str}",
        guards=[allowed(PERSONS_VIEW)],
        sync_to_thread=True,
    )
    def photo(
        self,
        console: NamedDependency[Console],
        person_id: FromPath[str],
        photo_id: FromPath[str],
    ) -> Response[bytes]:
        """An enrolled photo (JPEG)."""
        jpeg = console.persons.photo(person_id, photo_id)
        return Response(content=jpeg, media_type="image/jpeg", headers=IMAGE_HEADERS)

    @post("/{person_id:str}/expire", guards=[allowed(PERSONS_MANAGE)], sync_to_thread=True)
    def expire(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        person_id: FromPath[str],
        data: Annotated[WhyForm, Form],
    ) -> Response[Any]:
        """Stop matching the person now; they stay listed as expired."""
        try:
            console.persons.expire(person_id, principal.user, data.why)
        except (InvalidRequest, Conflict) as err:
            return self._person(
                request, console, principal, person_id, status_code=400, error=str(err)
            )
        return _to_person(person_id, "expired")

    @get("/{person_id:str}/remove", guards=[allowed(PERSONS_MANAGE)], sync_to_thread=True)
    def remove_page(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        person_id: FromPath[str],
    ) -> Template:
        """The confirmation step of a removal: what is deleted, and the reason."""
        return self._person(request, console, principal, person_id, "person_remove.html")

    @post("/{person_id:str}/remove", guards=[allowed(PERSONS_MANAGE)], sync_to_thread=True)
    def remove(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        person_id: FromPath[str],
        data: Annotated[WhyForm, Form],
    ) -> Response[Any]:
        """Remove the person: photos and embeddings deleted (a tombstone stays audited)."""
        try:
            name = person_view(console, person_id)["name"]
            console.persons.remove(person_id, principal.user, data.why)
        except (InvalidRequest, Conflict) as err:
            return self._person(
                request,
                console,
                principal,
                person_id,
                "person_remove.html",
                status_code=400,
                error=str(err),
            )
        return Redirect(
            path=BASE, query_params={"done": "removed", "done_name": name}, status_code=303
        )


def _enrol_page(
    console: Console,
    request: Request[Any, Any, Any],
    form: EnrolForm,
    error: str = "",
    status_code: int = 200,
) -> Template:
    return render(
        console, request, "person_new.html", "persons", status_code, form=form, error=error
    )


def _to_person(person_id: str, done: str) -> Redirect:
    return Redirect(path=f"{BASE}/{person_id}", query_params={"done": done}, status_code=303)
