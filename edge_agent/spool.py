"""Durable store-and-forward spool: an append-only segmented log on local disk.

Every sighting the pipeline accepts is appended here before anything is sent. The
publisher reads records in order, and a record is deleted only after central has
acknowledged the batch that carried it (``ack``), so nothing is lost when central is down
or the agent is killed.

Layout of ``<dir>``::

    segments/<first seq, 20 digits>.seg   records, appended with one write() per append()
    state.json                            floor (every seq below it is done) and counters

Record: ``<length u32><crc32 u32><seq u64>`` then ``length`` payload bytes. A record is in
the kernel once ``append`` returns (survives SIGKILL). For power loss, a flusher thread
fsyncs written records within ``fsync_interval`` seconds, also when no further append
comes (0 = every append syncs before it returns); ``state.json`` is saved by the same
thread, written to a temporary file, fsynced, renamed over and the directory fsynced. On
open, a torn or corrupt tail is cut off and counted. The spool is bounded by
``max_bytes``: when full, the oldest segment is deleted and its unsent records are
counted as evictions, never silently.

A full disk (or any failed write) refuses the whole ``append`` with
:class:`SpoolWriteError`: the segment is cut back to its last whole record, so the file,
the in-memory index and the sequence numbers stay as they were, and the next append
succeeds once there is room. A failed fsync or state save is counted and retried by the
flusher; it never fails an append or an ack.
"""

from __future__ import annotations

import bisect
import errno
import json
import logging
import os
import struct
import threading
import weakref
import zlib
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shared import durable

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
    write_errors: int = 0
    sync_errors: int = 0
    peak_depth: int = 0  # the most undelivered records at once since the spool was opened


