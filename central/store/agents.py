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
        cams = list({c.camera_id: c for c in msg.cameras}.values())  # one row per camera
        if cams:
            # One statement for all of an agent's cameras: a box of 250 cameras upserted
            # row by row kept the writer busy for seconds per hello.
            con.execute(
                """
                INSERT INTO cameras (agent_id, camera_id, name, source_kind, last_seen)
                SELECT ?, unnest(?::VARCHAR[]), unnest(?::VARCHAR[]), unnest(?::VARCHAR[]),
                       to_timestamp(?)
                ON CONFLICT (agent_id, camera_id) DO UPDATE SET name = excluded.name,
                    source_kind = excluded.source_kind, last_seen = excluded.last_seen
                """,
                [
                    msg.agent_id,
                    [c.camera_id for c in cams],
                    [c.name for c in cams],
                    [c.source_kind for c in cams],
                    now,
                ],
            )

    def heartbeat(self, con: duckdb.DuckDBPyConnection, msg: wire.Heartbeat, now: float) -> bool:
        """Record an agent's health counters, link and clock state, and its cameras' status.

        ``clock_skew_s`` is the heartbeat's ``sent_at`` (the agent's raw wall clock) minus
        central's clock at receipt; link and clock columns stay NULL for a 1.1 agent.

        Returns:
            False, recording nothing, for a stale heartbeat: one of the same agent process
            (``started_at``) with a ``seq`` at or below one already recorded. It was sent
            on a connection the agent has replaced since, and arrived late.
        """
        if self._stale(con, msg):
            return False
        self._record(con, msg, now)
        return True

    def _stale(self, con: duckdb.DuckDBPyConnection, msg: wire.Heartbeat) -> bool:
        if msg.seq == 0:
            return False  # a 1.1 agent: no order to go by
        row = con.execute(
            "SELECT hb_started_at, hb_seq FROM agents WHERE agent_id = ?", [msg.agent_id]
        ).fetchone()
        return (
            row is not None
            and row[1] is not None
            and row[0] == msg.started_at
            and msg.seq <= row[1]
        )

    def _record(self, con: duckdb.DuckDBPyConnection, msg: wire.Heartbeat, now: float) -> None:
        link, clock = msg.link, msg.clock
        con.execute(
            """
            INSERT INTO agents (agent_id, first_seen, last_seen, spool_depth, spool_bytes,
                                spool_evictions, dead_letters, clock_skew_s, reconnects,
                                last_ack_age_s, spool_peak, in_flight, clock_offset_s,
                                clock_pending, clock_steps, clock_steps_confirmed,
                                clock_steps_reverted, clock_last_step_s, hb_started_at, hb_seq)
            VALUES (?, to_timestamp(?), to_timestamp(?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                    ?, ?, ?, ?)
            ON CONFLICT (agent_id) DO UPDATE SET last_seen = excluded.last_seen,
                spool_depth = excluded.spool_depth, spool_bytes = excluded.spool_bytes,
                spool_evictions = excluded.spool_evictions, dead_letters = excluded.dead_letters,
                clock_skew_s = excluded.clock_skew_s, reconnects = excluded.reconnects,
                last_ack_age_s = excluded.last_ack_age_s, spool_peak = excluded.spool_peak,
                in_flight = excluded.in_flight, clock_offset_s = excluded.clock_offset_s,
                clock_pending = excluded.clock_pending, clock_steps = excluded.clock_steps,
                clock_steps_confirmed = excluded.clock_steps_confirmed,
                clock_steps_reverted = excluded.clock_steps_reverted,
                clock_last_step_s = excluded.clock_last_step_s,
                hb_started_at = excluded.hb_started_at, hb_seq = excluded.hb_seq
            """,
            [
                msg.agent_id,
                now,
                now,
                msg.spool_depth,
                msg.spool_bytes,
                msg.spool_evictions,
                msg.dead_letters,
                msg.sent_at - now,
                *(
                    (link.reconnects, link.last_ack_age_s, link.spool_peak, link.in_flight)
                    if link is not None
                    else (None,) * 4
                ),
                *(
                    (
                        clock.offset_s,
                        clock.pending,
                        clock.steps,
                        clock.steps_confirmed,
                        clock.steps_reverted,
                        clock.last_step_s,
                    )
                    if clock is not None
                    else (None,) * 6
                ),
                msg.started_at if msg.seq else None,
                msg.seq or None,
            ],
        )
        cams = list({c.camera_id: c for c in msg.cameras}.values())
        if cams:
            con.execute(
                """
                INSERT INTO cameras (agent_id, camera_id, online, fps_in, fps_out,
                                     frames_dropped, error, last_seen)
                SELECT ?, unnest(?::VARCHAR[]), unnest(?::BOOLEAN[]), unnest(?::DOUBLE[]),
                       unnest(?::DOUBLE[]), unnest(?::BIGINT[]), unnest(?::VARCHAR[]),
                       to_timestamp(?)
                ON CONFLICT (agent_id, camera_id) DO UPDATE SET online = excluded.online,
                    fps_in = excluded.fps_in, fps_out = excluded.fps_out,
                    frames_dropped = excluded.frames_dropped, error = excluded.error,
                    last_seen = excluded.last_seen
                """,
                [
                    msg.agent_id,
                    [c.camera_id for c in cams],
                    [c.online for c in cams],
                    [c.fps_in for c in cams],
                    [c.fps_out for c in cams],
                    [c.frames_dropped for c in cams],
                    [c.error for c in cams],
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
        """Every agent with its cameras, last-seen, link and clock state and a health verdict."""
        agents = con.execute(
            "SELECT agent_id, software_version, models, epoch(first_seen), epoch(last_seen), "
            "epoch(started_at), spool_depth, spool_bytes, spool_evictions, dead_letters, "
            "sightings_received, clock_skew_s, reconnects, last_ack_age_s, spool_peak, "
            "in_flight, clock_offset_s, clock_pending, clock_steps, clock_steps_confirmed, "
            "clock_steps_reverted, clock_last_step_s FROM agents ORDER BY agent_id"
        ).fetchall()
        by_agent = _cameras_by_agent(con, now, offline_after)
        out = []
        for a in agents:
            cameras = by_agent.get(a[0], [])
            online = now - a[4] <= offline_after
            link = _link(a[12:16])
            clock = _clock(a[16:22])
            problems = _problems(online, a[8], a[11], clock, cameras)
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
                    "clock_skew_s": a[11],
                    "link": link,
                    "clock": clock,
                    "cameras": cameras,
                }
            )
        return out


