"""Persons watchlist for the command line: over HTTP while central runs, else the file.

While central serves, it holds the DuckDB file, so ``varta central persons`` calls its
REST API with an API token (``faces:write`` / ``faces:read``); when nothing answers, it
opens the file itself (:class:`LocalPersons`; the actor is ``cli:<os user>``). Both give
the API's JSON shapes, so the commands print the same either way.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from central.faces.bulk import _rows, enrol_folder, parse_expiry
from central.faces.model import PhotoInput
from central.watchlist.client import CentralUnreachable, _error
from shared.errors import InvalidRequest, SourceUnavailable

if TYPE_CHECKING:
    from central.faces.service import FaceWatchlist

Json = dict[str, Any]


class RemotePersons:
    """The persons API of a running central.

    Args:
        url: Central's base URL, e.g. ``http://127.0.0.1:8000``.
        token: An API token allowed ``faces:write`` (changes) or ``faces:read``.
        timeout: Seconds to wait (bulk enrolment embeds every photo).
    """

    def __init__(self, url: str, token: str, timeout: float = 600.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"expected central's http(s):// URL, got {url!r}")
        self._url = url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def enrol(self, fields: dict[str, str], photos: list[Path]) -> Json:
        """POST /api/v1/persons with the photos."""
        files = [("photo", p.name, p.read_bytes()) for p in photos]
        return self._send("POST", "/api/v1/persons", fields, files)

    def bulk(self, folder: Path, csv_file: Path) -> Json:
        """POST /api/v1/persons/bulk with the CSV and the photos it names."""
        text = csv_file.read_text(encoding="utf-8-sig")
        header, rows = _rows(text)
        column = "files" if "files" in header else "file"
        names = {
            n.strip()
            for _, row in rows
            for n in row.get(column, "").replace("|", ";").split(";")
            if n.strip()
        }
        files = [("csv", csv_file.name, text.encode())]
        files += [
            ("photo", n, (folder / n).read_bytes()) for n in sorted(names) if (folder / n).is_file()
        ]
        return self._send("POST", "/api/v1/persons/bulk", {}, files)

    def people(self, status: str | None) -> list[Json]:
        """GET /api/v1/persons."""
        query = f"?status={urllib.parse.quote(status)}" if status else ""
        found: list[Json] = self._send("GET", f"/api/v1/persons{query}")  # type: ignore[assignment]
        return found

    def person(self, person_id: str) -> Json:
        """GET /api/v1/persons/{id}."""
        return self._send("GET", f"/api/v1/persons/{urllib.parse.quote(person_id)}")

    def expire(self, person_id: str, reason: str) -> Json:
        """POST /api/v1/persons/{id}/expire."""
        query = urllib.parse.urlencode({"reason": reason})
        return self._send("POST", f"/api/v1/persons/{urllib.parse.quote(person_id)}/expire?{query}")

    def remove(self, person_id: str, reason: str) -> Json:
        """DELETE /api/v1/persons/{id}."""
        query = urllib.parse.urlencode({"reason": reason})
        return self._send("DELETE", f"/api/v1/persons/{urllib.parse.quote(person_id)}?{query}")

    def _send(
        self,
        method: str,
        path: str,
        fields: dict[str, str] | None = None,
        files: list[tuple[str, str, bytes]] | None = None,
    ) -> Json:
        headers = {"Authorization": f"Bearer {self._token}"}
        body = None
        if fields or files:
            body, content_type = _multipart(fields or {}, files or [])
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self._url + path, body, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                answer: Json = json.loads(response.read())
                return answer
        except urllib.error.HTTPError as err:
            raise _error(err) from err
        except urllib.error.URLError as err:
            if isinstance(err.reason, ConnectionRefusedError):
                raise CentralUnreachable(f"central does not answer at {self._url}") from err
            raise SourceUnavailable(f"{request.full_url}: {err.reason}") from err


def _multipart(fields: dict[str, str], files: list[tuple[str, str, bytes]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its content type."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, filename, data in files:
        safe = filename.replace('"', "_")
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{safe}"\r\nContent-Type: application/octet-stream\r\n\r\n'.encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class LocalPersons:
    """The persons watchlist of a DuckDB file (central stopped), same JSON as the API."""

    def __init__(self, watchlist: FaceWatchlist, actor: str, clock: Callable[[], float]) -> None:
        self._faces = watchlist
        self._actor = actor
        self._clock = clock

    def _read(self, person: Any) -> Json:
        from central.api.faces import person_read

        out: Json = msgspec.to_builtins(person_read(person, self._clock()))
        return out

    def enrol(self, fields: dict[str, str], photos: list[Path]) -> Json:
        """Enrol from photo files."""
        inputs = [PhotoInput(p.name, p.read_bytes()) for p in photos]
        person = self._faces.enrol(
            fields.get("name", ""),
            fields.get("legal_basis", ""),
            fields.get("reason", ""),
            parse_expiry(fields.get("expires", "")),
            inputs,
            self._actor,
        )
        return self._read(person)

    def bulk(self, folder: Path, csv_file: Path) -> Json:
        """Enrol a folder plus CSV."""
        from central.api.faces import bulk_read

        text = csv_file.read_text(encoding="utf-8-sig")
        report = enrol_folder(self._faces, folder, text, self._actor)
        out: Json = msgspec.to_builtins(bulk_read(report, self._clock()))
        return out

    def people(self, status: str | None) -> list[Json]:
        """Persons, newest first."""
        return [self._read(p) for p in self._faces.people(status, 1000)]

    def person(self, person_id: str) -> Json:
        """One person."""
        return self._read(self._faces.person(person_id))

    def expire(self, person_id: str, reason: str) -> Json:
        """Stop matching now."""
        return self._read(self._faces.expire(person_id, self._actor, reason))

    def remove(self, person_id: str, reason: str) -> Json:
        """Delete photos and embeddings, keep the record."""
        return self._read(self._faces.remove(person_id, self._actor, reason))
