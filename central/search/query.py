"""What an investigator asks for, validated: plate patterns, time ranges and the cursor.

Plate matching modes:

* ``exact``: the folded plate (Cyrillic or Latin, any separators) equals a stored text;
* ``wildcard``: ``?`` is one character and ``*`` any run (``AT12??B?``, ``*1234*``);
  folded first, then turned into a LIKE pattern with ``%``, ``_`` and ``\\`` escaped;
* ``fuzzy``: OCR-equivalent (0/O/D/Q, 1/I, 8/B, 5/S, 2/Z, 6/G, the matcher's
  ``canonical`` classes) plus at most one inserted, deleted or substituted character.

Every mode looks at the plate as read, the raw OCR text and every stored candidate.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from central.watchlist.index import canonical
from shared.errors import InvalidRequest
from shared.plates import fold

MatchMode = Literal["exact", "wildcard", "fuzzy"]
MODES: Final[tuple[MatchMode, ...]] = ("exact", "wildcard", "fuzzy")
MAX_LIMIT: Final = 1000
MAX_PLATE: Final = 16
MIN_FUZZY: Final = 4
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_PLATE_CHARS: Final = re.compile(r"[A-Z0-9]+")
_PATTERN_CHARS: Final = re.compile(r"[A-Z0-9?*]+")


def parse_time(value: str | None, name: str) -> datetime | None:
    """A time parameter: ISO 8601 (naive means UTC) or UNIX seconds.

    Raises:
        InvalidRequest: Neither form.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return datetime.fromtimestamp(float(text), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidRequest(
            f"{name}: expected ISO 8601 (2026-11-24T14:00:00Z) or UNIX seconds, got {value!r}"
        ) from err
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def like_escape(text: str) -> str:
    """Escape LIKE's own wildcards (``%``, ``_``) and the escape character ``\\``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class PlateQuery:
    """A validated plate condition.

    Attributes:
        mode: exact, wildcard or fuzzy.
        text: The folded plate or pattern (``?``/``*`` kept for wildcards).
    """

    mode: MatchMode
    text: str

    @classmethod
    def parse(cls, raw: str, mode: str | None) -> PlateQuery:
        """Fold and check ``raw``; ``mode`` None picks wildcard when it has ``?``/``*``.

        Raises:
            InvalidRequest: Unknown mode, empty plate, forbidden characters or length.
        """
        text = fold(raw)
        chosen = mode or ("wildcard" if ("*" in text or "?" in text) else "exact")
        if chosen not in MODES:
            raise InvalidRequest(f"match: expected one of {', '.join(MODES)}, got {mode!r}")
        allowed = _PATTERN_CHARS if chosen == "wildcard" else _PLATE_CHARS
        if not text or not allowed.fullmatch(text) or len(text) > MAX_PLATE:
            what = "letters, digits, ? and *" if chosen == "wildcard" else "letters and digits"
            raise InvalidRequest(
                f"plate: expected 1-{MAX_PLATE} {what} ({chosen} match), got {raw!r}"
            )
        if chosen == "wildcard" and not text.strip("*?"):
            raise InvalidRequest(f"plate: expected at least one letter or digit, got {raw!r}")
        if chosen == "fuzzy" and len(text) < MIN_FUZZY:
            raise InvalidRequest(
                f"plate: fuzzy match needs at least {MIN_FUZZY} characters, got {raw!r}"
            )
        return cls(chosen, text)

    @property
    def key(self) -> str:
        """Canonical (OCR-class) key of the plate, or of a pattern's literal prefix."""
        literal = re.split(r"[?*]", self.text, maxsplit=1)[0]
        return canonical(literal).decode("ascii")

    @property
    def like(self) -> str:
        """The folded pattern as a LIKE pattern (escape character ``\\``)."""
        escaped = like_escape(self.text)
        return escaped.replace("?", "_").replace("*", "%")


@dataclass(frozen=True)
class Cursor:
    """Keyset position: the last row of the previous page (ordering newest first)."""

    captured_at: datetime
    event_id: str

    @classmethod
    def at_us(cls, captured_us: int, event_id: str) -> Cursor:
        """A cursor from the capture time in exact epoch microseconds."""
        return cls(EPOCH + timedelta(microseconds=captured_us), event_id)

    def encode(self) -> str:
        """Opaque URL-safe token (exact to the microsecond)."""
        micros = (self.captured_at - EPOCH) // timedelta(microseconds=1)
        raw = f"{micros}|{self.event_id}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, token: str) -> Cursor:
        """Parse a token from ``encode``.

        Raises:
            InvalidRequest: Not a token this service made.
        """
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
            micros, _, event_id = raw.partition("|")
            return cls.at_us(int(micros), str(uuid.UUID(event_id)))
        except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError, OSError) as err:
            raise InvalidRequest(f"cursor: expected a token from 'next', got {token!r}") from err