def _cameras_by_agent(
    con: duckdb.DuckDBPyConnection, now: float, offline_after: float
) -> dict[str, list[dict[str, Any]]]:
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
    return by_agent


# An agent clock this far from central's is a problem (network delay is far below it).
CLOCK_SKEW_PROBLEM_S = 30.0


def _link(row: tuple[Any, ...]) -> dict[str, Any] | None:
    reconnects, last_ack_age_s, spool_peak, in_flight = row
    if reconnects is None:
        return None  # a 1.1 agent, or no heartbeat yet
    return {
        "reconnects": reconnects,
        "last_ack_age_s": last_ack_age_s,
        "spool_peak": spool_peak,
        "in_flight": in_flight,
    }


def _clock(row: tuple[Any, ...]) -> dict[str, Any] | None:
    offset, pending, steps, confirmed, reverted, last_step = row
    if steps is None:
        return None
    return {
        "offset_s": offset,
        "pending": bool(pending),
        "steps": steps,
        "steps_confirmed": confirmed,
        "steps_reverted": reverted,
        "last_step_s": last_step,
    }


def _problems(
    online: bool,
    evictions: int | None,
    skew: float | None,
    clock: dict[str, Any] | None,
    cameras: list[dict[str, Any]],
) -> list[str]:
    problems = []
    if not online:
        problems.append("offline")
    if evictions:
        problems.append(f"spool evicted {evictions} sightings")
    if clock is not None and clock["pending"]:
        problems.append(
            f"clock stepped {clock['last_step_s']:+.0f} s, not confirmed yet: sightings are "
            "stamped by the monotonic clock"
        )
    if skew is not None and abs(skew) > CLOCK_SKEW_PROBLEM_S:
        problems.append(f"clock differs from central's by {skew:+.0f} s")
    problems += [f"camera {c['camera_id']} offline" for c in cameras if c["online"] is False]
    return problems
