"""Durable file writes: a file is either wholly old or wholly new, even after a power cut.

One way to put bytes in a file for everything that must survive a crash: CURVE keys, the
spool's state, archive parts. The bytes go to a temporary file beside the target (created
with its final mode, so no other user can ever open it), are synced, and the temporary file
is renamed over the target (or hard-linked to it when the target must not be replaced); the
directory is synced so the rename itself is durable.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically and durably.

    Raises:
        FileExistsError: ``overwrite`` is false and ``path`` exists.
        OSError: The write failed (the temporary file is removed, giving the space back).
    """
    commit(stage(path, data, mode), path, overwrite=overwrite)


def stage(path: Path, data: bytes, mode: int = 0o600) -> Path:
    """Write and sync ``data`` to a new temporary file beside ``path``; return its path.

    Staging first lets a caller put several files in place only once all are written.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)  # give the space back
        raise
    finally:
        os.close(fd)
    return tmp


def commit(tmp: Path, path: Path, *, overwrite: bool = True) -> None:
    """Put a staged file in place (renamed over ``path``, or hard-linked to it when
    ``overwrite`` is false) and sync the directory; the temporary name goes either way.

    Raises:
        FileExistsError: ``overwrite`` is false and ``path`` exists.
    """
    try:
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def remove_stale_temps(path: Path) -> None:
    """Remove temporary files a crash mid-``write_atomic`` left beside ``path``.

    Only for a path that one process writes at a time (a concurrent writer's temporary
    file would be removed under it).
    """
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def fsync_dir(directory: Path) -> None:
    """Sync a directory, so the names created, renamed or removed in it survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
