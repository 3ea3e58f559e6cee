"""Central's composition root: build the parts from config and wire them together."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from litestar import Litestar
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig

from central.api.controllers import AgentController, SightingController, StatusController
from central.api.errors import HANDLERS
from central.config import CentralConfig
from central.ingest import IngestServer
from central.services import AgentService, SightingService, StatusService
from central.store.db import Database
from central.store.thumbs import ThumbStore
from shared import keys

log = logging.getLogger(__name__)


@dataclass
class Central:
    """Everything one central process runs."""

    config: CentralConfig
    db: Database
    thumbs: ThumbStore
    ingest: IngestServer

    def start(self) -> None:
        """Start the ingest thread."""
        self.ingest.start()
        log.info("ingest listening on %s", self.ingest.bound_endpoint)

    def stop(self) -> None:
        """Stop ingest (committing and acking the turn in hand), then close storage."""
        self.ingest.stop()
        self.thumbs.close()
        self.db.close()


def build(config: CentralConfig) -> Central:
    """Open storage and prepare ingest (not started)."""
    data_dir = config.storage.data_dir
    db = Database(Path(data_dir) / config.storage.duckdb_file)
    thumbs = ThumbStore(Path(data_dir) / "thumbs")
    server_keys = keys.load_pair(config.ingest.server_secret_key)
    allow = keys.load_allow_list(config.ingest.allowed_agents_dir)
    ingest = IngestServer(
        config.ingest.bind,
        server_keys,
        allow,
        db,
        thumbs,
        max_drain=config.ingest.max_drain,
        max_turn_items=config.ingest.max_turn_items,
    )
    return Central(config, db, thumbs, ingest)


def create_app(central: Central) -> Litestar:
    """The Litestar app; its lifespan starts and stops ingest."""
    agents = AgentService(central.db, central.config.agent_offline_after_s)
    sightings = SightingService(central.db, central.thumbs)
    status = StatusService(central.ingest.stats)
    return Litestar(
        route_handlers=[AgentController, SightingController, StatusController],
        dependencies={
            "agents": Provide(lambda: agents, sync_to_thread=False),
            "sightings": Provide(lambda: sightings, sync_to_thread=False),
            "status": Provide(lambda: status, sync_to_thread=False),
        },
        exception_handlers=HANDLERS,
        on_startup=[central.start],
        on_shutdown=[central.stop],
        openapi_config=OpenAPIConfig(title="Varta central API", version="1.0.0", path="/schema"),
    )
