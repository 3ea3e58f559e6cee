"""The edge agent's composition root: spool, publisher, heartbeats (cameras plug in here)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version

from edge_agent.config import AgentConfig
from edge_agent.publish import LinkSettings, Publisher, pack_record
from edge_agent.spool import Spool
from shared import keys, wire

log = logging.getLogger(__name__)

CameraStatsFn = Callable[[], list[wire.CameraStats]]


def software_version() -> str:
    """The installed varta version."""
    try:
        return version("varta")
    except PackageNotFoundError:
        return "0+unknown"


class EdgeAgent:
    """Accepts sightings into the spool and forwards them to central."""

    def __init__(
        self,
        config: AgentConfig,
        cameras: list[wire.CameraInfo] | None = None,
        camera_stats: CameraStatsFn = list,
        model_versions: dict[str, str] | None = None,
        on_ack: Callable[[list[int], float], None] | None = None,
    ) -> None:
        self.config = config
        self._cameras = cameras or []
        self._camera_stats = camera_stats
        self._models = model_versions or {}
        self._started = time.time()
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
        )

    def submit(self, items: Sequence[tuple[wire.Item, Sequence[bytes]]]) -> list[int]:
        """Make sightings durable in the spool; return their spool seqs."""
        return self.spool.append([pack_record(wire.encode_item(i), f) for i, f in items])

    def start(self) -> None:
        """Start forwarding."""
        self.publisher.start()

    def stop(self) -> None:
        """Stop forwarding and close the spool (unsent sightings stay on disk)."""
        self.publisher.stop()
        self.spool.close()

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
        return wire.Heartbeat(
            agent_id=self.config.agent_id,
            sent_at=time.time(),
            cameras=self._camera_stats(),
            spool_depth=s.depth,
            spool_bytes=s.bytes,
            spool_evictions=s.evictions,
            dead_letters=self.publisher.stats.dead_letters,
        )
