"""Checks and shapes of wanted-list changes: reasons, list names and settings, single
entries checked as export rows, and what the audit log keeps of an entry."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

import msgspec

from central.watchlist.importer import Batch, read_records
from central.watchlist.model import PRIORITY_MAX, PRIORITY_MIN, ListChange, ListSettings
from shared.errors import InvalidRequest

_ENTRY_FIELDS: Final = (
    "plate", "category", "priority", "reason", "case_ref", "valid_from", "valid_until",
    "source", "vehicle_type", "colour",
)  # fmt: skip


def require_reason(reason: str | None) -> str:
    """The reason of a change, stripped.

    Raises:
        InvalidRequest: Missing, blank or over 500 characters.
    """
    text = (reason or "").strip()
    if len(text) < 3:
        raise InvalidRequest(
            f"reason: expected why the list changes (at least 3 characters), got {reason!r}"
        )
    if len(text) > 500:
        raise InvalidRequest(f"reason: expected at most 500 characters, got {len(text)}")
    return text


def merge_settings(name: str, before: ListSettings | None, change: ListChange) -> ListSettings:
    """A list's settings after ``change``: given values set, the others kept (or defaults).

    Raises:
        InvalidRequest: A bad name or value.
    """
    check_name(name)
    given = {k: v for k, v in msgspec.structs.asdict(change).items() if v is not None}
    settings = msgspec.structs.replace(before or ListSettings(name=name), **given)
    if not PRIORITY_MIN <= settings.default_priority <= PRIORITY_MAX:
        raise InvalidRequest(
            f"default_priority: expected {PRIORITY_MIN}..{PRIORITY_MAX}, "
            f"got {settings.default_priority}"
        )
    if not 1 <= settings.retention_days <= 36_500:
        raise InvalidRequest(f"retention_days: expected 1..36500, got {settings.retention_days}")
    return settings


def check_name(name: str) -> None:
    """Raise ``InvalidRequest`` unless ``name`` is 1-100 printable characters, no outer spaces."""
    if not 1 <= len(name) <= 100 or not name.isprintable() or name != name.strip():
        raise InvalidRequest(
            f"list name: expected 1-100 printable characters without outer spaces, got {name!r}"
        )


def with_file_settings(change: ListChange, given: Mapping[str, Any]) -> ListChange:
    """``change`` completed by the settings a JSON export names (``change`` wins)."""
    names = [f for f in ListChange.__struct_fields__ if f in given]
    try:
        from_file = msgspec.convert({f: given[f] for f in names}, ListChange)
    except msgspec.ValidationError as err:
        raise InvalidRequest(f"list settings in the export: {err}") from err
    merged = {
        f: getattr(change, f) if getattr(change, f) is not None else getattr(from_file, f)
        for f in ListChange.__struct_fields__
    }
    return ListChange(**merged)


def one_entry(fields: Mapping[str, Any], default_priority: int) -> Batch:
    """One entry checked as an export row would be."""
    batch = read_records([(1, dict(fields))], default_priority)
    if batch.problems:
        raise InvalidRequest(f"entry: {batch.problems[0].reason}")
    return batch


def record_of(entry: Mapping[str, Any]) -> dict[str, Any]:
    """A stored entry as the export row that makes it again."""
    record: dict[str, Any] = {f: entry[f] for f in _ENTRY_FIELDS}
    record["plate"] = entry["plate_raw"] or entry["plate"]
    for name in ("valid_from", "valid_until"):
        if entry[name] is not None:
            record[name] = datetime.fromtimestamp(float(entry[name]), UTC).isoformat()
    key = str(entry["entry_key"])
    if key.startswith("id:"):
        record["id"] = key[3:]
    return record


def audit_facts(entry: Mapping[str, Any]) -> dict[str, Any]:
    """What the audit log keeps of an entry."""
    return {f: entry[f] for f in ("kind", "plate", *_ENTRY_FIELDS[1:])}
