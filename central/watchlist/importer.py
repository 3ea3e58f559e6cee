"""Read wanted-vehicle list exports (CSV, JSON, JSON Lines) into a columnar batch.

A registry export has one row per entry with a header naming the columns (English or
Ukrainian names, see ``COLUMN_ALIASES``). Each row is checked; a malformed row is reported
with its line number (JSON: entry number) and reason, and skipped. The accepted rows become
one Arrow table that the repository loads in bulk.

CSV: UTF-8 (a BOM is allowed), delimiter ``,`` ``;`` or tab, detected from the header.
JSON: an array of objects, or ``{"list": {settings...}, "entries": [...]}``.
JSON Lines (``.jsonl``/``.ndjson``): one object per line.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Final, Literal

import msgspec
import pyarrow as pa

from central.watchlist.model import (
    CATEGORIES,
    COLOURS,
    PRIORITY_MAX,
    PRIORITY_MIN,
    VEHICLE_TYPES,
    RowProblem,
)
from shared.errors import InvalidRequest
from shared.plates import fold

log = logging.getLogger(__name__)

Format = Literal["csv", "json", "jsonl"]
Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes total) while a file is read."""

ReadFile = Callable[[Path, "Format | None", int, "Progress | None"], "Batch"]
"""``read_file``'s shape: (path, format or None to guess, default priority, progress)."""

COLUMN_ALIASES: Final[dict[str, str]] = {
    "id": "id", "entry_id": "id", "external_id": "id", "ідентифікатор": "id",
    "plate": "plate", "plate_number": "plate", "registration": "plate", "pattern": "plate",
    "номер": "plate", "номерний_знак": "plate",
    "category": "category", "категорія": "category",
    "priority": "priority", "пріоритет": "priority",
    "reason": "reason", "причина": "reason",
    "case_ref": "case_ref", "case": "case_ref", "case_reference": "case_ref", "справа": "case_ref",
    "valid_from": "valid_from", "діє_з": "valid_from",
    "valid_until": "valid_until", "діє_до": "valid_until",
    "source": "source", "джерело": "source",
    "vehicle_type": "vehicle_type", "type": "vehicle_type", "тип": "vehicle_type",
    "colour": "colour", "color": "colour", "колір": "colour",
}  # fmt: skip
CATEGORY_ALIASES: Final[dict[str, str]] = {
    **{c: c for c in CATEGORIES},
    "викрадений": "stolen", "викрадено": "stolen", "розшук": "wanted",
    "порушення": "violation", "дтп": "crash", "інше": "other", "": "other",
}  # fmt: skip
SCHEMA: Final = pa.schema(
    [
        ("entry_key", pa.string()),
        ("kind", pa.string()),
        ("plate", pa.string()),
        ("plate_raw", pa.string()),
        ("category", pa.string()),
        ("priority", pa.int16()),
        ("reason", pa.string()),
        ("case_ref", pa.string()),
        ("valid_from", pa.timestamp("us")),
        ("valid_until", pa.timestamp("us")),
        ("source", pa.string()),
        ("vehicle_type", pa.string()),
        ("colour", pa.string()),
    ]
)
_PLATE_RE: Final = re.compile(r"[A-Z0-9]{2,12}")
_PATTERN_RE: Final = re.compile(r"[A-Z0-9?*]{1,16}")
_MIN_PATTERN_LITERALS: Final = 3
_PROGRESS_EVERY: Final = 20_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class RowError(ValueError):
    """One row is malformed; the message is the reason shown to the operator."""


@dataclass
class Batch:
    """Accepted rows as an Arrow table plus the rejected rows.

    Attributes:
        table: Accepted entries, columns as ``SCHEMA``.
        rows: Data rows read, accepted or not.
        problems: Rejected rows with line numbers and reasons.
        settings: List settings found in a JSON export's ``list`` object, if any.
        rejected_keys: Entry keys of rejected rows whose plate was readable: a full sync
            keeps the stored entry rather than dropping a wanted car over a typo.
    """

    table: pa.Table
    rows: int
    problems: list[RowProblem]
    settings: dict[str, Any] = field(default_factory=dict)
    rejected_keys: list[str] = field(default_factory=list)