class SpoolWriteError(OSError):
    """An append was refused (disk full, I/O error): none of its records was kept."""


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
        self._write_errors = 0
        self._sync_errors = 0
        self._peak_depth = 0
        self._fd = -1
        self._dirty = False  # records written but not yet fsynced
        self._writes = 0  # appends so far, to tell whether a sync covered the latest
        self._state_dirty = False  # state.json is behind the counters in memory
        self._write_failing = False  # the last append failed (log once per run of failures)
        self._sync_failing = False  # the last fsync or state save failed
        self._load_state()
        self._recover()
        self._closed = threading.Event()
        self._flusher = threading.Thread(
            target=_flush_loop,
            args=(weakref.ref(self), self._closed, fsync_interval or 0.1),
            name="spool-flusher",
            daemon=True,
        )
        self._flusher.start()

    # -- public API ---------------------------------------------------------------------

    def append(self, payloads: Sequence[bytes]) -> list[int]:
        """Append records; return their seqs. Data is in the OS when this returns.

        Raises:
            SpoolWriteError: the disk refused the write; no record of ``payloads`` was
                kept and the spool is as it was before the call.
        """
        if not payloads:
            return []
        with self._lock:
            seg = self._writable_segment()
            base = seg.end_seq
            offsets: list[int] = []
            parts: list[bytes] = []
            offset = seg.size
            for i, payload in enumerate(payloads):
                parts.append(_HEADER.pack(len(payload), zlib.crc32(payload), base + i))
                parts.append(payload)
                offsets.append(offset)
                offset += _HEADER.size + len(payload)
            self._write(seg, b"".join(parts), len(payloads))
            seg.offsets.extend(offsets)
            seg.size = offset
            self._dirty = True
            self._writes += 1
            if self._fsync_interval == 0:
                self._sync_locked()
            self._enforce_bound()
            self._peak_depth = max(self._peak_depth, self._depth())
            self._new_data.notify_all()
            return list(range(base, base + len(payloads)))

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
            self._state_dirty = True  # saved by the flusher: a lost floor only means resends

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
        """Depth (undelivered records), bytes on disk, evictions, corrupt records, errors."""
        with self._lock:
            depth = self._depth()
            size = sum(s.size for s in self._segments)
            return SpoolStats(
                depth,
                size,
                self._evictions,
                self._corrupt,
                self._write_errors,
                self._sync_errors,
                max(self._peak_depth, depth),
            )

    def _depth(self) -> int:
        return self._head() - self._floor - len(self._acked_above)

    def sync(self) -> None:
        """Force written records and the state file to stable storage now.

        Raises:
            OSError: the fsync or the state save failed (also counted); retried later.
        """
        with self._lock:
            self._sync_locked(raise_errors=True)
            if self._state_dirty:
                self._save_state(raise_errors=True)

    def close(self) -> None:
        """Stop the flusher, sync, save state and close the active segment."""
        self._closed.set()
        if self._flusher is not threading.current_thread():
            self._flusher.join()
        with self._lock:
            self._sync_locked()
            self._save_state()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def flush(self) -> None:
        """What the flusher thread does on each tick: sync records and state if behind.

        The fsync runs outside the lock (on a duplicate of the segment's descriptor), so
        appends never wait for the disk. Errors are counted and logged, not raised.
        """
        with self._lock:
            if self._fd < 0 or not self._dirty:
                fd, writes = -1, self._writes
            else:
                fd, writes = os.dup(self._fd), self._writes
        if fd >= 0:
            try:
                os.fsync(fd)
            except OSError as err:
                with self._lock:
                    self._failed("fsync of the spool segment", err)
                return
            finally:
                os.close(fd)
        with self._lock:
            if fd >= 0 and self._writes == writes:
                self._dirty = False
                self._sync_succeeded()
            if self._state_dirty:
                self._save_state()

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
        self._seal()
        first = self._head()
        path = self._seg_dir / f"{first:020d}{_SUFFIX}"
        try:
            # Nothing at or above the head is on disk, so an existing file there is stale.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        except OSError as err:
            self._write_errors += 1
            raise SpoolWriteError(
                err.errno, f"spool: cannot create {path}: {err.strerror}"
            ) from err
        try:
            durable.fsync_dir(self._seg_dir)
        except OSError as err:
            os.close(fd)
            path.unlink(missing_ok=True)
            self._write_errors += 1
            raise SpoolWriteError(
                err.errno, f"spool: cannot create {path}: {err.strerror}"
            ) from err
        self._fd = fd
        seg = _Segment(first, path)
        self._segments.append(seg)
        return seg

    def _write(self, seg: _Segment, blob: bytes, count: int) -> None:
        """Write ``blob`` at the end of ``seg`` whole, or cut the file back and raise."""
        view = memoryview(blob)
        try:
            while view:
                # A short write (the disk filled up mid-way) is followed by one that
                # writes the rest or says why it cannot.
                written = os.write(self._fd, view)
                if written == 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                view = view[written:]
        except OSError as err:
            self._write_errors += 1
            self._cut_back(seg)
            message = (
                f"spool: cannot append {count} record(s) ({len(blob)} bytes) to {seg.path}: "
                f"{err.strerror}; none of them was kept"
            )
            if not self._write_failing:
                log.error("%s", message)
            self._write_failing = True
            raise SpoolWriteError(err.errno, message) from err
        if self._write_failing:
            log.warning("spool: appends succeed again (%d refused)", self._write_errors)
            self._write_failing = False

    def _cut_back(self, seg: _Segment) -> None:
        """Truncate the active segment to its last whole record after a failed write."""
        try:
            os.ftruncate(self._fd, seg.size)
        except OSError as err:
            # The tail stays on disk but outside the index; appends go to a new segment
            # and recovery cuts the tail on the next open.
            log.error("spool: cannot cut %s back to %d bytes: %s", seg.path, seg.size, err)
            self._seal()

    def _seal(self) -> None:
        """Sync and close the active segment; the next append starts a new one."""
        if self._fd < 0:
            return
        self._sync_locked()
        os.close(self._fd)
        self._fd = -1
        if self._segments and not self._segments[-1].offsets:
            self._segments.pop().path.unlink(missing_ok=True)

    def _sync_locked(self, raise_errors: bool = False) -> None:
        if self._fd < 0 or not self._dirty:
            return
        try:
            os.fsync(self._fd)
        except OSError as err:
            self._failed("fsync of the spool segment", err)
            if raise_errors:
                raise
            return
        self._dirty = False
        self._sync_succeeded()

    def _failed(self, what: str, err: OSError) -> None:
        """Count a failed sync or state save; log the first of a run of failures."""
        self._sync_errors += 1
        if not self._sync_failing:
            log.error("spool: %s failed: %s; retrying", what, err)
        self._sync_failing = True

    def _sync_succeeded(self) -> None:
        if self._sync_failing:
            log.warning("spool: syncs succeed again (%d failed)", self._sync_errors)
            self._sync_failing = False

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
            self._state_dirty = True

    def _drop_done_segments(self) -> None:
        # The active (last) segment stays; it is still being written.
        while len(self._segments) > 1 and self._segments[0].end_seq <= self._floor:
            self._segments.pop(0).path.unlink(missing_ok=True)

    def _load_state(self) -> None:
        path = self._dir / "state.json"
        durable.remove_stale_temps(path)  # a crash mid-save; one agent owns a spool
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

    def _save_state(self, raise_errors: bool = False) -> None:
        state = {"floor": self._floor, "evictions": self._evictions, "corrupt": self._corrupt}
        try:
            durable.write_atomic(self._dir / "state.json", json.dumps(state).encode())
        except OSError as err:
            self._state_dirty = True
            self._failed("saving state.json", err)
            if raise_errors:
                raise
            return
        self._state_dirty = False
        self._sync_succeeded()

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


def _flush_loop(ref: weakref.ref[Spool], closed: threading.Event, period: float) -> None:
    """The flusher thread: sync every ``period`` seconds until closed or garbage."""
    while not closed.wait(period):
        spool = ref()
        if spool is None:
            return
        spool.flush()
        del spool  # no strong reference while waiting
