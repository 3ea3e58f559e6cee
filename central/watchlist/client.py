"""A client of a running central's watchlist API, for ``varta central watchlist``.

While central serves, it holds the DuckDB file, so the command line changes lists over
HTTP with an API token (``watchlists:write``); when nothing answers at the address, the
caller falls back to the file (``CentralUnreachable``). Uploads stream the file; the answer
is the import report (rows, counts, rejected rows with line numbers and reasons).
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Final

from central.watchlist import sync
from central.watchlist.importer import Format, detect_format
from central.watchlist.model import ImportReport, ListChange, RowProblem
from shared.errors import InvalidRequest, NotFound, SourceUnavailable, Unauthorized, VartaError

log = logging.getLogger(__name__)

TOKEN_ENV: Final = "VARTA_TOKEN"
TOKEN_FILE_ENV: Final = "VARTA_TOKEN_FILE"
CENTRAL_ENV: Final = "VARTA_CENTRAL"


class CentralUnreachable(SourceUnavailable):
    """Nothing answers at central's address (it is stopped): use the file instead."""


def read_token(token_file: Path | None) -> str:
    """The API token: from ``token_file``, else ``$VARTA_TOKEN_FILE``, else ``$VARTA_TOKEN``.

    Raises:
        Unauthorized: None is given, or the file is unreadable or empty.
    """
    named = os.environ.get(TOKEN_FILE_ENV, "")
    path = token_file or (Path(named) if named else None)
    if path is not None:
        try:
            token = path.read_text().strip()
        except OSError as err:
            raise Unauthorized(f"cannot read the token file {path}: {err}") from err
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise Unauthorized(
            f"central is running: expected an API token (--token-file, ${TOKEN_FILE_ENV} "
            f"or ${TOKEN_ENV}) with scope watchlists:write"
        )
    return token


