"""Registry exports read in a child process, away from central's interpreter lock.

Reading a million-row export is ~12 s of Python (CSV records, plate folding, checks). On a
thread inside central it competes for the interpreter lock with the ingest, writer, alert
and HTTP threads: measured with ``varta bench alerts --upload-entries 1000000``, alert
latency rose from a p95 of 53 ms to 7.7 s while the upload was read. ``ExportReader`` reads
in one spawned worker process instead and hands back the Arrow table (its buffers cross
the pipe as they are). The offline CLI reads in its own process (``isolated=False``).
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from central.watchlist.importer import Batch, Format, Progress, read_csv, read_file, read_json

log = logging.getLogger(__name__)

READ_TIMEOUT_S = 900.0
"""Longest wait for the worker to read one export."""


def read_bytes(data: bytes, fmt: Format, default_priority: int) -> Batch:
    """An export held in memory (an upload's body), read like ``read_file``."""
    if fmt == "csv":
        return read_csv(io.BytesIO(data), default_priority, len(data))
    return read_json(data, fmt == "jsonl", default_priority)


class ExportReader:
    """Reads exports, in a worker process when ``isolated`` (started on first use).

    A worker that dies (out of memory on a hostile file, killed) fails that read with
    ``RuntimeError``; the next read starts a fresh one.
    """

    def __init__(self, *, isolated: bool = True) -> None:
        self._isolated = isolated
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def read_file(
        self,
        path: Path,
        fmt: Format | None = None,
        default_priority: int = 3,
        progress: Progress | None = None,
    ) -> Batch:
        """``importer.read_file`` (``progress`` is reported only when not isolated)."""
        if not self._isolated:
            return read_file(path, fmt, default_priority, progress)
        batch = self._run(read_file, path, fmt, default_priority)
        log.info("read %s: %s rows, %s rejected", path, batch.rows, len(batch.problems))
        return batch

    def read_bytes(self, data: bytes, fmt: Format, default_priority: int) -> Batch:
        """``read_bytes`` of this module."""
        if not self._isolated:
            return read_bytes(data, fmt, default_priority)
        return self._run(read_bytes, data, fmt, default_priority)

    def close(self) -> None:
        """Stop the worker (a read in progress fails)."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, fn: object, *args: object) -> Batch:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn")
                )
            pool = self._pool
        try:
            batch: Batch = pool.submit(fn, *args).result(timeout=READ_TIMEOUT_S)  # type: ignore[arg-type]
        except BrokenProcessPool as err:
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            raise RuntimeError(f"the export reader process died: {err}") from err
        return batch
