"""Alert engine on a real DuckDB file and a real Cyrillic wanted list: matches, dedup,
lifecycle, restart and offline detection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from central.alerts.engine import AlertEngine
from central.alerts.model import IllegalTransition
from central.alerts.monitor import OfflineMonitor
from central.store.agents import AgentRepository
from central.store.db import Database
from central.watchlist.repository import WatchlistRepository
from central.watchlist.service import WatchlistService
from shared import wire
from shared.errors import InvalidRequest, NotFound
from tests.central.alerts_helpers import incoming, write_wanted_list
from tests.harness import wait_for


def _engine(db: Database, **kw: float) -> AlertEngine:
    repo = WatchlistRepository(db)
    engine = AlertEngine(db, WatchlistService(repo), **kw)  # type: ignore[arg-type]
    engine.start()
    return engine


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    write_wanted_list(tmp_path / "c.duckdb")
    database = Database(tmp_path / "c.duckdb")
    yield database
    database.close()


@pytest.fixture
def engine(db: Database) -> Iterator[AlertEngine]:
    e = _engine(db)
    yield e
    e.stop()


def _settle(engine: AlertEngine, head: int) -> None:
    assert wait_for(lambda: engine.feed.head >= head, 5, 0.01), engine.stats


def _trail(engine: AlertEngine, db: Database, alert_id: int) -> list[str]:
    with db.reader() as con:
        return [t.camera_id for t in engine.repository.trail(con, alert_id)]


def test_cyrillic_listed_plate_raises_one_alert_with_evidence(engine: AlertEngine) -> None:
    engine.on_commit([incoming("AA7681TE"), incoming("AT0000XX", seed=2)])
    _settle(engine, 1)
    [alert] = engine.open_alerts
    assert (alert.kind, alert.state, alert.priority, alert.category) == (
        "watchlist",
        "new",
        1,
        "stolen",
    )
    assert alert.details["listed_plate_raw"] == "АА7681ТЕ"
    assert alert.details["case_ref"] == "12025000000"
    assert alert.latest is not None and alert.latest.plate == "AA7681TE"
    eid = alert.latest.event_id
    assert alert.latest.thumbnails == [
        f"/api/v1/sightings/{eid}/thumbnails/0",
        f"/api/v1/sightings/{eid}/thumbnails/1",
    ]
    assert engine.stats.sightings_checked == 2 and engine.stats.sightings_matched == 1


def test_three_cameras_within_window_update_one_alert(engine: AlertEngine, db: Database) -> None:
    t0 = time.time() - 3600
    for i, cam in enumerate(["cam-1", "cam-2", "cam-3"]):
        engine.on_commit([incoming("AA7681TE", camera=cam, at=t0 + 60 * i, seed=i)])
    _settle(engine, 3)
    [alert] = engine.open_alerts
    assert alert.sightings == 3 and alert.last_seen == pytest.approx(t0 + 120)
    assert _trail(engine, db, alert.alert_id) == ["cam-1", "cam-2", "cam-3"]
    with db.reader() as con:
        kinds = [c.change for c in engine.repository.changes(con, 0, 10)]
    assert kinds == ["created", "sighted", "sighted"]
    # Outside the 10 min window: a new alert.
    engine.on_commit([incoming("AA7681TE", camera="cam-1", at=t0 + 120 + 601, seed=9)])
    _settle(engine, 4)
    assert sorted(a.sightings for a in engine.open_alerts) == [1, 3]


def test_below_threshold_raises_nothing(db: Database) -> None:
    engine = _engine(db, min_score=0.99)  # exact reads score 0.5 + 0.5 x confidence < 0.99
    try:
        engine.on_commit([incoming("AA7681TE")])
        time.sleep(0.2)
        assert engine.open_alerts == [] and engine.feed.head == 0
    finally:
        engine.stop()


Step = tuple[str, str, type[Exception] | None]
LIFECYCLES: list[tuple[str, list[Step], str]] = [
    (
        "happy path",
        [("acknowledged", "", None), ("dispatched", "unit 12", None), ("resolved", "", None)],
        "resolved",
    ),
    (
        "reject needs reason",
        [("rejected", " ", InvalidRequest), ("rejected", "misread", None)],
        "rejected",
    ),
    ("skip verification", [("dispatched", "", IllegalTransition)], "new"),
    (
        "closed stays closed",
        [("rejected", "wrong car", None), ("acknowledged", "", IllegalTransition)],
        "rejected",
    ),
    ("unknown state", [("flying", "", InvalidRequest)], "new"),
    ("no resolve before verification", [("resolved", "", IllegalTransition)], "new"),
]


@pytest.mark.parametrize(("name", "steps", "final"), LIFECYCLES, ids=[c[0] for c in LIFECYCLES])
def test_lifecycle(
    engine: AlertEngine, db: Database, name: str, steps: list[Step], final: str
) -> None:
    engine.on_commit([incoming("AA7681TE")])
    _settle(engine, 1)
    alert_id = engine.open_alerts[0].alert_id
    done = 0
    for to, reason, error in steps:
        if error is None:
            alert = engine.transition(alert_id, to, reason, actor="op-anna")
            assert alert.state == to
            done += 1
        else:
            with pytest.raises(error):
                engine.transition(alert_id, to, reason, actor="op-anna")
    with db.reader() as con:
        stored = engine.repository.get(con, alert_id)
        history = engine.repository.history(con, alert_id)
    assert stored is not None and stored.state == final
    assert [h.action for h in history] == ["created"] + ["transition"] * done
    assert all(h.actor == "op-anna" and h.at > 0 for h in history[1:])
    if final == "rejected":
        assert history[-1].reason.strip()


def test_unknown_alert_is_not_found(engine: AlertEngine) -> None:
    with pytest.raises(NotFound):
        engine.transition(99, "acknowledged", "", "op")


def test_restart_keeps_sequence_and_dedup(db: Database) -> None:
    first = _engine(db)
    t0 = time.time()
    first.on_commit([incoming("AA7681TE", at=t0), incoming("BC1234HH", at=t0, seed=3)])
    _settle(first, 2)
    first.stop()
    second = _engine(db)
    try:
        assert second.feed.head == 2 and len(second.open_alerts) == 2
        second.on_commit([incoming("AA7681TE", camera="cam-2", at=t0 + 5, seed=4)])
        second.on_commit([incoming("KA0001AB", at=t0 + 5, seed=5)])
        _settle(second, 4)
        with db.reader() as con:
            seqs = [c.seq for c in second.repository.changes(con, 0, 100)]
        assert seqs == [1, 2, 3, 4]
        by_plate = {a.subject: a for a in second.open_alerts}
        assert by_plate["AA7681TE"].sightings == 2 and by_plate["KA0001AB"].alert_id == 3
    finally:
        second.stop()


def _hello(db: Database, now: float) -> None:
    hello = wire.AgentHello(
        agent_id="edge-1",
        software_version="t",
        cameras=[wire.CameraInfo(camera_id="cam-1"), wire.CameraInfo(camera_id="cam-2")],
    )
    db.writer.call(lambda con: AgentRepository().hello(con, hello, now))


def _beat(db: Database, now: float, cam2_online: bool = True) -> None:
    beat = wire.Heartbeat(
        agent_id="edge-1",
        sent_at=now,
        cameras=[
            wire.CameraStats(camera_id="cam-1", online=True),
            wire.CameraStats(camera_id="cam-2", online=cam2_online),
        ],
    )
    db.writer.call(lambda con: AgentRepository().heartbeat(con, beat, now))


def _open(engine: AlertEngine) -> list[tuple[str, str]]:
    return sorted((a.kind, a.subject) for a in engine.open_alerts)


def test_offline_agent_and_camera_alerts_open_and_close(engine: AlertEngine, db: Database) -> None:
    now = [1_000_000.0]
    monitor = OfflineMonitor(db, engine, offline_after=20.0, clock=lambda: now[0])
    _hello(db, now[0])
    monitor.check()
    assert engine.queued == 0 and _open(engine) == []
    now[0] += 30  # silent for 30 s
    monitor.check()
    _settle(engine, 1)
    assert _open(engine) == [("agent_offline", "edge-1")]
    _beat(db, now[0], cam2_online=False)  # back, but one camera is down
    monitor.check()
    _settle(engine, 3)
    assert _open(engine) == [("camera_offline", "edge-1/cam-2")]
    _beat(db, now[0])
    monitor.check()
    _settle(engine, 4)
    assert _open(engine) == []
    with db.reader() as con:
        changes = engine.repository.changes(con, 0, 10)
    states = [(c.alert.kind, c.alert.state) for c in changes]
    assert states == [
        ("agent_offline", "new"),
        ("agent_offline", "resolved"),
        ("camera_offline", "new"),
        ("camera_offline", "resolved"),
    ]
    assert changes[1].alert.category == "system"
