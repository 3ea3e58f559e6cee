"""A small real filesystem for tests that need a full disk: a tmpfs mounted by the test.

Mounting needs root (CI runs as root); elsewhere the tests that use it skip, saying why.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

PAGE = 4096  # tmpfs allocates whole pages


@contextmanager
def small_filesystem(where: Path, size: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size`` bytes on ``where`` for the block; unmount it afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill the disk needs root (CI runs as root)")
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
        check=True,
        capture_output=True,
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True, capture_output=True)


class Filler:
    """Takes the free space of a filesystem in one-page files and gives it back on demand."""

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._files: list[Path] = []

    def fill(self) -> int:
        """Write one-page files until the disk is full; return how many were written."""
        self._dir.mkdir(parents=True, exist_ok=True)
        before = len(self._files)
        while True:
            path = self._dir / f"filler-{len(self._files)}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                written = os.write(fd, b"\0" * PAGE)
            except OSError as err:
                if err.errno != errno.ENOSPC:
                    raise
                written = 0
            finally:
                os.close(fd)
            if written < PAGE:
                path.unlink()
                return len(self._files) - before
            self._files.append(path)

    def free(self, pages: int | None = None) -> None:
        """Give back ``pages`` pages (all of them when None)."""
        count = len(self._files) if pages is None else pages
        for _ in range(count):
            self._files.pop().unlink()


@contextmanager
def small_ext4(where: Path, size: int) -> Iterator[Path]:
    """Mount a fresh ext4 image of ``size`` bytes on ``where`` through a loop device.

    Journal commits are spaced 60 s apart, so within a test the device is written only
    when something syncs: :func:`sectors_written` then shows each fsync.
    """
    if os.geteuid() != 0:
        pytest.skip("mounting a loop ext4 image needs root (CI runs as root)")
    image = where.with_name(where.name + ".img")
    with open(image, "wb") as fh:
        fh.truncate(size)
    # Inode tables and journal zeroed now, not by a background thread during the test.
    init = "lazy_itable_init=0,lazy_journal_init=0"
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-E", init, str(image)], check=True, capture_output=True
    )
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-o", "loop,commit=60", str(image), str(where)], check=True, capture_output=True
    )
    try:
        yield where
    finally:
        # A test that failed may still hold files open there: detach lazily then.
        unmounted = subprocess.run(["umount", str(where)], check=False, capture_output=True)
        if unmounted.returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=True, capture_output=True)
        image.unlink()


def sectors_written(mount_point: Path) -> int:
    """Sectors written so far to the block device mounted on ``mount_point``."""
    source = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(mount_point)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    fields = (Path("/sys/block") / Path(source).name / "stat").read_text().split()
    return int(fields[6])  # the seventh field: sectors written
