"""``varta bench soak``: hours of steady ingest, watching central and the agents for leaks.

Central runs in this process, the agents are ``bench.loadgen`` processes (``bench.cluster``)
sending ``rate`` sightings/s in total for ``minutes``. Every ``interval`` seconds the bench
samples, from ``/proc`` (``bench.procstat``), the RSS, open file descriptors and threads
of central and of each agent, and from central itself the sightings stored, the memory
DuckDB accounts for (``duckdb_memory()``: its buffer pool, which grows up to
``memory_limit`` and then evicts, and the primary-key index, which grows with the rows
kept) and Python's allocated blocks.

What counts as a leak: after the warm-up (the first ``WARMUP_SHARE`` of the run, at least
``WARMUP_MIN_S``), the least-squares slope of central's RSS *less DuckDB's own memory*,
or of an agent's RSS, above ``FLAT_MB_PER_MIN``; or descriptors or threads that keep
rising. DuckDB's growth is reported apart (MB per million rows stored), since it is
bounded by ``memory_limit`` and by retention, not by time.

At the end every sighting an agent produced must be stored exactly once: the count of
rows and of distinct event ids equal what the agents produced, and no spool holds any.
The series go to ``<out>/soak.json`` and a plot to ``<out>/soak.png``.
"""

from __future__ import annotations

import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import procstat
from bench.cluster import AgentProcess, central_config, spawn_agents
from bench.plot import Panel, Point, line_charts
from central import collector
from central.app import Central, build

WARMUP_SHARE = 0.25
WARMUP_MIN_S = 10.0
FLAT_MB_PER_MIN = 2.0
"""Steady-state RSS growth above this (MB/min) is called a leak."""
FD_THREAD_SLACK = 4
"""Descriptors or threads above the post-warm-up level by more than this: a leak."""
MAX_AGENT_LINES = 8  # more agents are plotted as their max, median and min
MB = 1 << 20


@dataclass
class Tick:
    """One sample of the whole cluster."""

    t_s: float
    stored: int
    central: procstat.Sample
    duckdb_bytes: int
    duckdb_by_tag: dict[str, int]
    py_blocks: int
    agents: dict[str, procstat.Sample] = field(default_factory=dict)


def slope_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(seconds, value)`` points, in value per minute (0 if
    fewer than two distinct times)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mx) * (y - my) for x, y in points) / var * 60.0


def _duckdb_memory(central: Central) -> tuple[int, dict[str, int]]:
    with central.db.reader() as con:
        rows = con.execute(
            "SELECT tag, memory_usage_bytes FROM duckdb_memory() WHERE memory_usage_bytes > 0"
        ).fetchall()
    by_tag = {str(tag): int(used) for tag, used in rows}
    return sum(by_tag.values()), by_tag


def _tick(start: float, central: Central, agents: list[AgentProcess]) -> Tick:
    total, by_tag = _duckdb_memory(central)
    tick = Tick(
        t_s=time.monotonic() - start,
        stored=central.ingest.stats.sightings_stored,
        central=procstat.sample(os.getpid()),
        duckdb_bytes=total,
        duckdb_by_tag=by_tag,
        py_blocks=sys.getallocatedblocks(),
    )
    for agent in agents:
        if agent.popen.poll() is None:
            try:
                tick.agents[agent.agent_id] = procstat.sample(agent.pid)
            except procstat.ProcessGone:
                continue  # exited between poll and read
    return tick


