"""Offline detection: agents and cameras that stop reporting raise alerts, and close them.

A background thread looks at the agent registry every ``interval`` seconds. An agent is
offline when nothing (hello, heartbeat, batch) arrived for ``offline_after`` seconds; a
camera when its agent is online but the camera's last heartbeat entry is older than that
or says it is offline. Camera alerts are not raised while their agent is offline: the
agent's alert says it all, nor for cameras that never sent health in a heartbeat. When
reports resume, the alert resolves itself. For ``offline_after`` seconds after start no
alert is raised: agents need that long to reconnect to a restarted central.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from central.alerts.engine import AlertEngine
from central.store.db import Database

log = logging.getLogger(__name__)


class OfflineMonitor:
    """Periodic check of agents' and cameras' last-seen times.

    Args:
        db: Central's database (read through cursors).
        engine: Where alerts are raised and closed.
        offline_after: Seconds of silence after which an agent or camera is offline.
        interval: Seconds between checks.
        clock: UNIX time source.
    """

    def __init__(
        self,
        db: Database,
        engine: AlertEngine,
        offline_after: float,
        interval: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._engine = engine
        self._offline_after = offline_after
        self._interval = interval
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._since = clock()

    def start(self) -> None:
        """Start the checking thread."""
        self._stop.clear()
        self._since = self._clock()
        self._thread = threading.Thread(target=self._run, name="alerts-offline", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop the checking thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.check()
                if self._engine.behind:  # an alert follow-up failed: match those again
                    self._engine.catch_up()
            except Exception:  # a failed check is retried next interval; keep the thread
                log.exception("offline check failed")

    def check(self) -> None:
        """One pass: raise alerts for what went silent, resolve those that came back."""
        now = self._clock()
        with self._db.reader() as con:
            agents = con.execute("SELECT agent_id, epoch(last_seen) FROM agents").fetchall()
            cameras = con.execute(
                "SELECT agent_id, camera_id, online, epoch(last_seen) FROM cameras"
            ).fetchall()
        agent_online: dict[str, bool] = {}
        for agent_id, last_seen in agents:
            silent = now - last_seen
            agent_online[agent_id] = silent <= self._offline_after
            self._update(
                "agent_offline",
                agent_id,
                not agent_online[agent_id],
                f"agent {agent_id} offline: no report for {silent:.0f} s",
                {"agent_id": agent_id, "last_seen": last_seen},
                2,
            )
        for agent_id, camera_id, online, last_seen in cameras:
            if online is None or not agent_online.get(agent_id, False):
                continue  # never reported its own health (hello only): nothing to judge
            silent = now - last_seen
            offline = online is False or silent > self._offline_after
            why = "reports it offline" if online is False else f"no report for {silent:.0f} s"
            self._update(
                "camera_offline",
                f"{agent_id}/{camera_id}",
                offline,
                f"camera {camera_id} of agent {agent_id} offline: {why}",
                {"agent_id": agent_id, "camera_id": camera_id, "last_seen": last_seen},
                3,
            )

    def _update(
        self,
        kind: str,
        subject: str,
        offline: bool,
        title: str,
        details: dict[str, object],
        priority: int,
    ) -> None:
        has = self._engine.has_open(kind, subject)
        # Right after central starts, agents have not had time to reconnect: no alarms yet.
        settled = self._clock() - self._since >= self._offline_after
        if offline and not has and settled:
            log.warning("%s", title)
            self._engine.raise_system(kind, subject, title, dict(details), priority)
        elif not offline and has:
            log.info("%s %s is back", kind, subject)
            self._engine.close_system(kind, subject, f"{subject} reports again")
