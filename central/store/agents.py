"""The agent and camera registry, fed by hellos and heartbeats."""

from __future__ import annotations

import json
from typing import Any

import duckdb

from shared import wire


class AgentRepository:
    """Upserts agents and cameras; lists them with health."""

    def hello(self, con: duckdb.DuckDBPyConnection, msg: wire.AgentHello, now: float) -> None:
        """Register or refresh an agent from its hello."""
        con.execute(
            """
            INSERT INTO agents (agent_id, software_version, models, first_seen, last_seen,
                                last_hello, started_at)
            VALUES (?, ?, ?, to_timestamp(?), to_timestamp(?), to_timestamp(?), to_timestamp(?))
            ON CONFLICT (agent_id) DO UPDATE SET software_version = excluded.software_version,
                models = excluded.models, last_seen = excluded.last_seen,
                last_hello = excluded.last_hello, started_at = excluded.started_at
            """,
            [
                msg.agent_id,
                msg.software_version,
                json.dumps(msg.models),
                now,
                now,
                now,
                msg.started_at,
            ],
        )
        for cam in msg.cameras:
            con.execute(
                """
                INSERT INTO cameras (agent_id, camera_id, name, source_kind, last_seen)
                VALUES (?, ?, ?, ?, to_timestamp(?))
                ON CONFLICT (agent_id, camera_id) DO UPDATE SET name = excluded.name,
                    source_kind = excluded.source_kind, last_seen = excluded.last_seen
                """,
                [msg.agent_id, cam.camera_id, cam.name, cam.source_kind, now],
            )

    def heartbeat(self, con: duckdb.DuckDBPyConnection, msg: wire.Heartbeat, now: float) -> None:
        """Record an agent's health counters and its cameras' status."""
        con.execute(
            """
            INSERT INTO agents (agent_id, first_seen, last_seen, spool_depth, spool_bytes,
                                spool_evictions, dead_letters)
            VALUES (?, to_timestamp(?), to_timestamp(?), ?, ?, ?, ?)
            ON CONFLICT (agent_id) DO UPDATE SET last_seen = excluded.last_seen,
                spool_depth = excluded.spool_depth, spool_bytes = excluded.spool_bytes,
                spool_evictions = excluded.spool_evictions, dead_letters = excluded.dead_letters
            """,
            [
                msg.agent_id,
                now,
                now,
                msg.spool_depth,
                msg.spool_bytes,
                msg.spool_evictions,
                msg.dead_letters,
            ],
        )
        for cam in msg.cameras:
            con.execute(
                """
                INSERT INTO cameras (agent_id, camera_id, online, fps_in, fps_out,
                                     frames_dropped, error, last_seen)
                VALUES (?, ?, ?, ?, ?, ?, ?, to_timestamp(?))
                ON CONFLICT (agent_id, camera_id) DO UPDATE SET online = excluded.online,
                    fps_in = excluded.fps_in, fps_out = excluded.fps_out,
                    frames_dropped = excluded.frames_dropped, error = excluded.error,
                    last_seen = excluded.last_seen
                """,
                [
                    msg.agent_id,
                    cam.camera_id,
                    cam.online,
                    cam.fps_in,
                    cam.fps_out,
                    cam.frames_dropped,
                    cam.error,
                    now,
                ],
            )

    def cameras(self, con: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
        """The cameras each agent has announced."""
        out: dict[str, set[str]] = {}
        for agent_id, camera_id in con.execute(
            "SELECT agent_id, camera_id FROM cameras"
        ).fetchall():
            out.setdefault(agent_id, set()).add(camera_id)
        return out

    def seen(self, con: duckdb.DuckDBPyConnection, counts: dict[str, int], now: float) -> None:
        """Mark agents seen and add the sightings they delivered."""
        for agent_id, n in counts.items():
            con.execute(
                """
                INSERT INTO agents (agent_id, first_seen, last_seen, sightings_received)
                VALUES (?, to_timestamp(?), to_timestamp(?), ?)
                ON CONFLICT (agent_id) DO UPDATE SET last_seen = excluded.last_seen,
                    sightings_received = agents.sightings_received + excluded.sightings_received
                """,
                [agent_id, now, now, n],
            )

    def list(
        self, con: duckdb.DuckDBPyConnection, now: float, offline_after: float
    ) -> list[dict[str, Any]]:
        """Every agent with its cameras, last-seen and a health verdict."""
        agents = con.execute(
            "SELECT agent_id, software_version, models, epoch(first_seen), epoch(last_seen), "
            "epoch(started_at), spool_depth, spool_bytes, spool_evictions, dead_letters, "
            "sightings_received FROM agents ORDER BY agent_id"
        ).fetchall()
        cams = con.execute(
            "SELECT agent_id, camera_id, name, source_kind, online, fps_in, fps_out, "
            "frames_dropped, error, epoch(last_seen) FROM cameras ORDER BY agent_id, camera_id"
        ).fetchall()
        by_agent: dict[str, list[dict[str, Any]]] = {}
        for c in cams:
            by_agent.setdefault(c[0], []).append(
                {
                    "camera_id": c[1],
                    "name": c[2] or "",
                    "source_kind": c[3] or "",
                    # None: announced in a hello but no health reported yet (not a fault).
                    "online": None if c[4] is None else bool(c[4]) and now - c[9] <= offline_after,
                    "fps_in": c[5] or 0.0,
                    "fps_out": c[6] or 0.0,
                    "frames_dropped": c[7] or 0,
                    "error": c[8] or "",
                    "last_seen": c[9],
                }
            )
        out = []
        for a in agents:
            cameras = by_agent.get(a[0], [])
            online = now - a[4] <= offline_after
            problems = []
            if not online:
                problems.append("offline")
            if a[8]:
                problems.append(f"spool evicted {a[8]} sightings")
            problems += [
                f"camera {c['camera_id']} offline" for c in cameras if c["online"] is False
            ]
            out.append(
                {
                    "agent_id": a[0],
                    "software_version": a[1] or "",
                    "models": json.loads(a[2]) if a[2] else {},
                    "first_seen": a[3],
                    "last_seen": a[4],
                    "started_at": a[5],
                    "online": online,
                    "health": "ok" if not problems else ("offline" if not online else "degraded"),
                    "problems": problems,
                    "spool_depth": a[6],
                    "spool_bytes": a[7],
                    "spool_evictions": a[8],
                    "dead_letters": a[9],
                    "sightings_received": a[10],
                    "cameras": cameras,
                }
            )
        return out
