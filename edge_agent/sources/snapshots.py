"""A folder that cameras push JPEG snapshots into (typically by FTP), watched by polling.

Polling, not inotify: it works the same on local disks, NFS and FTP server spools. A scan
lists the folder and stat()s only files not read yet; files read already are stat-ed
every ``rescan_s`` (5 s) to notice rewrites. With 3,000 kept files a scan costs ~2.5 ms
(a full one ~15 ms), about 1.5 % of a core at the default 0.2 s poll; delete or move
keeps the folder small.

A file is read once it is fully written: its size and mtime were the same on two scans
in a row and it ends with the JPEG end-of-image marker, or, lacking the marker, it has
not changed for ``settle_s`` (it is then read and, being incomplete, counted as corrupt).
Each file is processed once (its name, size and mtime are remembered while it stays in
the folder, so a camera that rewrites one ``latest.jpg`` is read on every rewrite),
oldest first, then kept, deleted or moved. A file that does not decode is logged,
counted (``SourceStatus.corrupt``) and skipped. Files already in the folder at start are
skipped unless ``process_existing``. A missing folder takes the camera offline until it
reappears.
"""

from __future__ import annotations

import fnmatch
import logging
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from edge_agent.sources.base import CameraSource, SourceError

if TYPE_CHECKING:
    from collections.abc import Callable

    from edge_agent.capture import CameraConfig

log = logging.getLogger(__name__)

_SOI, _EOI = b"\xff\xd8", b"\xff\xd9"
_PADDING = b"\x00\r\n \t"


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float  # monotonic time this size/mtime was first seen


class SnapshotFolderSource(CameraSource):
    """A ``snapshots`` camera: new JPEG files in a folder."""

    def __init__(
        self,
        config: CameraConfig,
        on_frame: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create a stopped snapshot source (see ``CameraSource``)."""
        super().__init__(config, on_frame, clock)
        self._folder = Path(config.source)
        self._pending: dict[str, _Seen] = {}
        self._done: dict[str, tuple[int, int]] = {}  # name -> (size, mtime_ns) when read
        self._primed = False
        self._last_full = -math.inf
        self._match = re.compile(fnmatch.translate(config.snapshots.pattern.lower())).match

    def _open(self) -> None:
        names, stats = self._scan(full=True)
        self._set_online()  # an empty folder is a healthy camera with nothing to say
        if not self._primed:
            if not self.config.snapshots.process_existing:
                self._done.update({n: (st.st_size, st.st_mtime_ns) for n, st in stats.items()})
            self._primed = True
            log.info(
                "camera %s: watching %s (%d files already there)",
                self.config.camera_id,
                self._folder,
                len(names),
            )
        else:
            log.info("camera %s: snapshot folder %s is back", self.config.camera_id, self._folder)

    def _read(self) -> bool:
        ready = self._ready_files()
        for name in ready:
            if self.stopping or not self._process(name):
                break
        if not ready:
            self._stop.wait(self.config.snapshots.poll_s)
        return True

    def _scan(self, full: bool) -> tuple[set[str], dict[str, os.stat_result]]:
        """Matching names in the folder, and the stat of each one that needs a look.

        stat() is most of a scan's cost, so files read already are stat-ed (to notice a
        rewrite) only on a full scan, once every ``rescan_s``.
        """
        try:
            with os.scandir(self._folder) as it:
                entries = [e for e in it if self._match(e.name.lower())]
        except FileNotFoundError as err:
            raise SourceError(f"snapshot folder {self._folder} is missing") from err
        except OSError as err:
            raise SourceError(f"snapshot folder {self._folder} cannot be read: {err}") from err
        names = {e.name for e in entries}
        stats = {}
        for entry in entries:
            if not full and entry.name in self._done:
                continue
            try:
                if entry.is_file():
                    stats[entry.name] = entry.stat()
            except FileNotFoundError:  # moved away between listing and stat
                names.discard(entry.name)
        return names, stats

    def _ready_files(self) -> list[str]:
        """Names of new files that are fully written, oldest first."""
        now = time.monotonic()
        full = now - self._last_full >= self.config.snapshots.rescan_s
        names, stats = self._scan(full)
        if full:
            self._last_full = now
        self._done = {n: sig for n, sig in self._done.items() if n in names}
        self._pending = {n: s for n, s in self._pending.items() if n in stats}
        ready: list[tuple[int, str]] = []
        for name, st in stats.items():
            signature = (st.st_size, st.st_mtime_ns)
            if name in self._done:
                if self._done[name] == signature:
                    continue
                del self._done[name]  # rewritten under the same name: a new snapshot
            seen = self._pending.get(name)
            if seen is None or (seen.size, seen.mtime_ns) != signature:
                self._pending[name] = _Seen(st.st_size, st.st_mtime_ns, now)
                continue
            settled = now - seen.since >= self.config.snapshots.settle_s
            if settled or _ends_with_eoi(self._folder / name):
                ready.append((st.st_mtime_ns, name))
        return [name for _, name in sorted(ready)]

    def _process(self, name: str) -> bool:
        """Decode, offer and dispose of one file; False if a stop interrupted the offer."""
        path = self._folder / name
        seen = self._pending.pop(name)
        self._done[name] = (seen.size, seen.mtime_ns)
        try:
            data = path.read_bytes()
        except OSError as err:
            self._note_error(f"snapshot {path} could not be read: {err}")
            return True
        image, problem = _decode_jpeg(data)
        if image is None:
            self._note_corrupt(f"skipped corrupt snapshot {path}: {problem}")
        else:
            self._count_decoded()
            if not self._offer(image, seen.mtime_ns / 1e9, str(path)):
                del self._done[name]
                return False
        self._dispose(path)
        return True

    def _dispose(self, path: Path) -> None:
        """Apply ``after``: keep, delete or move a processed file."""
        opts = self.config.snapshots
        try:
            if opts.after == "delete":
                path.unlink(missing_ok=True)
            elif opts.after == "move" and opts.move_to is not None:
                opts.move_to.mkdir(parents=True, exist_ok=True)
                target = opts.move_to / path.name
                if target.exists():
                    target = target.with_name(f"{path.stem}.{time.time_ns()}{path.suffix}")
                path.replace(target)
        except OSError as err:
            message = f"could not {opts.after} processed snapshot {path}: {err}"
            log.warning("camera %s: %s", self.config.camera_id, message)
            self._note_error(message)


def _ends_with_eoi(path: Path) -> bool:
    """Whether the file's last bytes (past padding) are the JPEG end-of-image marker."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(size - 64, 0))
            tail = f.read()
    except OSError:
        return False
    return tail.rstrip(_PADDING).endswith(_EOI)


def _decode_jpeg(data: bytes) -> tuple[NDArray[np.uint8] | None, str]:
    """BGR image of a complete JPEG, or None and what is wrong with it."""
    import cv2

    if not data.startswith(_SOI):
        return None, f"not a JPEG (starts with {data[:4].hex() or 'nothing'})"
    if not data.rstrip(_PADDING).endswith(_EOI):
        return None, f"truncated JPEG ({len(data)} bytes, no end-of-image marker)"
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as err:
        return None, f"JPEG decoder failed: {err}"
    if image is None:
        return None, "JPEG decoder failed"
    return np.asarray(image, dtype=np.uint8), ""