def _stored_once(central: Central) -> tuple[int, int, int]:
    """Rows in ``sightings``, distinct event ids and distinct cameras among them."""
    with central.db.reader() as con:
        row = con.execute(
            "SELECT count(*), count(DISTINCT event_id), count(DISTINCT camera_id) FROM sightings"
        ).fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def run(
    minutes: float,
    agents: int,
    rate: float,
    interval_s: float,
    out: Path,
    duckdb_memory_limit_mb: int | None = None,
    cameras: int = 0,
    min_turn_ms: int | None = None,
    writer_duty: float | None = None,
) -> dict[str, Any]:
    """Run the soak; write ``soak.json`` and ``soak.png`` into ``out``; the summary.

    ``cameras``: the cameras the agents serve in all (0: one each), e.g. 10,000 cameras of
    a city over 40 agents; ``min_turn_ms`` and ``writer_duty``: central's
    ``ingest.min_turn_interval_ms`` and ``ingest.writer_duty`` (None: the defaults).
    """
    seconds = minutes * 60.0
    ticks: list[Tick] = []
    with tempfile.TemporaryDirectory(prefix="varta-soak-") as tmp:
        root = Path(tmp)
        config = central_config(
            root,
            agents,
            duckdb_memory_limit_mb,
            min_turn_interval_ms=min_turn_ms,
            writer_duty=writer_duty,
        )
        central = build(config)
        with collector.tuned():  # as central's own process runs (central.serve)
            central.start()
            try:
                procs = spawn_agents(
                    root, config.ingest.bind, agents, seconds, rate, wait_acked=60, cameras=cameras
                )
                start = time.monotonic()
                while True:
                    ticks.append(_tick(start, central, procs))
                    if all(p.popen.poll() is not None for p in procs):
                        break
                    time.sleep(interval_s)
                rows, distinct, seen_cameras = _stored_once(central)
                stats = central.ingest.stats.as_dict()
            finally:
                central.stop()
        reports = [json.loads(p.result.read_text()) for p in procs]
    summary = summarise(ticks, seconds)
    summary.update(
        {
            "minutes": minutes,
            "agents": agents,
            "cameras": cameras or agents,
            "cameras_seen": seen_cameras,
            "rate": rate,
            "interval_s": interval_s,
            "duckdb_memory_limit_mb": duckdb_memory_limit_mb,
            "min_turn_interval_ms": config.ingest.min_turn_interval_ms,
            "writer_duty": config.ingest.writer_duty,
            "produced": sum(r["produced"] for r in reports),
            "stored_rows": rows,
            "stored_distinct": distinct,
            "duplicates_acked": stats["duplicates"],
            "still_spooled": sum(r["spool_depth"] for r in reports),
            "items_rejected": stats["items_rejected"],
            "ack_p99_ms": round(max(r["latency_p99_ms"] for r in reports), 1),
        }
    )
    summary["exactly_once"] = (
        summary["produced"] == rows == distinct and not summary["still_spooled"]
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "soak.json").write_text(
        json.dumps({"summary": summary, "samples": [asdict(t) for t in ticks]})
    )
    plot(ticks, out / "soak.png")
    summary["series"] = str(out / "soak.json")
    summary["plot"] = str(out / "soak.png")
    return summary


