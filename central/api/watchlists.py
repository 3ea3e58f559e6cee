"""Wanted-vehicle lists over HTTP: settings, registry uploads and single entries.

Reading needs ``watchlists:read`` (operators, supervisors, admins); every change needs
``watchlists:write`` (supervisors and admins) and a ``reason`` query parameter, and is
written to the audit log with the actor. Changes take effect at once: the service swaps in
a rebuilt matcher, and new or changed entries are matched against past sightings in the
background (historical alerts).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Final

import anyio.to_thread
import msgspec
from litestar import Controller, Request, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody, Parameter, PathParameter, QueryParameter

from central.accounts import Principal, Role
from central.api.auth import requires
from central.api.dto import Time, TimeOrDate, to_read
from central.watchlist.importer import Format, detect_format
from central.watchlist.model import ImportReport, ListChange, ListSettings
from central.watchlist.service import WatchlistService
from shared.errors import InvalidRequest
from shared.plates import fold

READ_ROLES: Final = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
WRITE_ROLES: Final = (Role.SUPERVISOR, Role.ADMIN)
MAX_UPLOAD_BYTES: Final = 512 << 20  # a national list of ~5M entries as CSV

Reason = Annotated[
    str | None,
    Parameter(description="Why the list changes (required; written to the audit log)."),
]
Name = Annotated[str, PathParameter(description="The list's name, e.g. national-stolen.")]
Key = Annotated[str, PathParameter(description="The entry's key (URL-encoded), e.g. id:42.")]


class ListRead(msgspec.Struct):
    """A list's settings and size."""

    name: str
    strict: bool
    retention_days: int
    default_priority: int
    source: str
    entries: int


class ListWrite(msgspec.Struct, frozen=True, kw_only=True):
    """Settings to set; omitted ones keep their value (a new list: the defaults)."""

    strict: bool | None = None
    retention_days: Annotated[int, msgspec.Meta(ge=1, le=36_500)] | None = None
    default_priority: Annotated[int, msgspec.Meta(ge=1, le=5)] | None = None
    source: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class ProblemRead(msgspec.Struct):
    """A rejected row: its line (JSON: entry number) and why."""

    line: int
    reason: str


class ImportRead(msgspec.Struct):
    """What an upload did; rejected rows are listed with line numbers and reasons."""

    list_name: str
    rows: int
    added: int
    updated: int
    removed: int
    unchanged: int
    rejected: int
    problems: list[ProblemRead]
    seconds: float


class EntryCreate(msgspec.Struct, frozen=True, kw_only=True):
    """A new entry, as a registry export row (Cyrillic or Latin plates).

    ``plate`` is a plate or a wildcard pattern (``?`` one character, ``*`` any run);
    ``vehicle_type``/``colour`` make an attribute entry. Times are ISO 8601 or
    ``DD.MM.YYYY``; a date-only ``valid_until`` includes that day.
    """

    id: str | None = None
    plate: str = ""
    category: str = "other"
    priority: int | None = None
    reason: str = ""
    case_ref: str = ""
    valid_from: TimeOrDate | None = None
    valid_until: TimeOrDate | None = None
    source: str = ""
    vehicle_type: str = ""
    colour: str = ""


class EntryUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """Fields to change; omitted ones keep their value."""

    plate: str | None = None
    category: str | None = None
    priority: int | None = None
    reason: str | None = None
    case_ref: str | None = None
    valid_from: TimeOrDate | None = None
    valid_until: TimeOrDate | None = None
    source: str | None = None
    vehicle_type: str | None = None
    colour: str | None = None


class EntryRead(msgspec.Struct):
    """One entry; times are RFC 3339 (UTC), validity ``[valid_from, valid_until)``."""

    list_name: str
    entry_key: str
    kind: str
    plate: str
    plate_raw: str
    category: str
    priority: int
    reason: str
    case_ref: str
    valid_from: Time | None
    valid_until: Time | None
    source: str
    vehicle_type: str
    colour: str
    listed_at: Time
    updated_at: Time


class EntryPage(msgspec.Struct):
    """A page of entries by key; pass ``next`` as ``after`` for the following page."""

    items: list[EntryRead]
    next: str | None


def entry_read(row: dict[str, Any]) -> EntryRead:
    """An entry as the repository gives it, for the API."""
    return to_read(row, EntryRead)