class _Columns:
    """Column lists filled row by row, turned into one Arrow table at the end."""

    def __init__(self, default_priority: int) -> None:
        self.default_priority = default_priority
        self.cols: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
        self.seen: dict[str, int] = {}
        self.rejected_keys: list[str] = []
        self._times: dict[tuple[str, bool], int | None] = {}

    def add(self, row: Mapping[str, Any], line: int) -> None:
        """Check one row and append it; raise ``RowError`` with the reason if malformed."""
        text = _text(row, "plate")
        plate = fold(text)
        vtype = _vocab(_text(row, "vehicle_type"), VEHICLE_TYPES, "vehicle type")
        colour = _vocab(_text(row, "colour"), COLOURS, "colour")
        kind = _kind(plate, text, vtype, colour)
        ext_id = _text(row, "id")
        key = f"id:{ext_id}" if ext_id else _derived_key(kind, plate, vtype, colour)
        first = self.seen.get(key)
        if first is not None:
            raise RowError(f"duplicate of line {first} (same key {key!r})")
        try:
            values = self._content(row, (key, kind, plate, text), (vtype, colour))
        except RowError:
            self.rejected_keys.append(key)
            raise
        self.seen[key] = line
        for name, value in zip(SCHEMA.names, values, strict=True):
            self.cols[name].append(value)

    def _content(
        self, row: Mapping[str, Any], ident: tuple[str, ...], vehicle: tuple[str, str]
    ) -> tuple[Any, ...]:
        """The row's values in ``SCHEMA`` order, after its identity was checked."""
        category = CATEGORY_ALIASES.get(_text(row, "category").lower())
        if category is None:
            raise RowError(
                f"category {_text(row, 'category')!r} is not one of {', '.join(CATEGORIES)}"
            )
        valid_from = self._time(_text(row, "valid_from"), until=False)
        valid_until = self._time(_text(row, "valid_until"), until=True)
        if valid_from is not None and valid_until is not None and valid_until <= valid_from:
            raise RowError("valid_until is not after valid_from")
        return (
            *ident, category, self._priority(_text(row, "priority")),
            _text(row, "reason"), _text(row, "case_ref"), valid_from, valid_until,
            _text(row, "source"), *vehicle,
        )  # fmt: skip

    def _priority(self, text: str) -> int:
        if not text:
            return self.default_priority
        try:
            value = int(text)
        except ValueError:
            raise RowError(f"priority {text!r} is not a whole number") from None
        if not PRIORITY_MIN <= value <= PRIORITY_MAX:
            raise RowError(f"priority {value} is outside {PRIORITY_MIN}..{PRIORITY_MAX}")
        return value

    def _time(self, text: str, *, until: bool) -> int | None:
        cached = self._times.get((text, until), -1)
        if cached != -1:
            return cached
        value = _parse_time(text, until=until)
        self._times[(text, until)] = value
        return value

    def table(self) -> pa.Table:
        """The accepted rows as an Arrow table."""
        return pa.table([pa.array(self.cols[f.name], type=f.type) for f in SCHEMA], schema=SCHEMA)


