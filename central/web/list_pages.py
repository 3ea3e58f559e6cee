"""The wanted-list pages: the lists with their size, settings and last import; one list's
entries (filtered by plate, category and validity, in pages); uploading a registry export
with its progress and per-row error report; adding, editing, expiring and removing entries
and changing a list's settings, each with a required reason.

Everything is done by ``WatchlistService`` (the REST API's service: the same checks, the
same audit rows with the actor and reason). Reading follows the API's read roles
(``LISTS_VIEW``), every change its write roles (``LISTS_MANAGE``); the forms of a change
are drawn only for a role that may make it. A change the service refuses (no reason, a
malformed field) is answered on the same page with the message and the typed values kept.
"""

from __future__ import annotations

import datetime as dt
import time
from functools import partial
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

import anyio.to_thread
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template

from central.accounts.model import Principal
from central.api.watchlists import MAX_UPLOAD_BYTES
from central.watchlist.importer import detect_format
from central.watchlist.model import (
    CATEGORIES,
    PRIORITY_MAX,
    PRIORITY_MIN,
    VALIDITIES,
    ListChange,
    Validity,
)
from central.web.access import LISTS_MANAGE, LISTS_VIEW, allowed, holds
from central.web.list_forms import (
    PAGE,
    EntryForm,
    KeyForm,
    ListForm,
    choice,
    entry_fields,
    expiry,
    list_change,
    validity_of,
)
from central.web.pages import Console, render
from central.web.timefields import to_field
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.plates import fold

BASE: Final = "/console/lists"
Form = Body(media_type=RequestEncodingType.URL_ENCODED)
Refused = (InvalidRequest, Conflict)


def _status(err: Exception) -> int:
    return 409 if isinstance(err, Conflict) else 400


def _list_url(name: str) -> str:
    return f"{BASE}/{name}"


