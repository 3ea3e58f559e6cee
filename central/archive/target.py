"""Where the archive lives: a local directory or S3-compatible object storage.

Both are pyarrow filesystems (``LocalFileSystem``, ``S3FileSystem``); nothing connects
until a method is called. A part file becomes visible whole or not at all:

* local: the bytes go to a hidden temporary file in the partition directory
  (``.part-<n>.parquet.<random>.tmp``, which no ``*.parquet`` glob and no Spark reader
  picks up), are fsynced, and the file is renamed into place (atomic on POSIX);
* S3: one ``PutObject`` (or a multipart upload) of the finished bytes; S3 shows an object
  only once its upload completes, so a crash leaves nothing (an unfinished multipart
  upload is invisible, and the bucket's lifecycle rule for them cleans it up).

Credentials for S3 come from ``archive.s3_credentials_file`` when given, else from the
AWS environment variables and credential chain (pyarrow's defaults).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.fs as pafs

from central.config import ArchiveConfig
from shared import durable
from shared.errors import ConfigError, SourceUnavailable

log = logging.getLogger(__name__)

_CREDENTIAL_KEYS: Final = {
    "access_key_id": "access_key",
    "aws_access_key_id": "access_key",
    "secret_access_key": "secret_key",
    "aws_secret_access_key": "secret_key",
    "session_token": "session_token",
    "aws_session_token": "session_token",
}


class ArchiveUnavailable(SourceUnavailable):
    """The archive is configured but cannot be read or written now (HTTP 503)."""


@dataclass(frozen=True)
class ArchiveTarget:
    """A filesystem and the archive root on it.

    Attributes:
        fs: The pyarrow filesystem.
        base: The root as a path on ``fs`` (an absolute directory, or ``bucket/prefix``).
        url: The root as configured (for messages).
    """

    fs: pafs.FileSystem
    base: str
    url: str

    @property
    def local(self) -> bool:
        """Whether the archive is a local directory."""
        return isinstance(self.fs, pafs.LocalFileSystem)

    def path(self, relative: str) -> str:
        """``relative`` (e.g. ``sightings/date=.../part-0.parquet``) as a path on ``fs``."""
        return f"{self.base}/{relative}"

    def put(self, relative: str, data: bytes) -> None:
        """Write ``data`` at ``relative`` so that readers see all of it or nothing.

        Raises:
            ArchiveUnavailable: The write failed (nothing is visible then).
        """
        try:
            if self.local:
                _put_local(Path(self.path(relative)), data)
            else:
                with self.fs.open_output_stream(self.path(relative)) as out:
                    out.write(data)
        except (OSError, pa.ArrowException) as err:
            raise ArchiveUnavailable(
                f"archive {self.url}: writing {relative} failed: {err}"
            ) from err

    def delete_dir(self, relative: str) -> None:
        """Delete the directory (or S3 prefix) ``relative`` and all below it, if present.

        Raises:
            ArchiveUnavailable: The storage failed.
        """
        try:
            info = self.fs.get_file_info(self.path(relative))
            if info.type != pafs.FileType.NotFound:
                self.fs.delete_dir(self.path(relative))
        except (OSError, pa.ArrowException) as err:
            raise ArchiveUnavailable(
                f"archive {self.url}: deleting {relative} failed: {err}"
            ) from err

    def check(self) -> None:
        """One cheap request to the storage (the root's metadata).

        Raises:
            ArchiveUnavailable: The storage does not answer or refuses.
        """
        try:
            self.fs.get_file_info(self.base)
        except (OSError, pa.ArrowException) as err:
            raise ArchiveUnavailable(f"archive {self.url} is unreachable: {err}") from err


def _put_local(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    durable.remove_stale_temps(path)  # left by a crash mid-write (one exporter per part)
    durable.write_atomic(path, data, mode=0o640)


def read_credentials(path: Path) -> dict[str, str]:
    """S3 keys from a file of ``name = value`` lines (``#`` starts a comment).

    Raises:
        ConfigError: Unreadable, an unknown name, or a key pair incomplete.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"archive.s3_credentials_file {path}: cannot read: {err}") from err
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0].strip()
        if not stripped or stripped.startswith("["):
            continue
        name, sep, value = stripped.partition("=")
        key = _CREDENTIAL_KEYS.get(name.strip().lower())
        if not sep or key is None:
            raise ConfigError(
                f"{path}:{number}: expected access_key_id, secret_access_key or session_token "
                f"= value, got {name.strip()!r}"
            )
        found[key] = value.strip()
    if not found.get("access_key") or not found.get("secret_key"):
        raise ConfigError(f"{path}: expected both access_key_id and secret_access_key")
    return found


def open_target(config: ArchiveConfig) -> ArchiveTarget:
    """The configured archive (no request is made here).

    Raises:
        ConfigError: No root, or the credentials file is unusable.
    """
    if not config.root:
        raise ConfigError("archive.root: expected a directory or s3://bucket/prefix, got nothing")
    if not config.root.startswith("s3://"):
        root = Path(config.root).absolute()
        return ArchiveTarget(pafs.LocalFileSystem(), root.as_posix(), str(root))
    options: dict[str, object] = {
        "region": config.s3_region,
        "connect_timeout": 5.0,
        "request_timeout": 30.0,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=2),
    }
    if config.s3_endpoint:
        scheme, _, host = config.s3_endpoint.rstrip("/").partition("://")
        options.update(scheme=scheme, endpoint_override=host)
    if config.s3_credentials_file is not None:
        options.update(read_credentials(config.s3_credentials_file))
    return ArchiveTarget(pafs.S3FileSystem(**options), config.root[5:].strip("/"), config.root)
