"""The console's alert board on a real DuckDB and alert engine: order, filters, counts, and
the change feed wait the board's event stream uses."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from central.alerts.board import BoardFilter, BoardService
from central.alerts.engine import AlertEngine
from central.alerts.service import AlertService
from central.store.db import Database
from central.watchlist.repository import WatchlistRepository
from central.watchlist.service import WatchlistService
from central.web.board import changes
from tests.central.alerts_helpers import incoming, write_wanted_list
from tests.harness import wait_for

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on a thread of its own (pytest-playwright keeps a loop on this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    write_wanted_list(tmp_path / "c.duckdb")
    database = Database(tmp_path / "c.duckdb")
    yield database
    database.close()


@pytest.fixture
def engine(db: Database) -> Iterator[AlertEngine]:
    e = AlertEngine(db, WatchlistService(WatchlistRepository(db)))  # type: ignore[arg-type]
    e.start()
    yield e
    e.stop()


@pytest.fixture
def raised(engine: AlertEngine) -> list[int]:
    """Three alerts: AA7681TE at cam-1, BC1234HH at cam-2, KA0001AB at cam-1; the second
    acknowledged."""
    for seed, (plate, camera) in enumerate(
        [("AA7681TE", "cam-1"), ("BC1234HH", "cam-2"), ("KA0001AB", "cam-1")]
    ):
        engine.on_commit([incoming(plate, camera=camera, seed=seed)]).result(5)
    ids = sorted(a.alert_id for a in engine.open_alerts)
    engine.transition(ids[1], "acknowledged", "", "olena")
    return ids


@pytest.mark.parametrize(
    ("f", "plates", "counts"),
    [
        (BoardFilter(), ["KA0001AB", "BC1234HH", "AA7681TE"], (2, 1)),
        (BoardFilter(camera_id="cam-1"), ["KA0001AB", "AA7681TE"], (2, 0)),
        (BoardFilter(state="new"), ["KA0001AB", "AA7681TE"], (2, 1)),
        (BoardFilter(list_name="national", state="acknowledged"), ["BC1234HH"], (2, 1)),
        (BoardFilter(list_name="other"), [], (0, 0)),
        (BoardFilter(limit=1), ["KA0001AB"], (2, 1)),
    ],
)
def test_board_filters_and_counts(
    db: Database,
    engine: AlertEngine,
    raised: list[int],
    f: BoardFilter,
    plates: list[str],
    counts: tuple[int, int],
) -> None:
    board = BoardService(db).board(f, engine.feed.head)
    assert [a.subject for a in board.alerts] == plates  # newest first
    assert (board.counts["new"], board.counts["acknowledged"]) == counts
    assert set(board.counts) == {"new", "acknowledged", "dispatched", "resolved", "rejected"}
    assert board.max_id == max((a.alert_id for a in board.alerts), default=0)


def test_options_name_the_lists(db: Database) -> None:
    assert BoardService(db).options().lists == ["national"]


def test_wait_for_change_wakes_on_a_new_alert(db: Database, engine: AlertEngine) -> None:
    alerts = AlertService(engine, db)

    async def scenario() -> tuple[int, int]:
        start = alerts.head
        idle = await alerts.wait_for_change(start, 0.05)  # nothing new: times out
        waiting = asyncio.create_task(alerts.wait_for_change(start, 10))
        await asyncio.sleep(0.05)
        engine.on_commit([incoming("AA7681TE")])
        return idle - start, await waiting - start

    idle, woke = run(scenario())
    assert idle == 0 and woke >= 1
    assert wait_for(lambda: len(engine.open_alerts) == 1, 5)


def test_event_stream_pushes_changes_and_ends_with_the_session(
    db: Database, engine: AlertEngine
) -> None:
    alerts = AlertService(engine, db)
    valid = [True]

    async def scenario() -> list[tuple[str | None, object]]:
        stream = changes(alerts, alerts.head, lambda: valid[0], keepalive_s=0.05)
        seen = [await anext(stream), await anext(stream)]  # connected, then a keepalive
        engine.on_commit([incoming("AA7681TE")])
        seen.append(await anext(stream))
        valid[0] = False  # logged out, expired or revoked
        seen += [m async for m in stream]
        return [(m.event, m.data if m.event else m.comment) for m in seen]

    got = run(scenario())
    assert got[:2] == [(None, "connected"), (None, "keepalive")]
    assert got[2][0] == "changed" and int(str(got[2][1])) >= 1
    assert got[-1] == ("ended", "session")
