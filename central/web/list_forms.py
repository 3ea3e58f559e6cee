"""The wanted-list pages' forms: their fields, and how they become the changes the
watchlist service takes (``central/watchlist/service.py`` checks them; nothing is checked
twice here but what only a form has: the ``datetime-local`` fields and the checkboxes).

A form's ``why`` is the reason of the change (required and audited by the service); an
entry's own ``reason`` (the registry's free text) is ``entry_reason`` so the two never mix.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final
from zoneinfo import ZoneInfo

import msgspec

from central.watchlist.model import ListChange, Validity
from central.web.timefields import from_field, to_field
from shared.errors import InvalidRequest

PAGE: Final = 50
_ENTRY_TEXT: Final = ("plate", "category", "case_ref", "vehicle_type", "colour")


class ListForm(msgspec.Struct, kw_only=True):
    """A list's settings (a new list: also its name) and why they change."""

    name: str = ""
    strict: str = ""
    retention_days: str = ""
    default_priority: str = ""
    source: str = ""
    why: str = ""


class EntryForm(msgspec.Struct, kw_only=True):
    """One entry as typed; ``key`` empty adds a new entry, else edits that one."""

    key: str = ""
    id: str = ""
    plate: str = ""
    category: str = "other"
    priority: str = ""
    entry_reason: str = ""
    case_ref: str = ""
    valid_from: str = ""
    valid_until: str = ""
    vehicle_type: str = ""
    colour: str = ""
    why: str = ""


class KeyForm(msgspec.Struct, kw_only=True):
    """An entry to expire or remove, and why."""

    key: str = ""
    why: str = ""


def _whole(text: str, name: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError as err:
        raise InvalidRequest(f"{name}: expected a whole number, got {text!r}") from err


def list_change(form: ListForm) -> ListChange:
    """The settings a form sets (an unchecked ``strict`` box means not strict).

    Raises:
        InvalidRequest: A number field that is not a whole number.
    """
    return ListChange(
        strict=form.strict == "on",
        retention_days=_whole(form.retention_days, "retention_days"),
        default_priority=_whole(form.default_priority, "default_priority"),
        source=form.source.strip(),
    )


def _iso(moment: dt.datetime | None) -> str:
    return moment.isoformat() if moment is not None else ""


def entry_fields(form: EntryForm, tz: ZoneInfo, before: dict[str, Any] | None) -> dict[str, Any]:
    """The fields of an entry as an export row, for ``add_entry`` or ``edit_entry``.

    Times are read in the console's zone. When editing (``before`` is the stored entry),
    a time left as the form showed it is not sent, so an entry's seconds are kept.

    Raises:
        InvalidRequest: A time that is not a date and time.
    """
    fields: dict[str, Any] = {name: getattr(form, name).strip() for name in _ENTRY_TEXT}
    fields["reason"] = form.entry_reason.strip()
    fields["priority"] = form.priority.strip()
    for name in ("valid_from", "valid_until"):
        text = getattr(form, name)
        if before is not None and text == to_field(before[name], tz):
            continue
        fields[name] = _iso(from_field(text, tz, name))
    if before is None and form.id.strip():
        fields["id"] = form.id.strip()
    return fields


def expiry(now: dt.datetime) -> dict[str, Any]:
    """The change that expires an entry at ``now``: its validity ends."""
    return {"valid_until": now.astimezone(dt.UTC).isoformat()}


def validity_of(entry: dict[str, Any], now: float) -> Validity:
    """Whether an entry is active, not yet valid or expired at ``now`` (UNIX seconds)."""
    start, end = entry["valid_from"], entry["valid_until"]
    if end is not None and end <= now:
        return "expired"
    if start is not None and start > now:
        return "pending"
    return "active"


def choice(value: str, allowed: tuple[str, ...], name: str) -> str | None:
    """A filter's value: None for empty, else one of ``allowed``.

    Raises:
        InvalidRequest: Another value.
    """
    if not value:
        return None
    if value not in allowed:
        raise InvalidRequest(f"{name}: expected one of {list(allowed)}, got {value!r}")
    return value
