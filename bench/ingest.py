"""``varta bench ingest``: N agent processes -> CURVE ZeroMQ -> central -> DuckDB.

Prints one JSON object. Besides the end-to-end numbers it measures, in the same run and
on the same machine, two ceilings: raw ZeroMQ round trips of the same payload (one
sighting per message, CURVE, loopback) and raw bulk append of the same rows into DuckDB.
Ack latency is per sighting: from the moment the agent put it in its spool to the moment
central's ack (sent after the commit) reached the agent.
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import msgspec
import zmq

from bench import procstat
from bench.cluster import central_config, seed_watchlist, spawn_agents
from bench.loadgen import make_sighting
from bench.stats import free_endpoint, percentile
from central import collector
from central.app import build
from central.store.db import Database
from central.store.sightings import IncomingSighting, SightingRepository
from shared import wire


def zmq_ceiling(seconds: float, window: int = 64) -> float:
    """Round trips per second of one-sighting messages over CURVE on loopback."""
    server_pub, server_sec = zmq.curve_keypair()
    client_pub, client_sec = zmq.curve_keypair()
    ctx: zmq.Context[Any] = zmq.Context()
    endpoint = free_endpoint()
    srv = ctx.socket(zmq.ROUTER)
    srv.curve_server, srv.curve_secretkey, srv.curve_publickey = True, server_sec, server_pub
    srv.bind(endpoint)
    stop = threading.Event()
    ack = wire.encode(wire.Ack(ref=1))

    def echo() -> None:
        while not stop.is_set():
            if srv.poll(100):
                frames = srv.recv_multipart(copy=False)
                srv.send_multipart([frames[0], ack])

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    cli = ctx.socket(zmq.DEALER)
    cli.curve_serverkey, cli.curve_publickey, cli.curve_secretkey = (
        server_pub,
        client_pub,
        client_sec,
    )
    cli.connect(endpoint)
    rng = random.Random(7)
    sighting, frames = make_sighting(rng)
    header = wire.encode(wire.SightingBatch(agent_id="bench", batch_id=1, items=[sighting]))
    message = [header, *frames]
    done, in_flight = 0, 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        while in_flight < window:
            cli.send_multipart(message)
            in_flight += 1
        cli.recv_multipart()
        in_flight -= 1
        done += 1
    stop.set()
    thread.join()
    cli.close(0)
    srv.close(0)
    ctx.term()
    return done / elapsed


def duckdb_ceiling(seconds: float, directory: Path, batch: int = 5000) -> float:
    """Rows per second of raw bulk appends of the same rows into a fresh DuckDB file."""
    rng = random.Random(11)
    ref = ("20260101/000001", 0, 6000)
    db = Database(directory / "ceiling.duckdb")
    repo = SightingRepository()
    pool = [make_sighting(rng, thumb_bytes=(4, 4))[0] for _ in range(batch)]
    rows, elapsed = 0, 0.0
    while elapsed < seconds:
        now = time.time()
        items = [
            IncomingSighting(
                "bench", msgspec.structs.replace(s, event_id=wire.new_event_id(now)), [ref, ref]
            )
            for s in pool
        ]
        start = time.perf_counter()
        rows += len(db.writer.call(functools.partial(_insert, repo, items, now)))
        elapsed += time.perf_counter() - start
    db.close()
    return rows / elapsed


def _insert(
    repo: SightingRepository, items: list[IncomingSighting], now: float, con: Any
) -> set[str]:
    return repo.insert(con, items, now)


def run(
    agents: int,
    seconds: float,
    rate: float,
    ceilings: bool = True,
    watchlist: int = 0,
    min_turn_ms: int | None = None,
    writer_duty: float | None = None,
) -> dict[str, Any]:
    """Run the benchmark and return its result object (``watchlist``: synthetic wanted
    entries central matches every sighting against, 0 for none; ``min_turn_ms``:
    central's ``ingest.min_turn_interval_ms`` and ``writer_duty``: its
    ``ingest.writer_duty``, None for the defaults)."""
    with tempfile.TemporaryDirectory(prefix="varta-bench-") as tmp:
        root = Path(tmp)
        result: dict[str, Any] = {"agents": agents, "seconds": seconds, "rate": rate or None}
        if ceilings:
            result["ceiling_zmq_msgs_per_s"] = round(zmq_ceiling(min(seconds, 3.0)))
            result["ceiling_duckdb_rows_per_s"] = round(duckdb_ceiling(min(seconds, 3.0), root))
        config = central_config(
            root, agents, min_turn_interval_ms=min_turn_ms, writer_duty=writer_duty
        )
        result["min_turn_interval_ms"] = config.ingest.min_turn_interval_ms
        result["writer_duty"] = config.ingest.writer_duty
        if watchlist:
            result["watchlist_entries"] = seed_watchlist(config, watchlist)
        central = build(config)
        with collector.tuned():  # as central's own process runs (central.serve)
            central.start()
            procs = spawn_agents(root, config.ingest.bind, agents, seconds, rate)
            threads0, cpu0 = procstat.thread_cpu(), procstat.cpu_seconds(os.getpid())
            samples = _sample_stored(central.ingest.stats, seconds)
            for proc in procs:
                proc.popen.wait()
            threads1, cpu1 = procstat.thread_cpu(), procstat.cpu_seconds(os.getpid())
            kids = resource.getrusage(resource.RUSAGE_CHILDREN)
            stats = central.ingest.stats.as_dict()
            if watchlist and central.alerting is not None:
                result["sightings_matched"] = central.alerting.engine.stats.sightings_matched
            central.stop()
        reports = [json.loads(p.result.read_text()) for p in procs]
        result.update(_summarise(samples, reports, stats, seconds))
        stored = max(stats["sightings_stored"], 1)
        result.update(_central_cpu(cpu1 - cpu0, threads0, threads1, stored))
        if ceilings:
            lower = min(result["ceiling_zmq_msgs_per_s"], result["ceiling_duckdb_rows_per_s"])
            result["rate_vs_lower_ceiling"] = round(result["sightings_per_s"] / lower, 2)
        result["agents_cpu_us_per_sighting"] = round(
            (kids.ru_utime + kids.ru_stime) / stored * 1e6, 1
        )
        return result


def _central_cpu(
    process_cpu: float, before: dict[str, float], after: dict[str, float], stored: int
) -> dict[str, Any]:
    """Central's CPU per stored sighting, in total (``/proc/<pid>/stat``: this process is
    central, less the bench's own main thread, which only samples and waits) and by thread.
    """
    delta = {name: cpu - before.get(name, 0.0) for name, cpu in after.items()}
    per_thread = {name: round(cpu / stored * 1e6, 1) for name, cpu in delta.items()}
    central = process_cpu - delta.get("MainThread", 0.0)
    return {
        "central_cpu_us_per_sighting": round(central / stored * 1e6, 1),
        "central_cpu_us_by_thread": {k: v for k, v in sorted(per_thread.items()) if v >= 0.1},
    }


def _sample_stored(stats: Any, seconds: float) -> list[tuple[float, int]]:
    samples = []
    start = time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        samples.append((now - start, stats.sightings_stored))
        time.sleep(0.25)
    samples.append((time.monotonic() - start, stats.sightings_stored))
    return samples


def _summarise(
    samples: list[tuple[float, int]],
    reports: list[dict[str, Any]],
    stats: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    warm = [s for s in samples if s[0] >= min(1.0, seconds / 4)]
    (t0, n0), (t1, n1) = warm[0], warm[-1]
    latencies = [v for r in reports for v in r["latencies_ms_sample"]]
    produced = sum(r["produced"] for r in reports)
    windows = [(b[1] - a[1]) / (b[0] - a[0]) for a, b in itertools.pairwise(warm) if b[0] > a[0]]
    return {
        "sightings_per_s": round((n1 - n0) / (t1 - t0)) if t1 > t0 else 0,
        "sightings_per_s_median_window": round(statistics.median(windows)) if windows else 0,
        "ack_p50_ms": round(percentile(latencies, 0.5), 2),
        "ack_p99_ms": round(percentile(latencies, 0.99), 2),
        "produced": produced,
        "stored": stats["sightings_stored"],
        "duplicates": stats["duplicates"],
        "still_spooled_at_end": produced - stats["sightings_stored"],
        "reconnects": sum(r["reconnects"] for r in reports),
        "messages_rejected": stats["messages_rejected_total"],
        "sightings_per_turn": round(stats["sightings_stored"] / max(stats["turns"], 1)),
    }
