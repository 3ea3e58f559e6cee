"""Durable store-and-forward spool: an append-only segmented log on local disk.

Every sighting the pipeline accepts is appended here before anything is sent. The
publisher reads records in order, and a record is deleted only after central has
acknowledged the batch that carried it (``ack``), so nothing is lost when central is down
or the agent is killed.

Layout of ``<dir>``::

    segments/<first seq, 20 digits>.seg   records, appended with one write() per append()
    state.json                            floor (every seq below it is done) and counters

Record: ``<length u32><crc32 u32><seq u64>`` then ``length`` payload bytes. A record is in
the kernel once ``append`` returns (survives SIGKILL); ``fsync`` runs at most every
``fsync_interval`` seconds (0 = on every append) for power loss. On open, a torn or
corrupt tail is cut off and counted. The spool is bounded by ``max_bytes``: when full, the
oldest segment is deleted and its unsent records are counted as evictions, never silently.
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import struct
import threading
import time
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<IIQ")
_SUFFIX = ".seg"


@dataclass
class _Segment:
    first_seq: int
    path: Path
    offsets: array[int] = field(default_factory=lambda: array("Q"))
    size: int = 0

    @property
    def end_seq(self) -> int:
        """One past the last seq in this segment."""
        return self.first_seq + len(self.offsets)


@dataclass(frozen=True)
class SpoolStats:
    """Counters reported in heartbeats."""

    depth: int
    bytes: int
    evictions: int
    corrupt: int


class Spool:
    """A bounded, durable FIFO of byte records with sequence numbers and acks."""

    def __init__(
        self,
        directory: Path,
        max_bytes: int = 1 << 30,
        segment_bytes: int | None = None,
        fsync_interval: float = 0.1,
    ) -> None:
        self._dir = directory
        self._seg_dir = directory / "segments"
        self._seg_dir.mkdir(parents=True, exist_ok=True)
        self._max_bytes = max_bytes
        self._segment_bytes = segment_bytes or min(max(max_bytes // 16, 64 << 10), 64 << 20)
        self._fsync_interval = fsync_interval
        self._lock = threading.Lock()
        self._new_data = threading.Condition(self._lock)
        self._segments: list[_Segment] = []
        self._acked_above: set[int] = set()
        self._floor = 1
        self._evictions = 0
        self._corrupt = 0
        self._fd = -1
        self._dirty = False
        self._last_sync = time.monotonic()
        self._load_state()
        self._recover()

    # -- public API ---------------------------------------------------------------------

    def append(self, payloads: Sequence[bytes]) -> list[int]:
        """Append records; return their seqs. Data is in the OS when this returns."""
        if not payloads:
            return []
        with self._lock:
            seg = self._writable_segment()
            seqs: list[int] = []
            parts: list[bytes] = []
            offset = seg.size
            base = seg.end_seq
            for payload in payloads:
                seq = base + len(seqs)
                parts.append(_HEADER.pack(len(payload), zlib.crc32(payload), seq))
                parts.append(payload)
                seqs.append(seq)
                seg.offsets.append(offset)
                offset += _HEADER.size + len(payload)
            blob = b"".join(parts)
            written = os.write(self._fd, blob)
            if written != len(blob):  # a full disk raises OSError; a short write is the same
                raise OSError(f"spool: short write ({written} of {len(blob)} bytes)")
            seg.size = offset
            self._dirty = True
            self._maybe_sync()
            self._enforce_bound()
            self._new_data.notify_all()
            return seqs

    def read(self, after: int, max_records: int, max_bytes: int) -> list[tuple[int, bytes]]:
        """Return up to ``max_records`` records with seq > ``after``, oldest first."""
        out: list[tuple[int, bytes]] = []
        with self._lock:
            seq = max(after + 1, self._floor)
            idx = self._segment_index(seq)
            budget = max_bytes
            while idx < len(self._segments) and len(out) < max_records and budget > 0:
                seg = self._segments[idx]
                seq = max(seq, seg.first_seq)
                last = min(seg.end_seq, seq + max_records - len(out))
                if seq < last:
                    got = self._read_run(seg, seq, last, budget)
                    out.extend(got)
                    budget -= sum(len(p) for _, p in got)
                    seq = last
                idx += 1
        if self._acked_above:
            out = [(s, p) for s, p in out if s not in self._acked_above]
        return out

    def ack(self, seqs: Iterable[int]) -> None:
        """Mark records delivered; drop segments whose records are all delivered."""
        with self._lock:
            self._acked_above.update(s for s in seqs if s >= self._floor)
            while self._floor in self._acked_above:
                self._acked_above.discard(self._floor)
                self._floor += 1
            self._drop_done_segments()
            self._save_state()

    def wait(self, after: int, timeout: float) -> bool:
        """Block until a record with seq > ``after`` exists or ``timeout`` passes."""
        with self._lock:
            return self._new_data.wait_for(lambda: self._head() > after + 1, timeout)

    @property
    def floor(self) -> int:
        """Every seq below this is delivered or evicted."""
        with self._lock:
            return self._floor

    def stats(self) -> SpoolStats:
        """Depth (undelivered records), bytes on disk, evictions and corrupt records."""
        with self._lock:
            depth = self._head() - self._floor - len(self._acked_above)
            size = sum(s.size for s in self._segments)
            return SpoolStats(depth, size, self._evictions, self._corrupt)

    def sync(self) -> None:
        """Force buffered records to stable storage now."""
        with self._lock:
            if self._fd >= 0 and self._dirty:
                os.fsync(self._fd)
                self._dirty = False
                self._last_sync = time.monotonic()

    def close(self) -> None:
        """Sync, save state and close the active segment."""
        self.sync()
        with self._lock:
            self._save_state()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    # -- internals ----------------------------------------------------------------------

    def _head(self) -> int:
        return self._segments[-1].end_seq if self._segments else self._floor

    def _segment_index(self, seq: int) -> int:
        firsts = [s.first_seq for s in self._segments]
        return max(bisect.bisect_right(firsts, seq) - 1, 0)

    def _read_run(
        self, seg: _Segment, first: int, last: int, budget: int
    ) -> list[tuple[int, bytes]]:
        """Read records ``first..last-1`` of one segment with a single pread."""
        start = seg.offsets[first - seg.first_seq]
        end = seg.offsets[last - seg.first_seq] if last < seg.end_seq else seg.size
        fd = os.open(seg.path, os.O_RDONLY)
        try:
            data = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        out: list[tuple[int, bytes]] = []
        pos = 0
        for seq in range(first, last):
            length = _HEADER.unpack_from(data, pos)[0]
            payload = data[pos + _HEADER.size : pos + _HEADER.size + length]
            out.append((seq, payload))
            pos += _HEADER.size + length
            budget -= length
            if budget <= 0:
                break
        return out

    def _writable_segment(self) -> _Segment:
        if self._segments and self._fd >= 0 and self._segments[-1].size < self._segment_bytes:
            return self._segments[-1]
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
        first = self._head()
        seg = _Segment(first, self._seg_dir / f"{first:020d}{_SUFFIX}")
        self._fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        _fsync_dir(self._seg_dir)
        self._segments.append(seg)
        return seg

    def _maybe_sync(self) -> None:
        now = time.monotonic()
        if now - self._last_sync >= self._fsync_interval:
            os.fsync(self._fd)
            self._dirty = False
            self._last_sync = now

    def _enforce_bound(self) -> None:
        while len(self._segments) > 1 and sum(s.size for s in self._segments) > self._max_bytes:
            seg = self._segments.pop(0)
            lost = sum(
                1
                for s in range(max(seg.first_seq, self._floor), seg.end_seq)
                if s not in self._acked_above
            )
            self._evictions += lost
            self._acked_above = {s for s in self._acked_above if s >= seg.end_seq}
            self._floor = max(self._floor, seg.end_seq)
            seg.path.unlink(missing_ok=True)
            if lost:
                log.warning(
                    "spool full (%d bytes max): evicted %d undelivered records (seq %d-%d)",
                    self._max_bytes,
                    lost,
                    seg.first_seq,
                    seg.end_seq - 1,
                )
            self._save_state()

    def _drop_done_segments(self) -> None:
        # The active (last) segment stays; it is still being written.
        while len(self._segments) > 1 and self._segments[0].end_seq <= self._floor:
            self._segments.pop(0).path.unlink(missing_ok=True)

    def _load_state(self) -> None:
        path = self._dir / "state.json"
        if not path.exists():
            return
        try:
            state = json.loads(path.read_text())
            self._floor = int(state["floor"])
            self._evictions = int(state.get("evictions", 0))
            self._corrupt = int(state.get("corrupt", 0))
        except (ValueError, KeyError, TypeError) as err:
            # Losing the floor only means resending delivered records; central de-duplicates.
            log.error("spool state %s unreadable (%s); resending from the oldest record", path, err)

    def _save_state(self) -> None:
        path = self._dir / "state.json"
        tmp = path.with_suffix(".tmp")
        state = {"floor": self._floor, "evictions": self._evictions, "corrupt": self._corrupt}
        tmp.write_text(json.dumps(state))
        os.replace(tmp, path)

    def _recover(self) -> None:
        for path in sorted(self._seg_dir.glob(f"*{_SUFFIX}")):
            seg = _Segment(int(path.stem), path)
            self._scan(seg)
            if seg.end_seq <= self._floor or not seg.offsets:
                path.unlink()
                continue
            self._segments.append(seg)
        if self._segments:
            self._floor = max(self._floor, self._segments[0].first_seq)
        elif self._floor < 1:
            self._floor = 1

    def _scan(self, seg: _Segment) -> None:
        data = seg.path.read_bytes()
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, crc, seq = _HEADER.unpack_from(data, offset)
            end = offset + _HEADER.size + length
            payload = data[offset + _HEADER.size : end]
            if end > len(data) or zlib.crc32(payload) != crc or seq != seg.end_seq:
                break
            seg.offsets.append(offset)
            offset = end
        if offset < len(data):
            self._corrupt += 1
            log.error(
                "spool segment %s: torn or corrupt record at byte %d; cut %d bytes",
                seg.path.name,
                offset,
                len(data) - offset,
            )
            with open(seg.path, "r+b") as fh:
                fh.truncate(offset)
                os.fsync(fh.fileno())
        seg.size = offset


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
