"""Fetch model files into a store: from a mirror folder or their official URL.

A mirror's layout is the official URL without its scheme: ``https://host/a/b.xml`` is read
from ``<mirror>/host/a/b.xml``. Whatever the source, the bytes are streamed into a temp
file beside the destination while being hashed, fsynced, and renamed into place only when
the sha256 matches the manifest, so a store never holds a partial or wrong file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from models.store import ManifestFile, ModelEntry, ModelStore, sha256_file
from shared import durable
from shared.errors import ModelCorrupt, ModelMissing

log = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT_S = 60.0
_CHUNK = 1 << 20


def mirror_path(mirror: Path, url: str) -> Path:
    """Where ``url`` lives in a mirror: ``<mirror>/<host>/<path of URL>``."""
    parts = urlsplit(url)
    return mirror / parts.netloc / parts.path.lstrip("/")


def pull(entries: Iterable[ModelEntry], dest: Path, mirror: Path | None = None) -> list[Path]:
    """Put every file of ``entries`` into the store at ``dest``, verified.

    Files already present with the right sha256 are kept. ``pypi`` models are only
    verified inside their installed package.

    Args:
        entries: Manifest entries to fetch.
        dest: Store root; files go to ``<dest>/<model>/<precision>/<file>``.
        mirror: Offline mirror root; ``None`` downloads from the official URLs.

    Returns:
        The paths of all files of ``entries``.

    Raises:
        ModelMissing: the mirror lacks a file, or a download failed.
        ModelCorrupt: a file's sha256 differs from the manifest (nothing is left in dest).
    """
    store = ModelStore(dest)
    paths = []
    for entry in entries:
        for file in entry.files:
            target = store.file_path(entry, file)
            if entry.source == "pypi":
                store.path(entry.name, entry.precision)
            elif not (target.is_file() and sha256_file(target) == file.sha256):
                _fetch_file(file, target, mirror)
            paths.append(target)
    return paths


def _fetch_file(file: ManifestFile, target: Path, mirror: Path | None) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if mirror is None:
        log.info("downloading %s", file.url)
        try:
            with urllib.request.urlopen(file.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                _install(response, file, target, file.url)
        except OSError as err:  # URLError and socket timeouts are OSErrors
            raise ModelMissing(
                f"could not download {file.url}: {err}; use --mirror DIR to copy from a mirror"
            ) from err
        return
    source = mirror_path(mirror, file.url)
    if not source.is_file():
        raise ModelMissing(f"mirror {mirror} has no {source} (for {file.url})")
    log.info("copying %s", source)
    with source.open("rb") as fh:
        _install(fh, file, target, str(source))


def _install(stream: BinaryIO, file: ManifestFile, target: Path, origin: str) -> None:
    """Stream into a temp file beside ``target``, check sha256, fsync, rename."""
    digest = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{file.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = digest.hexdigest()
        if actual != file.sha256:
            raise ModelCorrupt(
                f"{file.name} from {origin} failed verification: expected sha256 "
                f"{file.sha256}, got {actual}; the file was not installed"
            )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    durable.commit(tmp, target)
