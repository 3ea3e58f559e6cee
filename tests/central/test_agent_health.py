"""Agent link and clock health from heartbeats (wire 1.2) into a real DuckDB, and back out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import pytest

from central.store.agents import AgentRepository
from central.store.db import Database
from shared import wire

NOW = 1_790_000_000.0
STARTED = NOW - 600


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "c.duckdb")
    yield database
    database.close()


def _beat(seq: int, reconnects: int, started: float = STARTED, **clock: Any) -> wire.Heartbeat:
    return wire.Heartbeat(
        agent_id="a1",
        sent_at=NOW + clock.pop("skew", 0.0),
        spool_depth=seq,
        link=wire.LinkHealth(reconnects=reconnects, last_ack_age_s=0.5, spool_peak=900),
        clock=wire.ClockHealth(**clock),
        started_at=started,
        seq=seq,
    )


def _write(db: Database, beats: list[wire.Heartbeat]) -> tuple[list[bool], dict[str, Any]]:
    repo = AgentRepository()

    def job(beat: wire.Heartbeat) -> Callable[[duckdb.DuckDBPyConnection], bool]:
        return lambda con: repo.heartbeat(con, beat, NOW)

    applied = [db.writer.call(job(b)) for b in beats]
    with db.reader() as con:
        (agent,) = repo.list(con, NOW, offline_after=20.0)
    return applied, agent


# (heartbeats in arrival order, which were applied, reconnects shown)
ORDER_CASES = [
    ("in order", [(1, 0), (2, 1), (3, 2)], [True, True, True], 2),
    ("late one from a replaced connection", [(1, 0), (3, 2), (2, 1)], [True, True, False], 2),
    ("a repeat", [(1, 0), (1, 0)], [True, False], 0),
]


@pytest.mark.parametrize(
    ("beats", "applied", "reconnects"),
    [c[1:] for c in ORDER_CASES],
    ids=[c[0] for c in ORDER_CASES],
)
def test_stale_heartbeats_are_ignored(
    db: Database, beats: list[tuple[int, int]], applied: list[bool], reconnects: int
) -> None:
    got, agent = _write(db, [_beat(seq, r) for seq, r in beats])
    assert got == applied
    assert agent["link"]["reconnects"] == reconnects
    assert agent["spool_depth"] == max(seq for seq, _ in beats)


def test_a_restarted_agent_starts_counting_again(db: Database) -> None:
    got, agent = _write(db, [_beat(50, 3), _beat(1, 0, started=STARTED + 500)])
    assert got == [True, True]
    assert agent["link"]["reconnects"] == 0


def test_an_agent_without_link_and_clock_still_works(db: Database) -> None:
    old = wire.Heartbeat(agent_id="a1", sent_at=NOW - 2.0, spool_depth=4)  # a 1.1 agent
    got, agent = _write(db, [old, old])
    assert got == [True, True]
    assert agent["link"] is None and agent["clock"] is None
    assert agent["clock_skew_s"] == pytest.approx(-2.0)
    assert agent["health"] == "ok"


CLOCK_CASES = [
    ("steady", {}, "ok", []),
    (
        "step pending",
        {"skew": 3600.0, "offset_s": 3600.0, "pending": True, "steps": 1, "last_step_s": 3600.0},
        "degraded",
        [
            "clock stepped +3600 s, not confirmed yet: sightings are stamped by the monotonic "
            "clock",
            "clock differs from central's by +3600 s",
        ],
    ),
    (
        "step reverted",
        {"steps": 2, "steps_reverted": 2, "last_step_s": -3600.0},
        "ok",
        [],
    ),
    ("skewed but steady", {"skew": -45.0}, "degraded", ["clock differs from central's by -45 s"]),
]


@pytest.mark.parametrize(
    ("clock", "health", "problems"), [c[1:] for c in CLOCK_CASES], ids=[c[0] for c in CLOCK_CASES]
)
def test_clock_state_and_problems(
    db: Database, clock: dict[str, Any], health: str, problems: list[str]
) -> None:
    _, agent = _write(db, [_beat(1, 0, **dict(clock))])
    assert agent["health"] == health
    assert agent["problems"] == problems
    assert agent["clock"]["pending"] is clock.get("pending", False)
    assert agent["clock"]["steps"] == clock.get("steps", 0)


def test_a_box_of_256_cameras_is_registered_in_one_statement(db: Database) -> None:
    """A hello and a heartbeat of the wire's most cameras (a repeated id kept once, the
    later entry winning) land in ``cameras`` and come back in the agent list."""
    repo = AgentRepository()
    ids = [f"a1-cam-{n:03d}" for n in range(256)]
    infos = [wire.CameraInfo(camera_id=c, name=c.upper(), source_kind="rtsp") for c in ids]
    infos[-1] = wire.CameraInfo(camera_id=ids[0], name="renamed", source_kind="file")
    hello = wire.AgentHello(agent_id="a1", software_version="t", started_at=STARTED, cameras=infos)
    stats = [
        wire.CameraStats(camera_id=c, online=n % 2 == 0, fps_in=25.0, frames_dropped=n)
        for n, c in enumerate(ids)
    ]
    beat = msgspec.structs.replace(_beat(1, 0), cameras=stats)
    db.writer.call(lambda con: repo.hello(con, hello, NOW))
    db.writer.call(lambda con: repo.heartbeat(con, beat, NOW))
    with db.reader() as con:
        rows = con.execute(
            "SELECT camera_id, name, source_kind, online, fps_in, frames_dropped FROM cameras "
            "ORDER BY camera_id"
        ).fetchall()
        (agent,) = repo.list(con, NOW, offline_after=20.0)
    assert len(rows) == 256 and len(agent["cameras"]) == 256
    assert rows[0] == (ids[0], "renamed", "file", True, 25.0, 0)
    assert rows[1] == (ids[1], ids[1].upper(), "rtsp", False, 25.0, 1)
    assert rows[-1][0] == ids[-1] and rows[-1][2] is None and rows[-1][5] == 255  # no hello
