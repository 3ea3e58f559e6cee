"""Central's one DuckDB writer: one connection, on one thread, fed by a queue.

Every write in central (ingest, alerts, watchlists, accounts, audit, retention, the plate
indexer, agent health) is a *job*: a function of the writer connection, handed to
``Writer.submit`` or ``Writer.call``. The thread drains what is queued (up to ``max_batch``
jobs), runs the jobs in one transaction and commits, then resolves each job's future. So
there is one order of changes, no write-write conflicts, and many small writes share one
commit (DuckDB has a floor of several milliseconds per transaction).

Failure rules:

* A job that raises ``VartaError`` was refused before it wrote anything (a validation or
  not-found answer): its caller gets the error, the others in the transaction commit.
* Any other exception, or a failing ``COMMIT``, rolls the transaction back. Every
  ``on_rollback`` listener then reloads whatever state it caches, and the jobs are run
  again one transaction each, so one bad job never costs the others their write. A job
  that fails alone gets its exception.
* A job submitted with ``alone=True`` runs outside any batch transaction and manages its
  own (``BEGIN``/``COMMIT``), for long maintenance steps and ``CHECKPOINT``.
* A job submitted with ``background=True`` (one step of long work, such as a range of a
  large wanted-list import) runs in a transaction of its own when no other job has
  waited for ``BACKGROUND_GRACE_S`` (an ingest turn's alert follow-up comes right after
  its commit), or when it has waited ``BACKGROUND_MAX_WAIT_S`` itself: ingest and alerts
  wait at most for the one background step in progress, and long work still finishes.

The writer connection never leaves this module's thread; readers use
``Database.reader()``, cursors in read-only transactions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

import duckdb

from shared.errors import VartaError

log = logging.getLogger(__name__)

T = TypeVar("T")

BACKGROUND_GRACE_S = 0.01
"""A background job starts only after no other job has come for this long."""

BACKGROUND_MAX_WAIT_S = 1.0
"""...or once it has waited this long (work under full load still progresses)."""
Job = Callable[[duckdb.DuckDBPyConnection], T]


@dataclass
class WriterStats:
    """Counters since start (read by health and status endpoints)."""

    jobs: int = 0
    commits: int = 0
    rollbacks: int = 0
    failed_jobs: int = 0
    last_error: str = ""
    last_commit_at: float = 0.0
    last_failure_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return dict(self.__dict__)


@dataclass
class _Job:
    run: Callable[[duckdb.DuckDBPyConnection], Any]
    alone: bool = False
    future: Future[Any] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)


class WriterStopped(RuntimeError):
    """The writer is not running: the job was not queued."""


class Writer:
    """Owns the DuckDB write connection and its thread.

    Args:
        con: The connection; nobody else may use it once the writer is started.
        max_batch: Jobs run in one transaction at most.
        name: Thread name (logs, health).
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, *, max_batch: int = 1000, name: str = "db-writer"
    ) -> None:
        self._con = con
        self._max_batch = max_batch
        self._name = name
        self._ready = threading.Condition()
        self._queue: deque[_Job | None] = deque()  # None: stop
        self._background: deque[_Job] = deque()
        self._last_job_at = 0.0  # monotonic time the last non-background jobs were done
        self._thread: threading.Thread | None = None
        self._rollback_listeners: list[Callable[[duckdb.DuckDBPyConnection], None]] = []
        self._commit_listeners: list[Callable[[], None]] = []
        self._accepting = False
        self.stats = WriterStats()

    # -- any thread -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread."""
        if self._thread is not None:
            return
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Run every job already queued, then stop the thread."""
        self._accepting = False
        if self._thread is not None:
            self._put(None)
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.error("writer thread did not stop within %.0fs", timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        """Whether the writer thread is running."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def queued(self) -> int:
        """Jobs waiting for the writer."""
        return len(self._queue) + len(self._background)

    def on_rollback(self, listener: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        """Call ``listener(con)`` on the writer thread after every rollback (to reload
        cached state that the rolled-back jobs may have changed)."""
        self._rollback_listeners.append(listener)

    def on_commit(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` on the writer thread after every commit (to publish what the
        committed jobs changed, e.g. the alert feed head)."""
        self._commit_listeners.append(listener)

    def submit(self, run: Job[T], *, alone: bool = False, background: bool = False) -> Future[T]:
        """Queue ``run(con)``; the future resolves after its transaction commits.

        Raises:
            WriterStopped: The writer is not running.
        """
        if not self._accepting:
            raise WriterStopped("the database writer is not running")
        job = _Job(run, alone)
        self._put(job, background)
        return job.future

    def _put(self, item: _Job | None, background: bool = False) -> None:
        with self._ready:
            if background and item is not None:
                self._background.append(item)
            else:
                self._queue.append(item)
            self._ready.notify()

    def call(
        self, run: Job[T], *, timeout: float = 60.0, alone: bool = False, background: bool = False
    ) -> T:
        """Run ``run(con)`` on the writer thread and wait for its commit; its result.

        Raises:
            Whatever ``run`` raised, or the commit's error.
        """
        if threading.current_thread() is self._thread:  # a job calling back: run inline
            return run(self._con)
        result: T = self.submit(run, alone=alone, background=background).result(timeout)
        return result

    # -- the writer thread ------------------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while True:
            taken, background = self._take(stopping)
            if background is not None:
                self._flush([background])
                continue
            if not taken and stopping:
                return  # both lanes are empty
            jobs: list[_Job] = []
            for item in taken:
                if item is None:
                    stopping = True
                elif item.alone:
                    self._flush(jobs)
                    jobs = []
                    self._run_alone(item)
                else:
                    jobs.append(item)
            self._flush(jobs)
            self._last_job_at = time.monotonic()

    def _take(self, stopping: bool) -> tuple[list[_Job | None], _Job | None]:
        """Up to ``max_batch`` queued jobs, else one background job (see the module
        docstring for when); waits for either (unless stopping: then nothing left means
        stop)."""
        with self._ready:
            while True:
                if self._queue:
                    count = min(len(self._queue), self._max_batch)
                    return [self._queue.popleft() for _ in range(count)], None
                if not self._background:
                    if stopping:
                        return [], None
                    self._ready.wait()
                    continue
                now, job = time.monotonic(), self._background[0]
                quiet = now - self._last_job_at >= BACKGROUND_GRACE_S
                if stopping or quiet or now - job.queued_at >= BACKGROUND_MAX_WAIT_S:
                    return [], self._background.popleft()
                self._ready.wait(BACKGROUND_GRACE_S - (now - self._last_job_at))

    def _flush(self, jobs: list[_Job]) -> None:
        if jobs and not self._commit(jobs, last_try=len(jobs) == 1):
            for job in jobs:  # one job's failure must not cost the others: one by one
                self._commit([job], last_try=True)

    def _run_alone(self, job: _Job) -> None:
        self.stats.jobs += 1
        try:
            value = job.run(self._con)
        except BaseException as err:  # the caller gets every error through its future
            self._rollback()
            self._failed(1, err)
            job.future.set_exception(err)
            return
        self._committed(0)
        job.future.set_result(value)

    def _commit(self, jobs: list[_Job], last_try: bool) -> bool:
        """Run jobs in one transaction; False if it failed and ``last_try`` is not set."""
        results: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            self._con.execute("BEGIN")
            for job in jobs:
                try:
                    results.append((job, job.run(self._con), None))
                except VartaError as err:  # refused before writing anything
                    results.append((job, None, err))
            self._con.execute("COMMIT")
        except Exception as err:
            self._rollback()
            self._failed(len(jobs), err)
            if not last_try:
                return False
            for job in jobs:
                job.future.set_exception(err)
            return True
        self._committed(len(jobs))
        for job, value, error in results:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)
        return True

    def _committed(self, jobs: int) -> None:
        self.stats.jobs += jobs
        self.stats.commits += 1
        self.stats.last_commit_at = time.time()
        for listener in self._commit_listeners:
            try:
                listener()
            except Exception:  # a listener's own failure must not stop the writer
                log.exception("commit listener failed")

    def _failed(self, jobs: int, err: BaseException) -> None:
        self.stats.failed_jobs += jobs
        self.stats.last_error = f"{type(err).__name__}: {err}"
        self.stats.last_failure_at = time.time()
        log.error("database write of %d job(s) failed, rolled back: %s", jobs, err)

    def _rollback(self) -> None:
        self.stats.rollbacks += 1
        try:
            self._con.execute("ROLLBACK")
        except duckdb.Error:
            log.debug("rollback had no open transaction")
        for listener in self._rollback_listeners:
            try:
                listener(self._con)
            except Exception:  # a listener's own failure must not stop the writer
                log.exception("rollback listener failed")