@dataclass(frozen=True)
class SearchQuery:
    """A sighting search; every given condition must hold.

    Attributes:
        plate: Plate condition, or None for any vehicle.
        start: Captured at or after (inclusive).
        end: Captured before (exclusive).
        camera_ids: Any of these cameras (empty: all).
        agent_id: Only this edge agent.
        vehicle_type: Only this type (car, van, truck, ...).
        colour: Only this colour.
        limit: Page size.
        cursor: Continue after this row.
    """

    plate: PlateQuery | None = None
    start: datetime | None = None
    end: datetime | None = None
    camera_ids: tuple[str, ...] = ()
    agent_id: str | None = None
    vehicle_type: str | None = None
    colour: str | None = None
    limit: int = 50
    cursor: Cursor | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit: expected 1..{MAX_LIMIT}, got {self.limit}")
        if self.start and self.end and self.start >= self.end:
            raise InvalidRequest(
                f"from/to: expected from before to, got {self.start.isoformat()} >= "
                f"{self.end.isoformat()}"
            )

    def describe(self) -> dict[str, object]:
        """The query as JSON-ready facts (for the audit log)."""
        return {
            "plate": self.plate.text if self.plate else None,
            "match": self.plate.mode if self.plate else None,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
            "camera_ids": list(self.camera_ids),
            "agent_id": self.agent_id,
            "vehicle_type": self.vehicle_type,
            "colour": self.colour,
            "limit": self.limit,
            "cursor": self.cursor.encode() if self.cursor else None,
        }


@dataclass(frozen=True)
class JourneyQuery:
    """One vehicle's sightings in time order (exact folded plate, fuzzy optional)."""

    plate: PlateQuery
    start: datetime | None = None
    end: datetime | None = None
    limit: int = 1000

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= 10_000:
            raise InvalidRequest(f"limit: expected 1..10000, got {self.limit}")
        if self.plate.mode == "wildcard":
            raise InvalidRequest("plate: a journey needs one plate (exact or fuzzy), not a pattern")
        if self.start and self.end and self.start >= self.end:
            raise InvalidRequest("from/to: expected from before to")

    def describe(self) -> dict[str, object]:
        """The journey asked for as JSON-ready facts (for the audit log)."""
        return {
            "plate": self.plate.text,
            "match": self.plate.mode,
            "from": self.start.isoformat() if self.start else None,
            "to": self.end.isoformat() if self.end else None,
        }


def require_reason(reason: str | None) -> str:
    """The search reason (case number or purpose), stripped.

    Raises:
        InvalidRequest: Missing or blank.
    """
    text = (reason or "").strip()
    if len(text) < 3:
        raise InvalidRequest(
            f"reason: expected a case number or purpose (at least 3 characters), got {reason!r}"
        )
    if len(text) > 500:
        raise InvalidRequest(f"reason: expected at most 500 characters, got {len(text)}")
    return text
