"""Central's configuration (one YAML file), validated; no I/O here."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.config import StrictModel


class IngestConfig(StrictModel):
    """Where agents connect and how they are authenticated."""

    bind: str = Field("tcp://127.0.0.1:7710", description="ZeroMQ endpoint the ROUTER binds.")
    server_secret_key: Path = Field(
        Path("var/keys/central.key_secret"),
        description="Central's CURVE secret key file (varta keys gen central).",
    )
    allowed_agents_dir: Path = Field(
        Path("var/keys/allowed"),
        description="Directory of allow-listed agent public keys; file name = agent id.",
    )
    max_drain: int = Field(256, ge=1, description="Messages drained per storage transaction.")
    max_turn_items: int = Field(
        5000, ge=1, description="Sightings per storage transaction, at most (bounds ack delay)."
    )


class HttpConfig(StrictModel):
    """The REST API and operator UI server."""

    host: str = Field("127.0.0.1", description="Address uvicorn listens on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")


class StorageConfig(StrictModel):
    """Where central keeps its data."""

    data_dir: Path = Field(Path("var/central"), description="Data directory (DuckDB, packs).")
    duckdb_file: str = Field("varta.duckdb", description="DuckDB file name inside data_dir.")


class CentralConfig(StrictModel):
    """Everything `varta central serve` needs."""

    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Agent ingest.")
    http: HttpConfig = Field(default_factory=HttpConfig, description="HTTP server.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Storage.")
    agent_offline_after_s: float = Field(
        20.0, gt=0, description="An agent or camera silent this long is reported offline."
    )