def list_read(settings: ListSettings, entries: int) -> ListRead:
    """A list's settings and size, for the API."""
    return ListRead(**msgspec.structs.asdict(settings), entries=entries)


def import_read(report: ImportReport) -> ImportRead:
    """An import report without the keys it changed."""
    return ImportRead(
        list_name=report.list_name,
        rows=report.rows,
        added=report.added,
        updated=report.updated,
        removed=report.removed,
        unchanged=report.unchanged,
        rejected=report.rejected,
        problems=[ProblemRead(p.line, p.reason) for p in report.problems],
        seconds=report.seconds,
    )


def _given(struct: msgspec.Struct) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(struct).items() if v is not None}


class WatchlistController(Controller):
    """Wanted-vehicle lists and their entries."""

    path = "/api/v1/watchlists"
    tags = ("watchlists",)

    @get(
        "/",
        guards=[requires(*READ_ROLES, scopes=["watchlists:read"])],
        sync_to_thread=True,
        summary="Wanted lists",
    )
    def lists(self, watchlists: NamedDependency[WatchlistService]) -> list[ListRead]:
        """Every list with its settings and number of entries."""
        repo = watchlists.repository
        return [list_read(s, repo.count(s.name)) for s in watchlists.lists()]

    @get(
        "/{name:str}",
        guards=[requires(*READ_ROLES, scopes=["watchlists:read"])],
        sync_to_thread=True,
        summary="One list's settings",
    )
    def get_list(self, watchlists: NamedDependency[WatchlistService], name: Name) -> ListRead:
        """A list's settings and number of entries."""
        return list_read(watchlists.get_list(name), watchlists.repository.count(name))

    @put(
        "/{name:str}",
        guards=[requires(*WRITE_ROLES, scopes=["watchlists:write"])],
        sync_to_thread=True,
        summary="Create a list or change its settings",
    )
    def put_list(
        self,
        watchlists: NamedDependency[WatchlistService],
        principal: NamedDependency[Principal],
        name: Name,
        data: JSONBody[ListWrite],
        reason: Reason = None,
    ) -> ListRead:
        """Settings given are set, the others kept; a strictness change applies at once."""
        change = ListChange(**_given(data))
        settings = watchlists.configure(name, change, principal.user, reason or "")
        return list_read(settings, watchlists.repository.count(name))

    @delete(
        "/{name:str}",
        guards=[requires(*WRITE_ROLES, scopes=["watchlists:write"])],
        sync_to_thread=True,
        summary="Remove a list and its entries",
    )
    def delete_list(
        self,
        watchlists: NamedDependency[WatchlistService],
        principal: NamedDependency[Principal],
        name: Name,
        reason: Reason = None,
    ) -> None:
        """The list and every entry of it go (alerts raised before stay)."""
        watchlists.delete_list(name, principal.user, reason or "")

    @post(
        "/{name:str}/import",
        guards=[requires(*WRITE_ROLES, scopes=["watchlists:write"])],
        status_code=200,
        request_max_body_size=MAX_UPLOAD_BYTES,
        summary="Upload a registry export",
    )
    async def upload(
        self,
        request: Request[Any, Any, Any],
        watchlists: NamedDependency[WatchlistService],
        principal: NamedDependency[Principal],
        name: Name,
        reason: Reason = None,
        format_: Annotated[
            str | None,
            QueryParameter(
                name="format",
                description="csv, json or jsonl (default: from the Content-Type, else csv).",
            ),
        ] = None,
        full: Annotated[
            bool, Parameter(description="The file is the whole list: remove entries it lacks.")
        ] = False,
        allow_mass_removal: Annotated[
            bool,
            Parameter(description="With full: accept an export removing over half the list."),
        ] = False,
        strict: Annotated[bool | None, Parameter(description="Exact matches only.")] = None,
        retention_days: Annotated[
            int | None, Parameter(ge=1, le=36_500, description="Days to keep hit evidence.")
        ] = None,
        default_priority: Annotated[
            int | None, Parameter(ge=1, le=5, description="Priority of rows without one.")
        ] = None,
        source: Annotated[str | None, Parameter(description="Where the list comes from.")] = None,
    ) -> ImportRead:
        """Add and update entries from an export in the request body (with ``full``, remove
        the others too).

        The body is the file as the registry wrote it: CSV (UTF-8, delimiter ``,`` ``;`` or
        tab, English or Ukrainian column names), a JSON array or ``{"list": {...},
        "entries": [...]}``, or JSON Lines. A new list is created; an existing one keeps
        its settings unless given here (or in a JSON export's ``list`` object). A full
        export that would remove over half of the list is refused (400) unless
        ``allow_mass_removal``: a truncated file must not empty a wanted list. Rejected
        rows do not stop the upload: the answer lists them with line numbers and reasons.
        """
        fmt = _format(format_, request.headers.get("content-type", ""))
        change = ListChange(
            strict=strict,
            retention_days=retention_days,
            default_priority=default_priority,
            source=source,
        )
        data = await request.body()
        report = await anyio.to_thread.run_sync(
            partial(
                watchlists.upload,
                name,
                data,
                fmt,
                full=full,
                max_remove_share=1.0 if allow_mass_removal else 0.5,
                change=change,
                actor=principal.user,
                reason=reason or "",
            )
        )
        return import_read(report)

    @get(
        "/{name:str}/entries",
        guards=[requires(*READ_ROLES, scopes=["watchlists:read"])],
        sync_to_thread=True,
        summary="A list's entries",
    )
    def entries(
        self,
        watchlists: NamedDependency[WatchlistService],
        name: Name,
        plate: Annotated[
            str | None, Parameter(description="Only plates containing this (folded).")
        ] = None,
        category: Annotated[str | None, Parameter(description="stolen, wanted, ...")] = None,
        after: Annotated[str, Parameter(description="'next' of the page before.")] = "",
        limit: Annotated[int, Parameter(ge=1, le=1000, description="Page size.")] = 100,
    ) -> EntryPage:
        """Entries in key order, filtered, in pages."""
        rows = watchlists.entries(
            name,
            plate=fold(plate) if plate else None,
            category=category,
            after=after,
            limit=limit,
        )
        items = [entry_read(r) for r in rows]
        return EntryPage(items, items[-1].entry_key if len(items) == limit else None)

    @post(
        "/{name:str}/entries",
        guards=[requires(*WRITE_ROLES, scopes=["watchlists:write"])],
        sync_to_thread=True,
        summary="Add an entry",
    )
    def add_entry(
        self,
        watchlists: NamedDependency[WatchlistService],
        principal: NamedDependency[Principal],
        name: Name,
        data: JSONBody[EntryCreate],
        reason: Reason = None,
    ) -> EntryRead:
        """A new entry; it matches live sightings at once and past ones in the background."""
        row = watchlists.add_entry(name, _given(data), principal.user, reason or "")
        return entry_read(row)

    @get(
        "/{name:str}/entries/{key:str}",
        guards=[requires(*READ_ROLES, scopes=["watchlists:read"])],
        sync_to_thread=True,
        summary="One entry",
    )
    def get_entry(
        self,
        watchlists: NamedDependency[WatchlistService],
        name: Name,
        key: Key,
    ) -> EntryRead:
        """One entry of a list."""
        return entry_read(watchlists.entry(name, key))

    @patch(
        "/{name:str}/entries/{key:str}",
        guards=[requires(*WRITE_ROLES, scopes=["watchlists:write"])],
        sync_to_thread=True,
        summary="Change an entry",
    )
    def edit_entry(
        self,
        watchlists: NamedDependency[WatchlistService],
        principal: NamedDependency[Principal],
        name: Name,
        key: Key,
        data: JSONBody[EntryUpdate],
        reason: Reason = None,
    ) -> EntryRead:
        """Change the given fields of an entry; the change applies at once."""
        row = watchlists.edit_entry(name, key, _given(data), principal.user, reason or "")
        return entry_read(row)

    @delete(
        "/{name:str}/entries/{key:str}",
        guards=[requires(*WRITE_ROLES, scopes=["watchlists:write"])],
        sync_to_thread=True,
        summary="Remove an entry",
    )
    def remove_entry(
        self,
        watchlists: NamedDependency[WatchlistService],
        principal: NamedDependency[Principal],
        name: Name,
        key: Key,
        reason: Reason = None,
    ) -> None:
        """Remove an entry; it stops matching at once."""
        watchlists.remove_entry(name, key, principal.user, reason or "")


def _format(given: str | None, content_type: str) -> Format:
    if given is None:
        return detect_format("", content_type)
    if given not in ("csv", "json", "jsonl"):
        raise InvalidRequest(f"format: expected csv, json or jsonl, got {given!r}")
    return given  # type: ignore[return-value]
