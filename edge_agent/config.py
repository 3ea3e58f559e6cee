"""The edge agent's configuration (one YAML file), validated; no I/O here."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.config import StrictModel


class CentralLinkConfig(StrictModel):
    """How to reach central."""

    endpoint: str = Field("tcp://127.0.0.1:7710", description="Central's ingest endpoint.")
    server_public_key: Path = Field(
        Path("var/keys/central.key"), description="Central's CURVE public key file."
    )
    agent_secret_key: Path = Field(
        Path("var/keys/agent.key_secret"), description="This agent's CURVE secret key file."
    )
    batch_max_items: int = Field(500, ge=1, le=2000, description="Sightings per batch, at most.")
    window: int = Field(4, ge=1, le=64, description="Batches in flight awaiting ack, at most.")
    ack_timeout_s: float = Field(
        30.0, gt=0,
        description="Last resort: resend after this long without an ack on a live connection "
        "(a lost connection is noticed within seconds on its own).",
    )
    heartbeat_interval_s: float = Field(5.0, gt=0, description="Seconds between heartbeats.")
    backoff_min_s: float = Field(0.2, gt=0, description="First reconnect delay.")
    backoff_max_s: float = Field(30.0, gt=0, description="Longest reconnect delay.")


class SpoolConfig(StrictModel):
    """The durable on-disk queue of unsent sightings."""

    dir: Path = Field(Path("var/edge/spool"), description="Spool directory.")
    max_bytes: int = Field(1 << 30, ge=1 << 20, description="Disk bound; oldest evicted beyond.")
    fsync_interval_s: float = Field(
        0.1, ge=0, description="Sync to disk at most this often (0: every append)."
    )


class AgentConfig(StrictModel):
    """Everything `varta edge run` needs."""

    agent_id: str = Field(
        "agent", pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="This agent's id; must match its key's name in central's allow-list.",
    )
    central: CentralLinkConfig = Field(
        default_factory=CentralLinkConfig, description="Central link."
    )
    spool: SpoolConfig = Field(default_factory=SpoolConfig, description="Spool.")