def summarise(ticks: list[Tick], seconds: float) -> dict[str, Any]:
    """Slopes after the warm-up and the verdict (see the module docstring)."""
    warm = max(seconds * WARMUP_SHARE, min(WARMUP_MIN_S, seconds / 2))
    steady = [t for t in ticks if warm <= t.t_s <= seconds] or ticks[-2:]
    first, last = steady[0], steady[-1]

    def slope(value: Any) -> float:
        return round(slope_per_min([(t.t_s, value(t)) for t in steady]), 3)

    central_rss = slope(lambda t: t.central.rss_bytes / MB)
    duckdb = slope(lambda t: t.duckdb_bytes / MB)
    rest = slope(lambda t: (t.central.rss_bytes - t.duckdb_bytes) / MB)
    rows = last.stored - first.stored
    agent_slopes = {
        name: round(
            slope_per_min(
                [(t.t_s, t.agents[name].rss_bytes / MB) for t in steady if name in t.agents]
            ),
            3,
        )
        for name in _agent_names(ticks)
    }
    fds = [t.central.fds for t in steady]
    threads = [t.central.threads for t in steady]
    reasons = []
    if rest > FLAT_MB_PER_MIN:
        reasons.append(f"central RSS less DuckDB grows {rest:.1f} MB/min")
    reasons += [
        f"{name} RSS grows {s:.1f} MB/min"
        for name, s in agent_slopes.items()
        if s > FLAT_MB_PER_MIN
    ]
    if max(fds) > fds[0] + FD_THREAD_SLACK:
        reasons.append(f"central descriptors rose from {fds[0]} to {max(fds)}")
    if max(threads) > threads[0] + FD_THREAD_SLACK:
        reasons.append(f"central threads rose from {threads[0]} to {max(threads)}")
    return {
        "samples": len(ticks),
        "warmup_s": round(warm, 1),
        "sightings_per_s": round(rows / (last.t_s - first.t_s)) if last.t_s > first.t_s else 0,
        # central runs in this process: its CPU (with the sampler's, small) per stored row
        "central_cpu_us_per_sighting": (
            round((last.central.cpu_s - first.central.cpu_s) / rows * 1e6, 1) if rows else None
        ),
        "central_rss_mb": [round(first.central.rss_bytes / MB), round(last.central.rss_bytes / MB)],
        "central_rss_slope_mb_per_min": central_rss,
        "duckdb_memory_mb": [round(first.duckdb_bytes / MB), round(last.duckdb_bytes / MB)],
        "duckdb_memory_by_tag_mb": {k: round(v / MB, 1) for k, v in last.duckdb_by_tag.items()},
        "duckdb_memory_slope_mb_per_min": duckdb,
        "duckdb_mb_per_million_rows": round(
            (last.duckdb_bytes - first.duckdb_bytes) / MB / rows * 1e6, 1
        )
        if rows
        else 0.0,
        "central_rss_less_duckdb_slope_mb_per_min": rest,
        "python_blocks_slope_per_min": slope(lambda t: t.py_blocks),
        "central_fds": [fds[0], max(fds), fds[-1]],
        "central_threads": [threads[0], max(threads), threads[-1]],
        "agent_rss_slope_mb_per_min": agent_slopes,
        "agent_fds_max": max((a.fds for t in steady for a in t.agents.values()), default=0),
        "agent_threads_max": max((a.threads for t in steady for a in t.agents.values()), default=0),
        "verdict": "leak" if reasons else "flat",
        "reasons": reasons,
    }


def _agent_names(ticks: list[Tick]) -> list[str]:
    return sorted({name for t in ticks for name in t.agents})


def plot(ticks: list[Tick], path: Path) -> None:
    """RSS, DuckDB memory, descriptors, threads and ingest rate over time."""

    def series(value: Callable[[Tick], float]) -> list[tuple[float, float]]:
        return [(t.t_s / 60.0, value(t)) for t in ticks]

    def agent_series(name: str, value: Callable[[procstat.Sample], float]) -> list[Point]:
        return [(t.t_s / 60.0, value(t.agents[name])) for t in ticks if name in t.agents]

    def spread(
        value: Callable[[procstat.Sample], float], pick: Callable[[list[float]], float]
    ) -> list[Point]:
        return [
            (t.t_s / 60.0, pick([value(a) for a in t.agents.values()])) for t in ticks if t.agents
        ]

    memory = Panel("Memory", "MB")
    memory.series["central RSS"] = series(lambda t: t.central.rss_bytes / MB)
    memory.series["central less DuckDB"] = series(
        lambda t: (t.central.rss_bytes - t.duckdb_bytes) / MB
    )
    memory.series["DuckDB"] = series(lambda t: t.duckdb_bytes / MB)
    agents = Panel("Agents' RSS", "MB")
    files = Panel("Open descriptors and threads", "count")
    files.series["central fds"] = series(lambda t: t.central.fds)
    files.series["central threads"] = series(lambda t: t.central.threads)
    names = _agent_names(ticks)
    if len(names) <= MAX_AGENT_LINES:
        for name in names:
            agents.series[name] = agent_series(name, lambda s: s.rss_bytes / MB)
            files.series[f"{name} fds"] = agent_series(name, lambda s: s.fds)
    else:  # a line each would bury the panels under their legends: the spread instead
        for label, pick in (("max", max), ("median", statistics.median), ("min", min)):
            agents.series[f"agents {label}"] = spread(lambda s: s.rss_bytes / MB, pick)
        files.series["agents max fds"] = spread(lambda s: s.fds, max)
    rate = Panel("Sightings stored", "per s")
    rate.series["central"] = [
        (b.t_s / 60.0, (b.stored - a.stored) / (b.t_s - a.t_s))
        for a, b in itertools.pairwise(ticks)
        if b.t_s > a.t_s
    ]
    line_charts(path, [memory, agents, files, rate])
