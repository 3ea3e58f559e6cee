"""Thumbnail evidence in append-only pack files, one folder per UTC day.

Writing tens of thousands of small JPEGs a second as separate files or DuckDB blobs costs
far more than appending them to a few large files. A thumbnail is addressed by
``(pack, offset, length)``; ``pack`` is ``YYYYMMDD/NNNNNN``. Retention deletes whole day
folders, after hit evidence has been copied out.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Sequence
from pathlib import Path

_PACK_LIMIT = 256 << 20
_IOV_MAX = 1024


class ThumbStore:
    """Appends thumbnails to pack files and reads them back."""

    def __init__(self, root: Path, pack_limit: int = _PACK_LIMIT) -> None:
        self._root = root
        self._root.mkdir(parents=True, exist_ok=True)
        self._limit = pack_limit
        self._fd = -1
        self._pack = ""
        self._size = 0
        self._dirty = False

    def append(self, blobs: Sequence[bytes | memoryview]) -> list[tuple[str, int, int]]:
        """Append blobs; return ``(pack, offset, length)`` for each. Call ``flush`` to sync."""
        if not blobs:
            return []
        self._ensure_pack(sum(len(b) for b in blobs))
        refs: list[tuple[str, int, int]] = []
        offset = self._size
        for blob in blobs:
            refs.append((self._pack, offset, len(blob)))
            offset += len(blob)
        try:
            for i in range(0, len(blobs), _IOV_MAX):
                chunk = blobs[i : i + _IOV_MAX]
                if os.writev(self._fd, chunk) != sum(len(b) for b in chunk):
                    raise OSError(errno.ENOSPC, f"thumbnail pack {self._pack}: short write")
        except OSError:
            os.ftruncate(self._fd, self._size)  # no torn tail: the pack ends where it did
            raise
        self._size = offset
        self._dirty = True
        return refs

    def mark(self) -> tuple[str, int]:
        """Where the next append goes: pass it to ``truncate`` to take appends back."""
        return self._pack, self._size

    def truncate(self, mark: tuple[str, int]) -> int:
        """Cut off what was appended since ``mark`` (its rows did not commit); bytes freed.

        Appends since the mark went to the open pack: the mark's own, or a new one started
        after it (then everything in the new pack is cut).
        """
        if self._fd < 0:
            return 0
        keep = mark[1] if mark[0] == self._pack else 0
        freed = self._size - keep
        if freed <= 0:
            return 0
        os.ftruncate(self._fd, keep)
        self._size = keep
        return freed

    def flush(self) -> None:
        """Make appended thumbnails durable (before the rows that point at them commit)."""
        if self._dirty and self._fd >= 0:
            os.fdatasync(self._fd)
            self._dirty = False

    def read(self, pack: str, offset: int, length: int) -> bytes:
        """Read one thumbnail back."""
        path = self._path(pack)
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read(length)
        if len(data) != length:
            raise FileNotFoundError(f"thumbnail {pack}@{offset} is gone (purged or truncated)")
        return data

    def close(self) -> None:
        """Sync and close the open pack."""
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _path(self, pack: str) -> Path:
        day, _, name = pack.partition("/")
        if not (day.isdigit() and name.isdigit()):
            raise ValueError(f"bad thumbnail pack reference {pack!r}")
        return self._root / day / f"{name}.pack"

    def _ensure_pack(self, incoming: int) -> None:
        day = time.strftime("%Y%m%d", time.gmtime())
        if self._fd >= 0 and self._pack.startswith(day) and self._size + incoming <= self._limit:
            return
        self.close()
        folder = self._root / day
        folder.mkdir(parents=True, exist_ok=True)
        existing = sorted(p.stem for p in folder.glob("*.pack"))
        number = int(existing[-1]) + 1 if existing else 1
        self._pack = f"{day}/{number:06d}"
        self._fd = os.open(self._path(self._pack), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self._size = 0
