"""Exports read in a worker process: same result as in-process, errors cross, a dead worker
is replaced."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from central.watchlist.reading import ExportReader, read_bytes
from shared.errors import InvalidRequest

EXPORT = "plate,category,priority\nАА1234ВВ,stolen,1\nnot a plate!,wanted,2\nKA0001AX,wanted,\n"


@pytest.fixture
def reader() -> Iterator[ExportReader]:
    r = ExportReader(isolated=True)
    yield r
    r.close()


def test_a_worker_reads_what_the_caller_would(reader: ExportReader) -> None:
    here = read_bytes(EXPORT.encode(), "csv", 3)
    there = reader.read_bytes(EXPORT.encode(), "csv", 3)
    assert there.table.equals(here.table)
    assert there.table.column("entry_key").to_pylist() == ["AA1234BB", "KA0001AX"]
    assert [(p.line, p.reason) for p in there.problems] == [
        (p.line, p.reason) for p in here.problems
    ]
    assert [p.line for p in there.problems] == [3]


def test_an_unreadable_file_is_refused_with_the_reason(reader: ExportReader) -> None:
    with pytest.raises(InvalidRequest, match="malformed JSON"):
        reader.read_bytes(b"{not json", "json", 3)


def test_a_dead_worker_fails_one_read_and_is_replaced(reader: ExportReader) -> None:
    reader.read_bytes(b"plate\nAA1234BB\n", "csv", 3)
    pid = _worker_pid(reader)
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(RuntimeError, match="reader process died"):
        reader.read_bytes(EXPORT.encode(), "csv", 3)
    assert reader.read_bytes(EXPORT.encode(), "csv", 3).table.num_rows == 2
    assert _worker_pid(reader) != pid


def _worker_pid(reader: ExportReader) -> int:
    pool = reader._pool  # the one worker process of the pool
    assert pool is not None
    [pid] = list(pool._processes)
    return int(pid)
