"""What a process costs, read from Linux ``/proc``: CPU seconds, RSS, open files, threads.

Benchmarks measure central and the agents from outside their code, the way an operator's
``top`` would: ``utime + stime`` of ``/proc/<pid>/stat`` (all threads, including the ones
ZeroMQ and DuckDB start natively), ``VmRSS`` and ``Threads`` of ``/proc/<pid>/status`` and
the entries of ``/proc/<pid>/fd``. Per-thread CPU (``/proc/<pid>/task/<tid>/stat``) shows
which thread a cost belongs to.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


class ProcessGone(RuntimeError):
    """The process exited between two reads of ``/proc``."""


@dataclass(frozen=True)
class Sample:
    """One look at a process."""

    cpu_s: float  # user + system CPU seconds since it started, all threads
    rss_bytes: int
    fds: int
    threads: int


def _stat_cpu(path: Path) -> tuple[str, float]:
    """``(comm, utime + stime seconds)`` of a ``stat`` file of ``/proc``."""
    text = path.read_text()
    # comm is in parentheses and may itself hold spaces or parentheses: split at the last.
    head, _, rest = text.rpartition(")")
    fields = rest.split()
    # fields[0] is the state (field 3 of proc(5)); utime and stime are fields 14 and 15.
    return head.partition("(")[2], (int(fields[11]) + int(fields[12])) / _TICK


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used, all of its threads.

    Raises:
        ProcessGone: No such process.
    """
    try:
        return _stat_cpu(Path(f"/proc/{pid}/stat"))[1]
    except (FileNotFoundError, ProcessLookupError) as err:
        raise ProcessGone(f"process {pid} is gone") from err


def sample(pid: int) -> Sample:
    """CPU, RSS, open file descriptors and threads of a process now.

    Raises:
        ProcessGone: No such process (or it exited while being read).
    """
    base = Path(f"/proc/{pid}")
    try:
        cpu = _stat_cpu(base / "stat")[1]
        status = dict(
            line.split(":", 1) for line in (base / "status").read_text().splitlines() if ":" in line
        )
        fds = sum(1 for _ in (base / "fd").iterdir())
    except (FileNotFoundError, ProcessLookupError) as err:
        raise ProcessGone(f"process {pid} is gone") from err
    rss_kb = int(status.get("VmRSS", "0 kB").split()[0])
    return Sample(cpu, rss_kb * 1024, fds, int(status["Threads"]))


def thread_cpu(pid: int | None = None) -> dict[str, float]:
    """CPU seconds per thread name of a process (default: this one).

    In this process, Python threads are named by ``threading`` (``ingest``, ``db-writer``
    ...); other threads (ZeroMQ's I/O, DuckDB's workers) by their kernel name. Threads of
    the same name are summed.
    """
    pid = os.getpid() if pid is None else pid
    names = {}
    if pid == os.getpid():
        names = {t.native_id: t.name for t in threading.enumerate() if t.native_id is not None}
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm, cpu = _stat_cpu(task / "stat")
        except FileNotFoundError:
            continue  # the thread ended while listing
        name = names.get(int(task.name), comm)
        out[name] = out.get(name, 0.0) + cpu
    return out