def _text(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise RowError(f"{name} must be text or a number, got {type(value).__name__}")
    text = str(value).strip()
    # The matcher joins a row's fields with the ASCII unit separator: keep it out.
    return text.replace("\x1f", " ") if "\x1f" in text else text


def _vocab(text: str, vocab: Mapping[str, str], what: str) -> str:
    if not text:
        return ""
    value = vocab.get(text.lower())
    if value is None:
        known = ", ".join(sorted({v for v in vocab.values()}))
        raise RowError(f"{what} {text!r} is not known (expected one of {known})")
    return value


def _kind(plate: str, text: str, vtype: str, colour: str) -> str:
    if "?" in plate or "*" in plate:
        if not _PATTERN_RE.fullmatch(plate):
            raise RowError(f"pattern {text!r} may hold only A-Z, 0-9, ? and *")
        if sum(ch not in "?*" for ch in plate) < _MIN_PATTERN_LITERALS:
            raise RowError(f"pattern {text!r} needs at least 3 fixed characters")
    elif plate and not _PLATE_RE.fullmatch(plate):
        raise RowError(f"plate {text!r} is not 2-12 characters of A-Z, 0-9 after folding")
    if vtype or colour:
        if plate and "*" not in plate and "?" not in plate:
            raise RowError("an attribute entry takes a plate pattern (e.g. AT12*), not a plate")
        return "attribute"
    if not plate:
        raise RowError("no plate, pattern, vehicle type or colour")
    return "pattern" if ("?" in plate or "*" in plate) else "plate"


def _derived_key(kind: str, plate: str, vtype: str, colour: str) -> str:
    if kind == "plate":
        return plate
    if kind == "pattern":
        return f"pattern:{plate}"
    return f"attr:{vtype}:{colour}:{plate}"


def _parse_time(text: str, *, until: bool) -> int | None:
    """Microseconds since the epoch (UTC); a date-only ``until`` includes that whole day."""
    if not text:
        return None
    date_only = len(text) <= 10
    if re.fullmatch(r"\d{2}\.\d{2}\.\d{4}", text):  # Ukrainian registries write 31.12.2026
        text = f"{text[6:]}-{text[3:5]}-{text[:2]}"
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise RowError(f"{text!r} is not a date (YYYY-MM-DD, DD.MM.YYYY or ISO 8601)") from None
    try:
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        if until and date_only:
            when += timedelta(days=1)
    except OverflowError:
        raise RowError(f"{text!r} is outside the supported dates") from None
    return (when - _EPOCH) // timedelta(microseconds=1)


def detect_format(name: str, content_type: str = "") -> Format:
    """Guess the format from a file name or an HTTP content type."""
    lowered = name.lower()
    if lowered.endswith((".jsonl", ".ndjson")) or "ndjson" in content_type:
        return "jsonl"
    if lowered.endswith(".json") or "json" in content_type:
        return "json"
    return "csv"


def read_file(
    path: Path,
    fmt: Format | None = None,
    default_priority: int = 3,
    progress: Progress | None = None,
) -> Batch:
    """Read one export file.

    Args:
        path: The file.
        fmt: csv, json or jsonl; guessed from the suffix when None.
        default_priority: Priority for rows without one (the list's default).
        progress: Optional callback with (bytes done, bytes total).

    Returns:
        The accepted rows and the problems found.

    Raises:
        InvalidRequest: The file as a whole is unreadable (no header, not JSON, ...).
    """
    fmt = fmt or detect_format(path.name)
    total = path.stat().st_size
    with path.open("rb") as fh:
        if fmt == "csv":
            batch = read_csv(fh, default_priority, total, progress)
        else:
            batch = read_json(fh.read(), fmt == "jsonl", default_priority)
    if progress is not None:
        progress(total, total)
    log.info("read %s: %s rows, %s rejected", path, batch.rows, len(batch.problems))
    return batch


def _lines(fh: IO[bytes], total: int, progress: Progress | None) -> Iterator[str]:
    done = 0
    for number, raw in enumerate(fh):
        done += len(raw)
        if progress is not None and number % _PROGRESS_EVERY == 0:
            progress(done, total)
        try:
            yield raw.decode("utf-8-sig" if number == 0 else "utf-8")
        except UnicodeDecodeError as err:
            raise InvalidRequest(f"line {number + 1} is not UTF-8: {err}") from err


def read_csv(
    fh: IO[bytes], default_priority: int = 3, total: int = 0, progress: Progress | None = None
) -> Batch:
    """Read a CSV export from a binary stream (see the module docstring for the layout)."""
    lines = _lines(fh, total, progress)
    header_line = next(lines, "")
    delimiter = max(",;\t", key=header_line.count)
    header = next(csv.reader([header_line], delimiter=delimiter), [])
    names = [COLUMN_ALIASES.get(h.strip().lower().replace(" ", "_"), "") for h in header]
    _check_header(header, names)
    columns = _Columns(default_priority)
    problems: list[RowProblem] = []
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    rows = 0
    while True:
        start = reader.line_num + 2  # header is line 1; records may span lines
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            rows += 1
            problems.append(RowProblem(start, f"unreadable CSV: {err}"))
            continue
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        rows += 1
        if len(record) != len(names):
            problems.append(RowProblem(start, f"expected {len(names)} fields, got {len(record)}"))
            continue
        try:
            columns.add(dict(zip(names, record, strict=True)), start)
        except RowError as err:
            problems.append(RowProblem(start, str(err)))
    return Batch(columns.table(), rows, problems, rejected_keys=columns.rejected_keys)


def _check_header(header: list[str], names: list[str]) -> None:
    unknown = [h for h, n in zip(header, names, strict=True) if not n]
    if unknown:
        log.warning("ignoring unknown columns %s", unknown)
    if not {"plate", "vehicle_type", "colour"} & set(names):
        raise InvalidRequest(
            f"expected a header with a 'plate' column (or vehicle_type/colour), got {header}"
        )


def read_json(data: bytes, lines: bool = False, default_priority: int = 3) -> Batch:
    """Read a JSON or JSON Lines export (see the module docstring for the shapes)."""
    settings: dict[str, Any] = {}
    if lines:
        entries: Iterable[tuple[int, Any]] = _json_lines(data)
    else:
        try:
            doc = msgspec.json.decode(data)
        except msgspec.DecodeError as err:
            raise InvalidRequest(f"expected a JSON export, got malformed JSON: {err}") from err
        if isinstance(doc, dict):
            settings = doc.get("list") or {}
            doc = doc.get("entries")
        if not isinstance(doc, list) or not isinstance(settings, dict):
            raise InvalidRequest(
                "expected a JSON array of entries or {'list': {...}, 'entries': [...]}"
            )
        entries = enumerate(doc, start=1)
        given = settings.get("default_priority", default_priority)
        if isinstance(given, bool) or not isinstance(given, int):
            raise InvalidRequest(f"list.default_priority: expected a whole number, got {given!r}")
        default_priority = given
    batch = read_records(entries, default_priority)
    batch.settings = settings
    return batch


def read_records(entries: Iterable[tuple[int, Any]], default_priority: int = 3) -> Batch:
    """Check entries given as ``(line or entry number, object)``, e.g. from JSON or a form.

    An entry that is a ``RowError`` (unreadable where it came from) is reported as such.
    """
    columns = _Columns(default_priority)
    problems: list[RowProblem] = []
    rows = 0
    for number, item in entries:
        rows += 1
        try:
            if isinstance(item, RowError):
                raise item
            if not isinstance(item, dict):
                raise RowError(f"expected an object, got {type(item).__name__}")
            columns.add({COLUMN_ALIASES.get(str(k), str(k)): v for k, v in item.items()}, number)
        except RowError as err:
            problems.append(RowProblem(number, str(err)))
    return Batch(columns.table(), rows, problems, {}, columns.rejected_keys)


def _json_lines(data: bytes) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield number, msgspec.json.decode(raw)
        except msgspec.DecodeError as err:
            yield number, RowError(f"malformed JSON: {err}")
