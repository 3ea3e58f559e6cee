"""Wanted-vehicle list types: list settings, entries, import and sync reports, matches.

Plates are stored folded (``shared.plates.fold``: Latin look-alikes, no separators); the
registry's own spelling is kept in ``plate_raw``. An entry is one of three kinds:

* ``plate``: a full plate, matched exactly and (on non-strict lists) OCR-tolerantly;
* ``pattern``: a wildcard plate, ``?`` one character, ``*`` any run (``AT12??B?``, ``*1234*``);
* ``attribute``: vehicle type and/or colour, optionally with a plate pattern (``AT12*``).

Times are UTC. Validity is the half-open interval ``[valid_from, valid_until)``; an empty
bound is open.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal

from msgspec import Struct

Category = Literal["stolen", "wanted", "violation", "crash", "other"]
EntryKind = Literal["plate", "pattern", "attribute"]
MatchKind = Literal["exact", "confusion", "edit", "pattern", "attribute"]
Validity = Literal["active", "pending", "expired"]

CATEGORIES: Final[tuple[Category, ...]] = ("stolen", "wanted", "violation", "crash", "other")
VALIDITIES: Final[tuple[Validity, ...]] = ("active", "pending", "expired")
PRIORITY_MIN: Final = 1  # most urgent
PRIORITY_MAX: Final = 5

# What registries write, mapped to the vocabulary edge vision reports (shared/wire.py Vehicle).
VEHICLE_TYPES: Final[dict[str, str]] = {
    "car": "car", "van": "van", "truck": "truck", "bus": "bus", "motorcycle": "motorcycle",
    "легковий": "car", "фургон": "van", "мікроавтобус": "van", "вантажний": "truck",
    "автобус": "bus", "мотоцикл": "motorcycle",
}  # fmt: skip
COLOURS: Final[dict[str, str]] = {
    "white": "white", "gray": "gray", "grey": "gray", "silver": "gray", "yellow": "yellow",
    "red": "red", "green": "green", "blue": "blue", "black": "black",
    "білий": "white", "сірий": "gray", "срібний": "gray", "сріблястий": "gray",
    "жовтий": "yellow", "червоний": "red", "зелений": "green", "синій": "blue",
    "чорний": "black",
}  # fmt: skip


class ListSettings(Struct, frozen=True, kw_only=True):
    """Settings of one wanted-vehicle list.

    Attributes:
        name: Unique list name, e.g. ``national-stolen``.
        strict: Exact matches only: no OCR confusions, no insertion or deletion.
        retention_days: How long evidence of a hit on this list is kept.
        default_priority: Priority for entries that carry none (1 most urgent .. 5).
        source: Where the list comes from (registry name, URL or drop folder).
    """

    name: str
    strict: bool = False
    retention_days: int = 90
    default_priority: int = 3
    source: str = ""


class ListChange(Struct, frozen=True, kw_only=True):
    """Settings to change on a list; None keeps the current value (or the default)."""

    strict: bool | None = None
    retention_days: int | None = None
    default_priority: int | None = None
    source: str | None = None


class WatchEntry(Struct, frozen=True, kw_only=True):
    """One entry of a wanted-vehicle list.

    Attributes:
        list_name: The list the entry belongs to.
        entry_key: Identity within the list, stable across exports (the registry id when the
            export has one, else derived from plate/pattern and attributes).
        kind: ``plate``, ``pattern`` or ``attribute``.
        plate: Folded plate or wildcard pattern; empty for an attribute-only entry.
        plate_raw: The plate as the registry wrote it (often Cyrillic).
        category: stolen, wanted, violation, crash or other.
        priority: 1 (most urgent) .. 5.
        reason: Free text from the registry.
        case_ref: Case or authorisation reference.
        valid_from: Start of validity (UTC) or None for open.
        valid_until: End of validity, exclusive (UTC), or None for open.
        source: Source named by the registry row.
        vehicle_type: Required vehicle type (car, van, ...) or empty.
        colour: Required colour (white, gray, ...) or empty.
    """

    list_name: str
    entry_key: str
    kind: EntryKind
    plate: str
    plate_raw: str = ""
    category: Category = "other"
    priority: int = 3
    reason: str = ""
    case_ref: str = ""
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    source: str = ""
    vehicle_type: str = ""
    colour: str = ""


class RowProblem(Struct, frozen=True):
    """A row that was skipped: ``line`` is the 1-based line (or JSON entry number)."""

    line: int
    reason: str


class ImportReport(Struct, kw_only=True):
    """What an import or sync did to one list.

    Attributes:
        list_name: The list.
        source: File path or URL read.
        rows: Data rows read (accepted and rejected).
        added: Entries new to the list.
        updated: Entries whose content changed.
        removed: Entries dropped because a full export no longer holds them.
        unchanged: Entries identical to the stored ones.
        problems: Rejected rows with line number and reason.
        not_modified: The source reported no change (HTTP 304), nothing was read.
        seconds: Wall time of the import.
        changed: Keys of the entries added or updated (for past-read matching; the API
            answers with the counts only).
    """

    list_name: str
    source: str
    rows: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    problems: list[RowProblem] = []
    not_modified: bool = False
    seconds: float = 0.0
    changed: list[str] = []

    @property
    def rejected(self) -> int:
        """Number of rows skipped as malformed."""
        return len(self.problems)


class Substitution(Struct, frozen=True, array_like=True):
    """An OCR-equivalent character: ``[position, read, listed]`` (0-based position in read)."""

    position: int
    read: str
    listed: str


class Match(Struct, frozen=True, kw_only=True):
    """One watchlist entry a sighting matched.

    Attributes:
        entry: The matched entry.
        list_name: Its list (same as ``entry.list_name``).
        kind: exact, confusion (OCR-equivalent characters), edit (one insertion or
            deletion, possibly with confusions), pattern (wildcard) or attribute.
        score: 0..1; match quality weighted by the confidence of the candidate (and of
            the vehicle type/colour for attribute entries). Higher is stronger.
        candidate: The folded candidate text that matched ('' for attribute-only entries).
        candidate_index: 0 = the plate's text, 1 = its raw OCR read, 2.. = ``candidates``.
        candidate_confidence: Confidence the reader gave that candidate.
        substitutions: OCR-equivalent characters between read and listed plate.
        edit: ``insert`` (read has an extra character), ``delete`` (read lacks one) or ''.
        edit_position: Position of the edit in the listed plate, -1 when none.
        reason: A sentence an operator can read.
    """

    entry: WatchEntry
    list_name: str
    kind: MatchKind
    score: float
    candidate: str
    candidate_index: int
    candidate_confidence: float
    substitutions: tuple[Substitution, ...] = ()
    edit: Literal["insert", "delete", ""] = ""
    edit_position: int = -1
    reason: str = ""


class ListSync(Struct, frozen=True):
    """The latest import or sync of a list (``watchlist_syncs``).

    Attributes:
        list_name: The list.
        source: File, folder, URL or ``upload:<format>`` it came from.
        finished_at: When it finished (UNIX seconds).
        rows: Data rows read.
        added: Entries added.
        updated: Entries changed.
        removed: Entries removed.
        rejected: Rows rejected as malformed.
    """

    list_name: str
    source: str
    finished_at: float
    rows: int
    added: int
    updated: int
    removed: int
    rejected: int


class ImportProgress(Struct, frozen=True):
    """A large import of a list under way (staged, then applied in key ranges).

    Attributes:
        list_name: The list.
        import_id: The import's id.
        state: ``staging`` (entries being copied in) or ``applying`` (written in key ranges).
        started_at: When it started (UNIX seconds).
        staged: Entries staged so far (all of them once applying).
        applied: Staged entries whose key range is already written to the list.
    """

    list_name: str
    import_id: int
    state: str
    started_at: float
    staged: int
    applied: int

    @property
    def fraction(self) -> float | None:
        """How far applying got, 0..1 (None while staging: the total is not known yet)."""
        if self.state != "applying" or not self.staged:
            return None
        return self.applied / self.staged
