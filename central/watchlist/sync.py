"""Import and sync wanted-vehicle lists from files, a watched drop folder or an HTTP URL.

An *import* adds and updates entries. A *sync* treats what it reads as the registry's full
export: entries the export no longer holds are removed. Every sync is recorded with its
counts, so a drop folder's files are applied once and an HTTP source is asked with
``If-None-Match`` / ``If-Modified-Since`` and a 304 costs nothing.

Files in a drop folder are taken when they have not changed for ``settle_seconds`` (a
registry may still be writing them); names starting with ``.`` or ending in ``.part`` or
``.tmp`` are ignored. When several new exports wait, only the newest is applied (each is
a full export) and the older ones are recorded as superseded.

A sync that would remove more than ``max_remove_share`` of a list (default half) is
refused and changes nothing: a truncated or wrong export must not silently empty a
wanted list. Pass ``max_remove_share=1.0`` to accept such an export.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from central.watchlist.importer import (
    Batch,
    Format,
    Progress,
    ReadFile,
    detect_format,
    read_file,
)
from central.watchlist.model import ImportReport
from central.watchlist.repository import WatchlistRepository
from shared.errors import InvalidRequest, SourceUnavailable

log = logging.getLogger(__name__)

Verify = Callable[[str, Mapping[str, str], str, str], None]
"""Checks a fetched export before it is read: (URL, response headers with lower-case names,
SHA-256 hex of the body received, ``Last-Modified`` of the export in force or ''); raises
``SignatureInvalid`` to refuse it (the list in force stays)."""

_IGNORED_SUFFIXES: Final = (".part", ".tmp", ".partial", ".crdownload")
_EXPORT_SUFFIXES: Final = (".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson")


def import_file(
    repo: WatchlistRepository,
    list_name: str,
    path: Path,
    *,
    full: bool = False,
    fmt: Format | None = None,
    progress: Progress | None = None,
    read: ReadFile = read_file,
) -> ImportReport:
    """Read an export file into a list.

    Args:
        repo: Where the list lives (the list must exist).
        list_name: The list.
        path: CSV, JSON or JSON Lines export.
        full: The file is the whole list; entries missing from it are removed.
        fmt: Format, guessed from the suffix when None.
        progress: Optional callback with (bytes done, bytes total).

    Returns:
        Counts and the rows that were skipped, with line numbers and reasons.
    """
    started = time.perf_counter()
    settings = repo.get_list(list_name)
    batch = read(path, fmt, settings.default_priority, progress)
    return load_batch(repo, list_name, str(path), batch, full=full, started=started)


def load_batch(
    repo: WatchlistRepository,
    list_name: str,
    source: str,
    batch: Batch,
    *,
    full: bool,
    started: float,
    fingerprint: str = "",
    validators: tuple[str, str] = ("", ""),
    max_remove_share: float = 1.0,
) -> ImportReport:
    """Load rows read from ``source`` into a list and record the sync (see ``import_file``)."""
    stored = repo.count(list_name)
    limit = None if max_remove_share >= 1.0 else max(int(stored * max_remove_share), 10)
    counts = repo.load(
        list_name, batch.table, full=full, max_removed=limit, keep=batch.rejected_keys
    )
    report = ImportReport(
        list_name=list_name,
        source=source,
        rows=batch.rows,
        added=counts.added,
        updated=counts.updated,
        removed=counts.removed,
        unchanged=counts.unchanged,
        problems=batch.problems,
        seconds=round(time.perf_counter() - started, 3),
        changed=list(counts.changed),
    )
    repo.record_sync(
        list_name,
        source,
        fingerprint or f"import:{started}",
        counts=(batch.rows, *counts[:4], len(batch.problems)),
        etag=validators[0],
        last_modified=validators[1],
    )
    return report


def export_files(
    folder: Path, *, settle_seconds: float = 2.0, now: float | None = None
) -> list[Path]:
    """Settled export files in a drop folder, oldest first (see the module docstring)."""
    now = time.time() if now is None else now
    files = [
        p
        for p in folder.iterdir()
        if p.is_file()
        and not p.name.startswith(".")
        and not p.name.endswith(_IGNORED_SUFFIXES)
        and p.name.lower().endswith(_EXPORT_SUFFIXES)
        and now - p.stat().st_mtime >= settle_seconds
    ]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def fingerprint(path: Path) -> str:
    """What identifies one version of an export file: name, size and modification time."""
    stat = path.stat()
    return f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}"


def pending_files(
    repo: WatchlistRepository,
    list_name: str,
    folder: Path,
    *,
    settle_seconds: float = 2.0,
    now: float | None = None,
) -> list[Path]:
    """Export files in ``folder`` not yet synced into the list, oldest first."""
    seen = repo.seen_fingerprints(list_name, str(folder))
    files = export_files(folder, settle_seconds=settle_seconds, now=now)
    return [p for p in files if fingerprint(p) not in seen]


def sync_folder(
    repo: WatchlistRepository,
    list_name: str,
    folder: Path,
    *,
    settle_seconds: float = 2.0,
    max_remove_share: float = 0.5,
    progress: Progress | None = None,
    read: ReadFile = read_file,
) -> ImportReport | None:
    """Apply the newest unseen full export in a drop folder; None when nothing is new.

    Raises:
        SourceUnavailable: ``folder`` is not a directory.
        InvalidRequest: The export would remove more than ``max_remove_share`` of the list.
    """
    if not folder.is_dir():
        raise SourceUnavailable(f"expected a drop folder, {folder} is not a directory")
    files = pending_files(repo, list_name, folder, settle_seconds=settle_seconds)
    if not files:
        return None
    *older, newest = files
    for path in older:
        log.info("list %s: %s superseded by %s", list_name, path.name, newest.name)
        repo.record_sync(list_name, str(folder), fingerprint(path), counts=(0, 0, 0, 0, 0, 0))
    started = time.perf_counter()
    settings = repo.get_list(list_name)
    batch = read(newest, None, settings.default_priority, progress)
    return load_batch(
        repo,
        list_name,
        str(folder),
        batch,
        full=True,
        started=started,
        fingerprint=fingerprint(newest),
        max_remove_share=max_remove_share,
    )


def watch_folder(
    repo: WatchlistRepository,
    list_name: str,
    folder: Path,
    on_report: Callable[[ImportReport], None],
    stop: threading.Event,
    *,
    interval: float = 5.0,
    settle_seconds: float = 2.0,
    max_remove_share: float = 0.5,
) -> None:
    """Poll a drop folder until ``stop`` is set, calling ``on_report`` after each sync.

    A refused or unreadable export is logged as an error and retried at the next poll, so
    it keeps showing in the log until someone fixes or replaces it.
    """
    while not stop.is_set():
        try:
            report = sync_folder(
                repo,
                list_name,
                folder,
                settle_seconds=settle_seconds,
                max_remove_share=max_remove_share,
            )
        except (InvalidRequest, SourceUnavailable) as err:
            log.error("list %s: sync from %s failed: %s", list_name, folder, err)
        else:
            if report is not None:
                on_report(report)
        stop.wait(interval)


def sync_url(
    repo: WatchlistRepository,
    list_name: str,
    url: str,
    *,
    timeout: float = 60.0,
    max_remove_share: float = 0.5,
    progress: Progress | None = None,
    read: ReadFile = read_file,
    verify: Verify | None = None,
    token: str = "",
) -> ImportReport:
    """Fetch a full export over HTTP(S) and sync the list to it.

    The last ETag / Last-Modified are sent back; a 304 answer gives a report with
    ``not_modified=True``. With ``verify`` the export is checked before it is read (a
    national hub's signature); with ``token`` it is asked for with that bearer token.

    Raises:
        SourceUnavailable: The URL could not be fetched.
        SignatureInvalid: ``verify`` refused the export; nothing changed.
        InvalidRequest: The export would remove more than ``max_remove_share`` of the list.
    """
    if not url.startswith(("http://", "https://")):
        raise SourceUnavailable(f"expected an http:// or https:// URL, got {url!r}")
    started = time.perf_counter()
    etag, modified = repo.http_validators(list_name, url)
    request = urllib.request.Request(
        url, headers={"Accept": "text/csv, application/json, application/x-ndjson"}
    )
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if etag:
        request.add_header("If-None-Match", etag)
    if modified:
        request.add_header("If-Modified-Since", modified)
    settings = repo.get_list(list_name)
    with tempfile.TemporaryDirectory(prefix="varta-watchlist-") as tmp:
        try:
            fetched = fetch(request, Path(tmp), timeout)
        except NotModified:
            return ImportReport(list_name=list_name, source=url, not_modified=True)
        digest = _sha256(fetched.path)
        if verify is not None:
            verify(url, fetched.headers, digest, modified)
        batch = read(fetched.path, fetched.fmt, settings.default_priority, progress)
    return load_batch(
        repo,
        list_name,
        url,
        batch,
        full=True,
        started=started,
        fingerprint=f"sha256:{digest}",
        validators=fetched.validators,
        max_remove_share=max_remove_share,
    )


class NotModified(Exception):
    """The server answered 304."""


@dataclass(frozen=True)
class Fetched:
    """An export fetched into a file.

    Attributes:
        path: The file.
        fmt: Its format (from the URL suffix or the content type).
        validators: ``(etag, last_modified)`` for the next conditional request.
        headers: The response headers (signature headers among them).
    """

    path: Path
    fmt: Format
    validators: tuple[str, str]
    headers: Mapping[str, str]


def download(
    request: urllib.request.Request, folder: Path, timeout: float
) -> tuple[Path, Format, tuple[str, str]]:
    """Fetch an export into ``folder``: its path, format and ``(etag, last_modified)``.

    Raises:
        NotModified: The server answered 304.
        SourceUnavailable: Any other failure.
    """
    fetched = fetch(request, folder, timeout)
    return fetched.path, fetched.fmt, fetched.validators


def fetch(request: urllib.request.Request, folder: Path, timeout: float) -> Fetched:
    """Fetch an export into ``folder`` (see ``download``), keeping the response headers.

    Raises:
        NotModified: The server answered 304.
        SourceUnavailable: Any other failure.
    """
    url = request.full_url
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            content_type = response.headers.get("Content-Type", "")
            headers = {k.lower(): v for k, v in response.headers.items()}
            validators = (
                response.headers.get("ETag", ""),
                response.headers.get("Last-Modified", ""),
            )
            path = folder / "export"
            with path.open("wb") as out:
                shutil.copyfileobj(response, out, 1 << 20)
    except urllib.error.HTTPError as err:
        if err.code == 304:
            raise NotModified from err
        raise SourceUnavailable(f"GET {url}: expected 200, got HTTP {err.code}") from err
    except (urllib.error.URLError, OSError) as err:
        raise SourceUnavailable(f"GET {url} failed: {err}") from err
    return Fetched(path, detect_format(url.split("?")[0], content_type), validators, headers)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
