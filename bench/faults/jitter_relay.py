"""A TCP relay that delays every chunk it forwards by a random 0..max_delay seconds.

It stands in for netem's ``delay`` jitter on a kernel without ``sch_netem``. The agent
connects to the relay instead of central; the relay connects on to central and forwards
both directions. Each chunk read (up to 64 KiB) is released at ``max(previous release,
arrival + uniform(0, max_delay))``: delays vary chunk by chunk, but a TCP stream is never
reordered (that would corrupt it, which a real network's jitter does not do either).

``python -m bench.faults.jitter_relay --listen 127.0.0.1:7711 --to 10.254.78.1:7710
--max-delay 0.2`` prints ``ready`` once it listens and runs until killed.
"""

from __future__ import annotations

import argparse
import contextlib
import queue
import random
import socket
import threading
import time

_CHUNK = 64 * 1024


def _pump(src: socket.socket, dst: socket.socket, max_delay: float, rng: random.Random) -> None:
    """Forward ``src`` -> ``dst`` with per-chunk delay, in order; close both at the end."""
    due: queue.Queue[tuple[float, bytes]] = queue.Queue()

    def writer() -> None:
        try:
            while True:
                release, data = due.get()
                if not data:
                    break
                time.sleep(max(release - time.monotonic(), 0.0))
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (dst, src):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    last = 0.0
    try:
        while data := src.recv(_CHUNK):
            last = max(last, time.monotonic() + rng.uniform(0.0, max_delay))
            due.put((last, data))
    except OSError:
        pass
    due.put((0.0, b""))
    thread.join()
    src.close()


def serve(listen: tuple[str, int], upstream: tuple[str, int], max_delay: float, seed: int) -> None:
    """Accept connections on ``listen`` and relay each to ``upstream`` (runs forever)."""
    rng = random.Random(seed)
    server = socket.create_server(listen, reuse_port=False)
    print("ready", flush=True)
    while True:
        client, _ = server.accept()
        try:
            remote = socket.create_connection(upstream, timeout=10)
        except OSError:
            client.close()
            continue
        remote.settimeout(None)
        for a, b in ((client, remote), (remote, client)):
            threading.Thread(
                target=_pump, args=(a, b, max_delay, random.Random(rng.random())), daemon=True
            ).start()


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> None:
    """Command line: see the module docstring."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--listen", type=_address, required=True, help="host:port to accept on")
    p.add_argument("--to", type=_address, required=True, help="host:port to relay to")
    p.add_argument("--max-delay", type=float, default=0.2, help="seconds, per chunk, at most")
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    serve(a.listen, a.to, a.max_delay, a.seed)


if __name__ == "__main__":
    main()
