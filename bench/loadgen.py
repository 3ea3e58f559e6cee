"""Realistic synthetic sightings, and an agent process that produces them.

Used by ``varta bench ingest`` and by the transport tests. The sightings look like what
the vision pipeline emits: a Ukrainian plate with candidates and per-character
confidences, a vehicle box, type and colour, and two JPEG-sized thumbnails (~8 KB).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import msgspec

from bench.stats import Reservoir, percentile
from shared import wire

REGIONS = ("AA", "KA", "AI", "KI", "AT", "KT", "BC", "HC", "AX", "KX", "BH", "HH", "II")
LETTERS = "ABEIKMHOPCTX"
TYPES = ("car", "van", "truck", "bus", "motorcycle")
COLOURS = ("white", "gray", "yellow", "red", "green", "blue", "black")


def random_plate(rng: random.Random) -> str:
    """A plate in the current Ukrainian format, e.g. AT1234BC."""
    series = rng.choice(LETTERS) + rng.choice(LETTERS)
    return f"{rng.choice(REGIONS)}{rng.randint(0, 9999):04d}{series}"


def fake_jpeg(rng: random.Random, size: int) -> bytes:
    """Bytes shaped like a JPEG (SOI ... EOI) of about ``size`` bytes."""
    return b"\xff\xd8" + rng.randbytes(max(size - 4, 0)) + b"\xff\xd9"


def make_sighting(
    rng: random.Random,
    camera_id: str = "cam-1",
    plate: str | None = None,
    thumb_bytes: tuple[int, int] = (6000, 2000),
    now: float | None = None,
) -> tuple[wire.Sighting, list[bytes]]:
    """One realistic sighting and its thumbnail frames."""
    now = time.time() if now is None else now
    text = plate or random_plate(rng)
    conf = rng.uniform(0.7, 0.99)
    alt = text[:-1] + rng.choice(LETTERS)
    x, y = rng.uniform(0, 1400), rng.uniform(200, 700)
    sighting = wire.Sighting(
        event_id=wire.new_event_id(now),
        camera_id=camera_id,
        captured_at=now,
        vehicle=wire.Vehicle(
            box=(x, y, x + 420.0, y + 300.0),
            type=rng.choice(TYPES),
            type_confidence=rng.uniform(0.5, 1.0),
            colour=rng.choice(COLOURS),
            colour_confidence=rng.uniform(0.4, 1.0),
        ),
        plate=wire.Plate(
            text=text,
            raw=f"{text[:2]} {text[2:6]} {text[6:]}",
            confidence=conf,
            candidates=[wire.PlateCandidate(text, conf), wire.PlateCandidate(alt, 1 - conf)],
            char_confidences=[round(rng.uniform(0.8, 1.0), 3) for _ in text],
            format="ua_current",
            region=f"UA-{text[:2]}",
            box=(x + 150.0, y + 220.0, x + 270.0, y + 250.0),
        ),
        track_frames=rng.randint(3, 40),
        track_seconds=rng.uniform(0.2, 3.0),
        thumbnails=[
            wire.Thumbnail(role="vehicle", width=320, height=240),
            wire.Thumbnail(role="plate", width=160, height=40),
        ],
    )
    return sighting, [fake_jpeg(rng, thumb_bytes[0]), fake_jpeg(rng, thumb_bytes[1])]


def run_agent(
    config_path: Path,
    count: int,
    rate: float,
    seconds: float,
    result: Path | None,
    wait_acked: float,
    seed: int,
    log_accepted: Path | None = None,
    status: Path | None = None,
    linger: float = 0.0,
    cameras: int = 1,
) -> None:
    """Produce sightings into an agent's spool and forward them; report numbers as JSON.

    ``cameras``: the agent serves this many cameras (``<agent>-cam-<n>``, at most the wire's
    256 per agent) and spreads its sightings over them in turn, as a box of a camera
    cluster does.

    Sightings are stamped by the agent's clock (``EdgeAgent.clock``), as a camera's are.
    With ``status``, a JSON snapshot of the agent's state is written there every 0.1 s.
    ``linger``: keep running (heartbeats going out) this long after the spool drained.
    """
    from edge_agent.app import EdgeAgent
    from edge_agent.config import AgentConfig
    from shared.config import load

    config = load(config_path, AgentConfig)
    created: dict[int, float] = {}
    latencies = Reservoir(20_000, seed)  # bounded: a soak runs for hours
    lock = threading.Lock()

    def on_ack(seqs: list[int], _sent_at: float) -> None:
        now = time.monotonic()
        with lock:
            for s in seqs:
                if (t := created.pop(s, None)) is not None:
                    latencies.add(now - t)

    camera_ids = (
        [f"{config.agent_id}-cam-{n:03d}" for n in range(cameras)] if cameras > 1 else ["cam-1"]
    )
    infos = [wire.CameraInfo(camera_id=c) for c in camera_ids]
    agent = EdgeAgent(config, cameras=infos, on_ack=on_ack)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    agent.start()
    counts = {"produced": 0}
    if status is not None:
        threading.Thread(
            target=_write_status, args=(agent, status, counts, stop), daemon=True
        ).start()
    rng = random.Random(seed)
    # Templates made once, so the generator's own cost stays small next to what is measured;
    # each emitted sighting still gets a fresh event id and capture time.
    pool = [make_sighting(rng) for _ in range(256)]
    produced, start = 0, time.monotonic()
    accepted = open(log_accepted, "a") if log_accepted else None  # noqa: SIM115
    chunk = 1 if rate else 50
    while not stop.is_set() and (count == 0 or produced < count):
        elapsed = time.monotonic() - start
        if seconds and elapsed >= seconds:
            break
        if rate and produced >= rate * elapsed:
            time.sleep(min(0.001, (produced + 1) / rate - elapsed))
            continue
        n = chunk if count == 0 else min(chunk, count - produced)
        now = agent.clock.now()
        items = [
            (
                msgspec.structs.replace(
                    s,
                    event_id=wire.new_event_id(now),
                    captured_at=now,
                    camera_id=camera_ids[(produced + i) % len(camera_ids)],
                ),
                f,
            )
            for i, (s, f) in ((i, pool[(produced + i) % len(pool)]) for i in range(n))
        ]
        t = time.monotonic()
        seqs = agent.submit(items)
        with lock:
            created.update((seq, t) for seq in seqs)
        if accepted is not None:  # written after the spool took them: these must arrive
            accepted.write("".join(f"{s.event_id}\n" for s, _ in items))
            accepted.flush()
        produced += n
        counts["produced"] = produced
        if result is None and produced % 1000 == 0:
            print(json.dumps({"produced": produced}), flush=True)
    deadline = time.monotonic() + wait_acked
    while time.monotonic() < deadline and agent.spool.stats().depth > 0 and not stop.is_set():
        time.sleep(0.05)
    stop.wait(linger)
    stop.set()
    agent.stop()
    report = {
        "agent_id": config.agent_id,
        "produced": produced,
        "acked": agent.publisher.stats.records_acked,
        "spool_depth": agent.spool.stats().depth,
        "reconnects": agent.publisher.stats.reconnects,
        "latency_p50_ms": percentile(latencies.values, 0.5) * 1000,
        "latency_p99_ms": percentile(latencies.values, 0.99) * 1000,
        "latencies_ms_sample": [round(v * 1000, 3) for v in latencies.values],
    }
    text = json.dumps(report)
    if result is not None:
        result.write_text(text)
    else:
        print(text)


def _write_status(agent: Any, path: Path, counts: dict[str, int], stop: threading.Event) -> None:
    """Every 0.1 s, the agent's state as JSON (written aside, then renamed over ``path``)."""
    floor0 = agent.spool.floor
    tmp = path.with_name(path.name + ".tmp")
    while not stop.wait(0.1):
        s, p, c = agent.spool.stats(), agent.publisher.stats, agent.clock.stats
        state = {
            "produced": counts["produced"],
            "delivered": agent.spool.floor - floor0,  # every record below the floor is done
            "spool_depth": s.depth,
            "spool_peak": s.peak_depth,
            "reconnects": p.reconnects,
            "connected": p.connected,
            "in_flight": p.in_flight,
            "clock_steps": c.steps,
            "clock_pending": c.pending,
            "monotonic": time.monotonic(),
        }
        tmp.write_text(json.dumps(state))
        tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.loadgen``: one synthetic agent process."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--count", type=int, default=0, help="sightings to produce (0: unbounded)")
    p.add_argument("--rate", type=float, default=0.0, help="sightings/s (0: as fast as possible)")
    p.add_argument("--seconds", type=float, default=0.0, help="stop producing after this")
    p.add_argument("--wait-acked", type=float, default=30.0, help="wait this long for acks")
    p.add_argument("--result", type=Path, default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--log-accepted",
        type=Path,
        default=None,
        help="append the event id of each sighting the spool accepted",
    )
    p.add_argument("--status", type=Path, default=None, help="keep the agent's state here")
    p.add_argument("--linger", type=float, default=0.0, help="run on this long once drained")
    p.add_argument("--cameras", type=int, default=1, help="cameras this agent serves (<= 256)")
    a = p.parse_args(argv)
    run_agent(
        a.config,
        a.count,
        a.rate,
        a.seconds,
        a.result,
        a.wait_acked,
        a.seed,
        a.log_accepted,
        a.status,
        a.linger,
        a.cameras,
    )


if __name__ == "__main__":
    main()
