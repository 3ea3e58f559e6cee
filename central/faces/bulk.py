"""Bulk enrolment: a folder of photos plus a CSV naming who is in them.

CSV (UTF-8, header row, delimiter ``,`` or ``;``), one person per row:

========== ===============================================================================
column     meaning
========== ===============================================================================
files      photo file names in the folder, several separated by ``;`` or ``|`` (``file``
           is accepted too)
name       name or label of the person
legal_basis legal basis / authorisation reference (court order, warrant number)
reason     why the person is wanted
expires    expiry: ISO 8601 time (``2027-01-31T12:00:00Z``), a date (``2027-01-31``,
           meaning the end of that day, UTC) or UNIX seconds
========== ===============================================================================

A row that is incomplete, names a missing file or a photo that is refused (no face, two
faces) is reported with its line and reason; the other rows are enrolled.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path
from typing import Final

from central.faces.model import BulkProblem, BulkReport, Person, PhotoInput
from central.faces.service import FaceWatchlist
from shared.errors import InvalidRequest

COLUMNS: Final = ("files", "name", "legal_basis", "reason", "expires")


def parse_expiry(value: str, name: str = "expires") -> float:
    """An expiry as UNIX seconds: ISO 8601 (naive means UTC), a date (its end), or seconds.

    Raises:
        InvalidRequest: none of these forms.
    """
    text = (value or "").strip()
    try:
        return float(text)
    except ValueError:
        pass
    try:
        if len(text) == 10:
            day = dt.date.fromisoformat(text)
            end = dt.datetime.combine(day, dt.time.max, dt.UTC)
            return end.timestamp()
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidRequest(
            f"{name}: expected ISO 8601 (2027-01-31T12:00:00Z), a date (2027-01-31) or "
            f"UNIX seconds, got {value!r}"
        ) from err
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()


def _rows(text: str) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    rows = []
    for row in reader:
        clean = {k: (v or "").strip() for k, v in row.items() if k}
        if any(clean.values()):
            rows.append((reader.line_num, clean))
    return header, rows


def enrol_folder(watchlist: FaceWatchlist, folder: Path, csv_text: str, actor: str) -> BulkReport:
    """Enrol every row of ``csv_text`` with its photos from ``folder``.

    Raises:
        InvalidRequest: the CSV lacks a required column (nothing is enrolled then).
    """
    return enrol_rows(watchlist, csv_text, lambda name: _photo(folder, name), actor)


def enrol_uploaded(
    watchlist: FaceWatchlist, csv_text: str, photos: dict[str, bytes], actor: str
) -> BulkReport:
    """Enrol every row of ``csv_text`` with its photos from an upload (name -> bytes).

    Raises:
        InvalidRequest: the CSV lacks a required column (nothing is enrolled then).
    """

    def read(name: str) -> PhotoInput:
        if name not in photos:
            raise InvalidRequest(f"{name}: not among the uploaded photos")
        return PhotoInput(name, photos[name])

    return enrol_rows(watchlist, csv_text, read, actor)


def enrol_rows(
    watchlist: FaceWatchlist,
    csv_text: str,
    read: Callable[[str], PhotoInput],
    actor: str,
) -> BulkReport:
    """Enrol every row of ``csv_text``; ``read`` gives a named photo.

    Raises:
        InvalidRequest: the CSV lacks a required column (nothing is enrolled then).
    """
    header, rows = _rows(csv_text)
    files_column = "files" if "files" in header else "file"
    missing = [c for c in (files_column, *COLUMNS[1:]) if c not in header]
    if missing:
        raise InvalidRequest(
            f"CSV: missing column(s) {', '.join(missing)}; expected {', '.join(COLUMNS)}, "
            f"got {', '.join(header) or 'no header'}"
        )
    enrolled: list[Person] = []
    problems: list[BulkProblem] = []
    try:
        _enrol_each(watchlist, rows, files_column, read, actor, enrolled, problems)
    finally:
        if enrolled:
            watchlist.rebuild()  # once for the whole file
    return BulkReport(len(rows), enrolled, problems)


def _enrol_each(
    watchlist: FaceWatchlist,
    rows: list[tuple[int, dict[str, str]]],
    files_column: str,
    read: Callable[[str], PhotoInput],
    actor: str,
    enrolled: list[Person],
    problems: list[BulkProblem],
) -> None:
    for line, row in rows:
        try:
            names = [n.strip() for n in row[files_column].replace("|", ";").split(";")]
            photos = [read(n) for n in names if n]
            enrolled.append(
                watchlist.enrol(
                    row["name"],
                    row["legal_basis"],
                    row["reason"],
                    parse_expiry(row["expires"]),
                    photos,
                    actor,
                    rebuild=False,
                )
            )
        except InvalidRequest as err:  # EnrolmentRefused is one: the row says why
            problems.append(BulkProblem(line, str(err)))


def _photo(folder: Path, name: str) -> PhotoInput:
    path = (folder / name).resolve()
    if folder.resolve() not in path.parents:
        raise InvalidRequest(f"{name}: expected a file inside {folder}")
    try:
        return PhotoInput(name, path.read_bytes())
    except OSError as err:
        raise InvalidRequest(f"{name}: cannot read the photo: {err.strerror}") from err