class WatchlistClient:
    """Changes lists through a running central.

    Args:
        url: Central's base URL, e.g. ``http://127.0.0.1:8000``.
        token: An API token (or session) allowed ``watchlists:write``.
        timeout: Seconds to wait for an answer (an import of a national list takes a while).
    """

    def __init__(self, url: str, token: str, timeout: float = 600.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise InvalidRequest(f"expected central's http(s):// URL, got {url!r}")
        self._url = url.rstrip("/")
        self._token = token
        self._timeout = timeout

    def upload(
        self,
        list_name: str,
        path: Path,
        fmt: Format,
        *,
        reason: str,
        full: bool = False,
        allow_mass_removal: bool = False,
        change: ListChange | None = None,
    ) -> ImportReport:
        """Upload an export file into a list (``POST /api/v1/watchlists/{name}/import``).

        Raises:
            CentralUnreachable: Nothing listens at the URL.
            InvalidRequest, NotFound, Unauthorized: What central answered.
        """
        params: dict[str, Any] = {
            "reason": reason,
            "format": fmt,
            "full": str(full).lower(),
            "allow_mass_removal": str(allow_mass_removal).lower(),
        }
        for name, value in _given(change).items():
            params[name] = str(value).lower() if isinstance(value, bool) else value
        quoted = urllib.parse.quote(list_name, safe="")
        target = f"{self._url}/api/v1/watchlists/{quoted}/import?{urllib.parse.urlencode(params)}"
        with path.open("rb") as body:
            request = urllib.request.Request(
                target,
                data=body,
                method="POST",
                headers={
                    "Authorization": f"Bearer {self._token}",
                    "Content-Length": str(path.stat().st_size),
                    "Content-Type": "application/octet-stream",
                },
            )
            answer = self._send(request)
        return ImportReport(
            list_name=answer["list_name"],
            source=str(path),
            rows=answer["rows"],
            added=answer["added"],
            updated=answer["updated"],
            removed=answer["removed"],
            unchanged=answer["unchanged"],
            problems=[RowProblem(p["line"], p["reason"]) for p in answer["problems"]],
            seconds=answer["seconds"],
        )

    def _send(self, request: urllib.request.Request) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                body: dict[str, Any] = json.loads(response.read())
                return body
        except urllib.error.HTTPError as err:
            raise _error(err) from err
        except urllib.error.URLError as err:
            if isinstance(err.reason, ConnectionRefusedError):
                raise CentralUnreachable(f"central does not answer at {self._url}") from err
            raise SourceUnavailable(f"{request.full_url}: {err.reason}") from err
        except ConnectionRefusedError as err:
            raise CentralUnreachable(f"central does not answer at {self._url}") from err


def _given(change: ListChange | None) -> dict[str, Any]:
    if change is None:
        return {}
    values = {f: getattr(change, f) for f in change.__struct_fields__}
    return {f: v for f, v in values.items() if v is not None}


def _error(err: urllib.error.HTTPError) -> VartaError:
    """Central's error body as the project's exception."""
    try:
        message = str(json.loads(err.read()).get("error", ""))
    except (ValueError, AttributeError, OSError):
        message = ""
    text = f"central answered {err.code}: {message or err.reason}"
    if err.code in (401, 403):
        return Unauthorized(text)
    if err.code == 404:
        return NotFound(text)
    if err.code < 500:
        return InvalidRequest(text)
    return SourceUnavailable(text)


class RemoteSync:
    """Sync a list through a running central: this side reads the drop folder or fetches
    the URL, central loads the file as the whole list (``full``).

    The newest settled export of a folder is uploaded once per version (name, size,
    modification time); a URL is asked with the ETag / Last-Modified of the last fetch.
    Both are remembered for the life of this object (``--watch``).
    """

    def __init__(
        self,
        client: WatchlistClient,
        list_name: str,
        reason: str,
        *,
        allow_mass_removal: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self._client = client
        self._list = list_name
        self._reason = reason
        self._mass = allow_mass_removal
        self._timeout = timeout
        self._uploaded = ""
        self._validators = ("", "")

    def run(self, folder: Path | None, url: str) -> ImportReport | None:
        """One pass over ``folder`` or, when it is None, ``url``."""
        return self.folder(folder) if folder is not None else self.url(url)

    def folder(self, folder: Path) -> ImportReport | None:
        """Upload the newest export of ``folder`` unless uploaded already; None if none."""
        if not folder.is_dir():
            raise SourceUnavailable(f"expected a drop folder, {folder} is not a directory")
        files = sync.export_files(folder)
        if not files or sync.fingerprint(files[-1]) == self._uploaded:
            return None
        newest = files[-1]
        report = self._upload(newest, str(folder))
        self._uploaded = sync.fingerprint(newest)
        return report

    def url(self, url: str) -> ImportReport:
        """Fetch the export at ``url`` (conditionally) and upload it."""
        if not url.startswith(("http://", "https://")):
            raise SourceUnavailable(f"expected an http:// or https:// URL, got {url!r}")
        request = urllib.request.Request(url, headers={"Accept": "text/csv, application/json"})
        etag, modified = self._validators
        if etag:
            request.add_header("If-None-Match", etag)
        if modified:
            request.add_header("If-Modified-Since", modified)
        with tempfile.TemporaryDirectory(prefix="varta-watchlist-") as tmp:
            try:
                path, fmt, validators = sync.download(request, Path(tmp), self._timeout)
            except sync.NotModified:
                return ImportReport(list_name=self._list, source=url, not_modified=True)
            report = self._upload(path, url, fmt)
        self._validators = validators
        return report

    def _upload(self, path: Path, source: str, fmt: Format | None = None) -> ImportReport:
        report = self._client.upload(
            self._list,
            path,
            fmt or detect_format(path.name),
            reason=self._reason,
            full=True,
            allow_mass_removal=self._mass,
            change=ListChange(source=source),
        )
        report.source = source
        return report