class ListPageController(Controller):
    """``/console/lists``."""

    path = BASE
    include_in_schema = False

    # -- the lists ----------------------------------------------------------------------

    @get("/", guards=[allowed(LISTS_VIEW)], sync_to_thread=True)
    def overview(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
    ) -> Template:
        """Every list with its entries, settings and last import or sync."""
        return self._overview(request, console, principal)

    def _overview(
        self,
        request: Request[Any, Any, Any],
        console: Console,
        principal: Principal,
        status_code: int = 200,
        **facts: Any,
    ) -> Template:
        repo = console.watchlists.repository
        lists = console.watchlists.lists()
        return render(
            console,
            request,
            "lists.html",
            "lists",
            status_code=status_code,
            lists=lists,
            counts={s.name: repo.count(s.name) for s in lists},
            syncs=repo.last_syncs(),
            can_manage=holds(principal.role, LISTS_MANAGE),
            priorities=range(PRIORITY_MIN, PRIORITY_MAX + 1),
            **{"form": ListForm(), "error": "", **facts},
        )

    @post("/", guards=[allowed(LISTS_MANAGE)], sync_to_thread=True)
    def create(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        data: Annotated[ListForm, Form],
    ) -> Response[Any]:
        """A new list with its settings (audited as ``watchlist.create``)."""
        name = data.name.strip()
        try:
            if name in {s.name for s in console.watchlists.lists()}:
                raise Conflict(f"a list named {name!r} exists already; change its settings")
            console.watchlists.configure(name, list_change(data), principal.user, data.why)
        except Refused as err:
            return self._overview(
                request, console, principal, _status(err), form=data, error=str(err)
            )
        return Redirect(path=_list_url(name), status_code=303)

    # -- one list -----------------------------------------------------------------------

    @get("/{name:str}", guards=[allowed(LISTS_VIEW)], sync_to_thread=True)
    def entries(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        name: FromPath[str],
        plate: FromQuery[str] = "",
        category: FromQuery[str] = "",
        validity: FromQuery[str] = "",
        after: FromQuery[str] = "",
        done: FromQuery[str] = "",
        key: FromQuery[str] = "",
    ) -> Template:
        """A page of the list's entries, filtered; settings and upload for managers."""
        return self._list(
            request,
            console,
            principal,
            name,
            plate,
            category,
            validity,
            after,
            done=done,
            done_key=key,
        )

    def _list(
        self,
        request: Request[Any, Any, Any],
        console: Console,
        principal: Principal,
        name: str,
        plate: str = "",
        category: str = "",
        validity: str = "",
        after: str = "",
        status_code: int = 200,
        **facts: Any,
    ) -> Template:
        settings = console.watchlists.get_list(name)
        chosen_validity: Validity | None = choice(validity, VALIDITIES, "validity")  # type: ignore[assignment]
        rows = console.watchlists.entries(
            name,
            plate=fold(plate) if plate.strip() else None,
            category=choice(category, CATEGORIES, "category"),
            validity=chosen_validity,
            after=after,
            limit=PAGE + 1,
        )
        now = time.time()
        more = rows[PAGE - 1]["entry_key"] if len(rows) > PAGE else None
        return render(
            console,
            request,
            "list.html",
            "lists",
            status_code=status_code,
            settings=settings,
            count=console.watchlists.repository.count(name),
            sync=console.watchlists.repository.last_syncs().get(name),
            rows=rows[:PAGE],
            states={r["entry_key"]: validity_of(r, now) for r in rows},
            chosen={"plate": plate, "category": category, "validity": validity, "after": after},
            more=more,
            categories=CATEGORIES,
            validities=VALIDITIES,
            priorities=range(PRIORITY_MIN, PRIORITY_MAX + 1),
            can_manage=holds(principal.role, LISTS_MANAGE),
            **{
                "error": "",
                "report": None,
                "settings_error": "",
                "settings_form": None,
                "done": "",
                "done_key": "",
                **facts,
            },
        )

    @post("/{name:str}/settings", guards=[allowed(LISTS_MANAGE)], sync_to_thread=True)
    def settings(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        name: FromPath[str],
        data: Annotated[ListForm, Form],
    ) -> Response[Any]:
        """Change the list's settings (audited as ``watchlist.settings``)."""
        try:
            console.watchlists.get_list(name)
            console.watchlists.configure(name, list_change(data), principal.user, data.why)
        except Refused as err:
            return self._list(
                request,
                console,
                principal,
                name,
                status_code=_status(err),
                settings_error=str(err),
                settings_form=data,
            )
        return Redirect(path=_list_url(name), query_params={"done": "settings"}, status_code=303)

    # -- uploads ------------------------------------------------------------------------

    @post(
        "/{name:str}/upload",
        guards=[allowed(LISTS_MANAGE)],
        request_max_body_size=MAX_UPLOAD_BYTES,
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        name: FromPath[str],
    ) -> Response[Any]:
        """Load a registry export into the list; the report (or why it was refused) is
        answered as a fragment to the page's script, as the list page to a plain form."""
        form = await request.form()
        file, why = form.get("file"), str(form.get("why") or "")
        report, error = None, ""
        try:
            if not isinstance(file, UploadFile) or not file.filename:
                raise InvalidRequest("file: expected a registry export (CSV, JSON or JSON Lines)")
            data = await file.read()
            fmt = detect_format(file.filename, file.content_type or "")
            run = partial(
                console.watchlists.upload,
                name,
                data,
                fmt,
                full=form.get("full") == "on",
                change=ListChange(),
                actor=principal.user,
                reason=why,
                max_remove_share=1.0 if form.get("allow_mass_removal") == "on" else 0.5,
            )
            report = await anyio.to_thread.run_sync(run)
        except (*Refused, NotFound) as err:
            error = str(err)
        status = 400 if error else 200
        if request.headers.get("hx-request") == "true":
            return render(
                console,
                request,
                "_import_report.html",
                "lists",
                status_code=status,
                report=report,
                error=error,
                name=name,
            )
        return await anyio.to_thread.run_sync(
            partial(
                self._list,
                request,
                console,
                principal,
                name,
                status_code=status,
                report=report,
                error=error,
            )
        )

    @get("/{name:str}/progress", guards=[allowed(LISTS_MANAGE)], sync_to_thread=True)
    def progress(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        name: FromPath[str],
    ) -> Template:
        """The list's large imports under way: staged so far, applied so far."""
        running = console.watchlists.repository.imports_running(name)
        return render(console, request, "_import_progress.html", "lists", running=running)

    # -- entries ------------------------------------------------------------------------

    @get("/{name:str}/entry", guards=[allowed(LISTS_MANAGE)], sync_to_thread=True)
    def entry_form(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        name: FromPath[str],
        key: FromQuery[str] = "",
        done: FromQuery[str] = "",
    ) -> Template:
        """The form of a new entry, or of the entry ``key`` with its expire and remove forms."""
        return self._entry_page(request, console, principal, name, key, done=done)

    def _entry_page(
        self,
        request: Request[Any, Any, Any],
        console: Console,
        principal: Principal,
        name: str,
        key: str,
        form: EntryForm | None = None,
        status_code: int = 200,
        error: str = "",
        done: str = "",
    ) -> Template:
        settings = console.watchlists.get_list(name)
        entry = console.watchlists.entry(name, key) if key else None
        tz = console.translator(console.user_prefs(principal)).tz
        if form is None:
            form = EntryForm() if entry is None else _form_of(entry, tz)
        return render(
            console,
            request,
            "entry.html",
            "lists",
            status_code=status_code,
            settings=settings,
            entry=entry,
            form=form,
            error=error,
            done=done,
            state=validity_of(entry, time.time()) if entry else "",
            categories=CATEGORIES,
            priorities=range(PRIORITY_MIN, PRIORITY_MAX + 1),
        )

    @post("/{name:str}/entry", guards=[allowed(LISTS_MANAGE)], sync_to_thread=True)
    def save_entry(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        name: FromPath[str],
        data: Annotated[EntryForm, Form],
    ) -> Response[Any]:
        """Add the entry (no ``key``) or change it (audited with the reason given)."""
        service, tz = console.watchlists, console.translator(console.user_prefs(principal)).tz
        try:
            if data.key:
                fields = entry_fields(data, tz, service.entry(name, data.key))
                row = service.edit_entry(name, data.key, fields, principal.user, data.why)
            else:
                fields = entry_fields(data, tz, None)
                row = service.add_entry(name, fields, principal.user, data.why)
        except Refused as err:
            return self._entry_page(
                request, console, principal, name, data.key, data, _status(err), str(err)
            )
        return _to_entry(name, str(row["entry_key"]), "saved")

    @post("/{name:str}/expire", guards=[allowed(LISTS_MANAGE)], sync_to_thread=True)
    def expire(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        name: FromPath[str],
        data: Annotated[KeyForm, Form],
    ) -> Response[Any]:
        """End the entry's validity now: it stops matching, and stays listed as expired."""
        change = expiry(dt.datetime.now(dt.UTC))
        try:
            console.watchlists.edit_entry(name, data.key, change, principal.user, data.why)
        except Refused as err:
            return self._entry_page(
                request,
                console,
                principal,
                name,
                data.key,
                status_code=_status(err),
                error=str(err),
            )
        return _to_entry(name, data.key, "expired")

    @post("/{name:str}/remove", guards=[allowed(LISTS_MANAGE)], sync_to_thread=True)
    def remove(
        self,
        request: Request[Any, Any, Any],
        console: NamedDependency[Console],
        principal: NamedDependency[Principal],
        name: FromPath[str],
        data: Annotated[KeyForm, Form],
    ) -> Response[Any]:
        """Remove the entry from the list."""
        try:
            console.watchlists.remove_entry(name, data.key, principal.user, data.why)
        except Refused as err:
            return self._entry_page(
                request,
                console,
                principal,
                name,
                data.key,
                status_code=_status(err),
                error=str(err),
            )
        return Redirect(
            path=_list_url(name), query_params={"done": "removed", "key": data.key}, status_code=303
        )


def _to_entry(name: str, key: str, done: str) -> Redirect:
    return Redirect(
        path=f"{_list_url(name)}/entry", query_params={"key": key, "done": done}, status_code=303
    )


def _form_of(entry: dict[str, Any], tz: ZoneInfo) -> EntryForm:
    """A stored entry as its form shows it."""
    key = str(entry["entry_key"])
    return EntryForm(
        key=key,
        id=key[3:] if key.startswith("id:") else "",
        plate=str(entry["plate_raw"] or entry["plate"]),
        category=str(entry["category"]),
        priority=str(entry["priority"]),
        entry_reason=str(entry["reason"]),
        case_ref=str(entry["case_ref"]),
        valid_from=to_field(entry["valid_from"], tz),
        valid_until=to_field(entry["valid_until"], tz),
        vehicle_type=str(entry["vehicle_type"]),
        colour=str(entry["colour"]),
    )
