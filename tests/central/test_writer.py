"""The one database writer on a real DuckDB file: batches share a commit, a refused or
failing job costs the others nothing, background work yields to ingest, stop runs all."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from central.store.writer import Writer, WriterStopped
from shared.errors import InvalidRequest


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, lane VARCHAR)")
    w = Writer(con)
    yield w
    w.stop()
    con.close()


def insert(k: int, lane: str = "") -> Callable[[duckdb.DuckDBPyConnection], object]:
    return lambda con: con.execute("INSERT INTO t VALUES (?, ?)", [k, lane])


def rows(writer: Writer) -> list[tuple[int, str]]:
    return writer.call(lambda con: con.execute("SELECT k, lane FROM t ORDER BY k").fetchall())


def hold(writer: Writer) -> threading.Event:
    """Keep the writer busy until the returned event is set."""
    release = threading.Event()
    writer.submit(lambda con: release.wait(10))
    return release


def test_queued_jobs_share_one_commit(writer: Writer) -> None:
    writer.start()
    release = hold(writer)
    futures = [writer.submit(insert(k)) for k in range(50)]
    before = writer.stats.commits
    release.set()
    for f in futures:
        f.result(10)
    assert writer.stats.commits - before <= 2
    assert len(rows(writer)) == 50


def test_a_refused_or_failing_job_costs_the_others_nothing(writer: Writer) -> None:
    def refuse(con: duckdb.DuckDBPyConnection) -> None:
        raise InvalidRequest("expected a known list, got 'x'")

    writer.start()
    release = hold(writer)
    ok = writer.submit(insert(1))
    refused = writer.submit(refuse)
    duplicate = writer.submit(insert(1))  # the batch's commit fails: one by one
    also_ok = writer.submit(insert(2))
    release.set()
    ok.result(10)
    also_ok.result(10)
    with pytest.raises(InvalidRequest):
        refused.result(10)
    with pytest.raises(duckdb.ConstraintException):
        duplicate.result(10)
    assert rows(writer) == [(1, ""), (2, "")]
    assert writer.stats.rollbacks >= 1


def test_background_jobs_run_when_nothing_else_waits(writer: Writer) -> None:
    writer.start()
    release = hold(writer)
    order: list[str] = []
    done = [
        writer.submit(lambda con: order.append("background 1"), background=True),
        writer.submit(lambda con: order.append("background 2"), background=True),
        writer.submit(lambda con: order.append("ingest 1")),
        writer.submit(lambda con: order.append("ingest 2")),
    ]
    release.set()
    for f in done:
        f.result(10)
    assert order == ["ingest 1", "ingest 2", "background 1", "background 2"]


def test_stop_runs_every_queued_job_of_both_lanes(writer: Writer) -> None:
    writer.start()
    release = hold(writer)
    done = [
        writer.submit(insert(1, "background"), background=True),
        writer.submit(insert(2)),
    ]
    threading.Timer(0.2, release.set).start()
    writer.stop()
    assert all(f.done() and f.exception() is None for f in done)
    with pytest.raises(WriterStopped):
        writer.submit(insert(3))
