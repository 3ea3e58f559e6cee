"""Times in console forms: ``<input type="datetime-local">`` values in the console's zone.

A browser's ``datetime-local`` field carries no zone; the console reads and writes it in
the configured time zone (the one every page shows times in), so what an operator types is
what the pages show back.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from shared.errors import InvalidRequest


def to_field(epoch: float | None, tz: ZoneInfo) -> str:
    """UNIX seconds as a ``datetime-local`` value (``YYYY-MM-DDTHH:MM``), empty for None."""
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%dT%H:%M")


def from_field(text: str, tz: ZoneInfo, name: str) -> dt.datetime | None:
    """A ``datetime-local`` value read in ``tz`` (None when empty).

    Raises:
        InvalidRequest: Not a date and time (the message names the field ``name``).
    """
    text = text.strip()
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as err:
        raise InvalidRequest(
            f"{name}: expected a date and time like 2026-12-05T14:30, got {text!r}"
        ) from err
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment
