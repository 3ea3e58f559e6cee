"""The edge agent's composition root: spool, publisher, heartbeats (cameras plug in here)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from edge_agent.clock import AgentClock
from edge_agent.config import AgentConfig
from edge_agent.publish import CropLookup, LinkSettings, Publisher, pack_record
from edge_agent.spool import Spool, SpoolWriteError
from shared import keys, wire

log = logging.getLogger(__name__)

CameraStatsFn = Callable[[], list[wire.CameraStats]]
RETRY_INTERVAL_S = 1.0  # how often held sightings are offered to a disk that refused them


def software_version() -> str:
    """The installed varta version."""
    try:
        return version("varta")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass
class SubmitStats:
    """What happened to sightings on their way into the spool."""

    write_errors: int = 0  # appends the disk refused (each retried later)
    held: int = 0  # sightings waiting in memory for the disk
    dropped: int = 0  # held sightings given up because memory was full too


class EdgeAgent:
    """Accepts sightings into the spool and forwards them to central.

    When the disk refuses a write (full), the sightings are held in memory, up to
    ``spool.held_max_bytes``, and go into the spool, in order, once it takes them again:
    with the next ``submit`` or ``retry`` after ``RETRY_INTERVAL_S``.
    """

    def __init__(
        self,
        config: AgentConfig,
        cameras: list[wire.CameraInfo] | None = None,
        camera_stats: CameraStatsFn = list,
        model_versions: dict[str, str] | None = None,
        on_ack: Callable[[list[int], float], None] | None = None,
        crops: CropLookup | None = None,
        clock: AgentClock | None = None,
    ) -> None:
        self.config = config
        # Sightings are stamped by this clock (the capture sources and callers use it).
        self.clock = clock or AgentClock(config.clock.step_threshold_s, config.clock.step_confirm_s)
        self._cameras = cameras or []
        self._camera_stats = camera_stats
        self._models = model_versions or {}
        self._started = time.time()
        self._beats = 0  # heartbeats made, their seq
        self.submits = SubmitStats()
        self._held: deque[bytes] = deque()
        self._held_bytes = 0
        self._retry_at = 0.0
        self._submit_lock = threading.Lock()
        self.spool = Spool(
            config.spool.dir,
            config.spool.max_bytes,
            fsync_interval=config.spool.fsync_interval_s,
        )
        c = config.central
        link = LinkSettings(
            endpoint=c.endpoint,
            server_public_key=keys.load_public(c.server_public_key),
            keys=keys.load_pair(c.agent_secret_key),
            batch_max_items=c.batch_max_items,
            window=c.window,
            ack_timeout=c.ack_timeout_s,
            heartbeat_interval=c.heartbeat_interval_s,
            backoff_min=c.backoff_min_s,
            backoff_max=c.backoff_max_s,
        )
        self.publisher = Publisher(
            config.agent_id,
            self.spool,
            link,
            self._hello,
            self._heartbeat,
            dead_letter_dir=config.spool.dir / "dead",
            on_ack=on_ack,
            crops=crops,
        )

    def submit(self, items: Sequence[tuple[wire.Item, Sequence[bytes]]]) -> list[int]:
        """Make sightings durable in the spool; return the spool seqs written now.

        Sightings held from an earlier refused write go first. If the disk refuses this
        write, every sighting is held (see the class docstring), the refusal is counted
        and logged by the spool, and the seqs of nothing are returned.
        """
        records = [pack_record(wire.encode_item(i), f) for i, f in items]
        with self._submit_lock:
            if not self._held:
                return self._append(records)
            self._hold(records)  # behind the held ones, to keep the order
            return self._flush_held(force=False)

    def retry(self) -> list[int]:
        """Write held sightings if the retry interval has passed; return their seqs."""
        with self._submit_lock:
            return self._flush_held(force=False)

    def start(self) -> None:
        """Start forwarding."""
        self.publisher.start()

    def stop(self) -> None:
        """Stop forwarding and close the spool (unsent sightings stay on disk)."""
        self.publisher.stop()
        with self._submit_lock:
            self._flush_held(force=True)
            if self._held:
                log.error(
                    "stopping with %d sightings the disk never took: they are lost",
                    len(self._held),
                )
        self.spool.close()

    def _append(self, records: list[bytes]) -> list[int]:
        try:
            seqs = self.spool.append(records)
        except SpoolWriteError:
            self.submits.write_errors += 1
            self._hold(records)
            self._retry_at = time.monotonic() + RETRY_INTERVAL_S
            return []
        self.publisher.wake()
        return seqs

    def _hold(self, records: list[bytes]) -> None:
        self._held.extend(records)
        self._held_bytes += sum(len(r) for r in records)
        limit = self.config.spool.held_max_bytes
        dropped = 0
        while self._held and self._held_bytes > limit:
            self._held_bytes -= len(self._held.popleft())
            dropped += 1
        if dropped:
            self.submits.dropped += dropped
            log.error("disk still full: dropped the %d oldest held sightings", dropped)
        self.submits.held = len(self._held)

    def _flush_held(self, force: bool) -> list[int]:
        if not self._held or (not force and time.monotonic() < self._retry_at):
            return []
        records = list(self._held)
        self._held.clear()
        self._held_bytes = 0
        seqs = self._append(records)
        if seqs:
            log.warning("the disk takes writes again: %d held sightings spooled", len(seqs))
        self.submits.held = len(self._held)
        return seqs

    def _hello(self) -> wire.AgentHello:
        return wire.AgentHello(
            agent_id=self.config.agent_id,
            software_version=software_version(),
            cameras=self._cameras,
            models=self._models,
            started_at=self._started,
        )

    def _heartbeat(self) -> wire.Heartbeat:
        s = self.spool.stats()
        p = self.publisher.stats
        self.clock.now()  # a step is noticed (and reported) even while nothing is stamped
        c = self.clock.stats
        self._beats += 1
        return wire.Heartbeat(
            agent_id=self.config.agent_id,
            sent_at=time.time(),  # the raw wall clock: central compares it with its own
            cameras=self._camera_stats(),
            spool_depth=s.depth,
            spool_bytes=s.bytes,
            spool_evictions=s.evictions,
            dead_letters=p.dead_letters,
            link=wire.LinkHealth(
                reconnects=p.reconnects,
                last_ack_age_s=None
                if p.last_ack_at is None
                else max(time.monotonic() - p.last_ack_at, 0.0),
                spool_peak=s.peak_depth,
                in_flight=p.in_flight,
            ),
            clock=wire.ClockHealth(
                offset_s=c.offset_s,
                pending=c.pending,
                steps=c.steps,
                steps_confirmed=c.steps_confirmed,
                steps_reverted=c.steps_reverted,
                last_step_s=c.last_step_s,
            ),
            started_at=self._started,
            seq=self._beats,
        )
