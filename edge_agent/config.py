"""The edge agent's configuration (one YAML file), validated; no I/O here."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from edge_agent.capture import CameraConfig
from edge_agent.detect import VehicleDetectorConfig
from edge_agent.openvino_model import InferenceConfig
from edge_agent.track import TrackerConfig
from shared.config import LoggingConfig, MetricsConfig, StrictModel


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
        30.0,
        gt=0,
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
        0.1,
        ge=0,
        description="Sync written sightings to disk within this many seconds, also when "
        "idle (0: every append).",
    )
    held_max_bytes: int = Field(
        32 << 20,
        ge=0,
        description="While the disk refuses writes (full), keep up to this many bytes of "
        "sightings in memory and write them once it takes them again; beyond it the "
        "oldest are dropped and counted.",
    )
    min_free_mb: int = Field(
        256,
        ge=0,
        description="`varta edge check` fails when the spool's file system has less than "
        "this many MiB free.",
    )


class ClockConfig(StrictModel):
    """How the agent time-stamps sightings when the wall clock steps (edge_agent/clock.py)."""

    step_threshold_s: float = Field(
        2.0,
        gt=0,
        description="A sudden disagreement of the wall clock with the monotonic clock this "
        "large (seconds) is a clock step; smaller ones are followed as drift.",
    )
    step_confirm_s: float = Field(
        60.0,
        ge=0,
        description="Time stamps ignore a wall clock step until it has persisted this many "
        "seconds (continuing from the monotonic clock); a step undone sooner never reaches "
        "a sighting.",
    )


class PlateStageConfig(StrictModel):
    """When and how plates are read inside tracked vehicles."""

    enabled: bool = Field(True, description="Read licence plates.")
    min_vehicle_width: int = Field(
        160, ge=16, description="Read plates only in vehicle boxes at least this wide (px)."
    )
    interval_s: float = Field(
        0.1,
        ge=0.0,
        description="Read a track's plate at most this often (seconds); the interval "
        "doubles after each attempt that finds no plate, up to 16 times.",
    )
    max_reads_per_batch: int = Field(
        4, ge=1, description="Plate reads per batch of frames, at most (largest boxes first)."
    )
    budget_ms: float = Field(
        25.0,
        ge=0.0,
        description="Stop reading plates in a batch once this many milliseconds went into "
        "it (at least one read is made), so an overloaded box drops fewer frames (0: none).",
    )
    fallback_side: int | None = Field(
        None,
        ge=320,
        description="Look again at this detection scale when a vehicle gives no confident "
        "read (slower; off for video, where the next frames get their turn anyway).",
    )
    still_zoom_side: int | None = Field(
        1600,
        ge=640,
        le=4096,
        description="Stills (photos, snapshot cameras): after every other look found no "
        "confident read, look once more with the photo enlarged towards this side (at most "
        "2x). Finds plates the text detector misses at the photo's own size (plates-us found "
        "83.8% -> 88.7%) but makes a photo without a readable plate 2-3x slower; null: off.",
    )


class ThumbnailConfig(StrictModel):
    """The JPEG images sent with each sighting."""

    vehicle_width: int = Field(320, ge=32, le=1920, description="Vehicle image width, at most.")
    plate_width: int = Field(320, ge=32, le=1920, description="Plate image width, at most.")
    quality: int = Field(80, ge=10, le=100, description="JPEG quality.")


class PipelineConfig(StrictModel):
    """Detection, attributes, plate reading and tracking on the edge."""

    detector: VehicleDetectorConfig = Field(
        default=VehicleDetectorConfig(vehicle_threshold=0.1, motorcycle_threshold=0.1),
        description="Vehicle detector; its thresholds are the floor for weak boxes that "
        "only extend tracks (tracker.high_thresholds start them).",
    )
    tracker: TrackerConfig = Field(default_factory=TrackerConfig, description="Tracking.")
    max_detect_fps: float = Field(
        12.5,
        ge=0.0,
        description="Run vehicle detection at most this often per camera (0: on every frame "
        "with motion). Frames in between still feed the motion gate.",
    )
    attributes: bool = Field(True, description="Classify vehicle type and colour.")
    attribute_frames: int = Field(
        5, ge=1, description="Classify a track's vehicle in this many frames, then stop."
    )
    plates: PlateStageConfig = Field(default_factory=PlateStageConfig, description="Plate reading.")
    thumbnails: ThumbnailConfig = Field(
        default_factory=ThumbnailConfig, description="Sighting images."
    )
    inference: InferenceConfig | None = Field(
        None,
        description="Threads for the attribute and plate models; its thread count is also "
        "the default of the detector, which has its own under detector.inference. None lets "
        "OpenVINO pick.",
    )
    models_dir: Path | None = Field(
        None, description="Model store directory (default: $VARTA_MODELS or var/models)."
    )
    heap_trim_s: float = Field(
        5.0,
        ge=0.0,
        description="Give freed heap memory back to the OS this often, in seconds (glibc "
        "malloc_trim; 0: never). Keeps the agent's RSS near what it uses.",
    )


class AgentMetricsConfig(MetricsConfig):
    """The agent's Prometheus endpoint (its own port, so one box can run central too)."""

    port: int = Field(
        9811, ge=0, le=65535, description="TCP port of the metrics listener (0: a free one)."
    )


class AgentConfig(StrictModel):
    """Everything `varta edge run` needs."""

    agent_id: str = Field(
        "agent",
        pattern=r"^[A-Za-z0-9_.:-]{1,64}$",
        description="This agent's id; must match its key's name in central's allow-list.",
    )
    central: CentralLinkConfig = Field(
        default_factory=CentralLinkConfig, description="Central link."
    )
    spool: SpoolConfig = Field(default_factory=SpoolConfig, description="Spool.")
    clock: ClockConfig = Field(
        default_factory=ClockConfig, description="Time stamps across wall clock steps."
    )
    cameras: list[CameraConfig] = Field(
        default_factory=list, description="Cameras this agent reads."
    )
    pipeline: PipelineConfig = Field(
        default_factory=PipelineConfig, description="Detection, plates and tracking."
    )
    status_interval_s: float = Field(
        10.0, ge=0.0, description="Seconds between status lines on stderr (0: none)."
    )
    metrics: AgentMetricsConfig = Field(
        default_factory=AgentMetricsConfig,
        description="Prometheus metrics of this agent (off by default).",
    )
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log format.")

    @model_validator(mode="after")
    def _unique_cameras(self) -> AgentConfig:
        ids = [c.camera_id for c in self.cameras]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"camera ids must be unique; repeated: {', '.join(dupes)}")
        return self
