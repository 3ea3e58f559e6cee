"""Central's configuration (one YAML file), validated; no I/O here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from shared.config import LoggingConfig, MetricsConfig, StrictModel
from shared.plates import STRICT_MIN_CONFIDENCE
from shared.wire import MAX_CROP_BYTES


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
    min_turn_interval_ms: int = Field(
        50,
        ge=0,
        le=2000,
        description="Start a storage transaction at most this often, gathering what arrives "
        "meanwhile (0: as soon as anything waits). Each transaction costs central ~5-10 ms of "
        "CPU whatever its size: at 1,000 sightings/s from one agent, 0 commits ~200 times a "
        "second and takes a whole core (950 us per sighting), 50 takes a fifth of that (200 us) "
        "and 100 an eighth; acks and alerts wait up to this long more (ack p99 30 ms at 0, "
        "~105 ms at 50). At overload turns are full (max_turn_items) and start at once.",
    )
    writer_duty: float = Field(
        0.5,
        gt=0,
        le=1,
        description="Most of its time the storage of sightings may take (0-1]. After a turn "
        "took t seconds to store, the next starts no sooner than t/duty after it began, "
        "gathering what arrives meanwhile: each transaction costs DuckDB milliseconds of CPU "
        "whatever its size, and without a bound central would commit as often as it can, "
        "tiny turns at moderate rates. Acks and alerts wait up to t*(1/duty-1) more (at most "
        "250 ms); a turn of 1,000 sightings or more starts at once. 1: no bound.",
    )
    max_frame_bytes: int = Field(
        1 << 20,
        ge=64 << 10,
        description="Largest ZeroMQ frame accepted; a larger one drops the agent's connection.",
    )
    max_frames: int = Field(
        4097,
        ge=2,
        description="Most frames in one message (header + thumbnails); more are refused.",
    )
    rcv_hwm: int = Field(
        16,
        ge=1,
        description="Whole messages queued per agent connection before TCP pushes back; with "
        "max_frame_bytes this bounds the memory one agent can make central hold.",
    )
    max_age_s: float = Field(
        30 * 86_400.0,
        gt=0,
        description="Sightings captured longer ago than this are refused (agent clock wrong).",
    )
    max_ahead_s: float = Field(
        300.0,
        ge=0,
        description="Sightings captured more than this in the future are refused.",
    )
    min_free_mb: int = Field(
        256,
        ge=0,
        description="Below this much free disk in storage.data_dir ingest stops acknowledging "
        "(agents keep their data) and health reports it, until space returns.",
    )
    crop_timeout_s: float = Field(
        5.0,
        gt=0,
        description="How long a face crop request waits for the agent's answer before the "
        "crop counts as unreachable.",
    )
    crop_max_bytes: int = Field(
        MAX_CROP_BYTES,
        ge=1 << 10,
        le=MAX_CROP_BYTES,
        description="Largest face crop JPEG accepted from an agent (bytes); a larger one is "
        "refused as malformed.",
    )
    crop_max_side: int = Field(
        1024,
        ge=16,
        le=8192,
        description="Largest width or height of a face crop accepted (pixels), read from the "
        "JPEG header before it is decoded.",
    )


class HttpConfig(StrictModel):
    """The REST API and operator UI server."""

    host: str = Field("127.0.0.1", description="Address uvicorn listens on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port (0 picks a free one).")


class StorageConfig(StrictModel):
    """Where central keeps its data."""

    data_dir: Path = Field(Path("var/central"), description="Data directory (DuckDB, packs).")
    duckdb_file: str = Field("varta.duckdb", description="DuckDB file name inside data_dir.")
    duckdb_memory_limit_mb: int | None = Field(
        None,
        ge=64,
        description="Most memory DuckDB's buffer pool may hold, in MiB (empty: DuckDB's "
        "default, 80% of RAM). The pool caches table blocks as sightings are written and "
        "evicts only at this limit, so central's RSS grows towards it as data accumulates.",
    )


class AlertsConfig(StrictModel):
    """When watchlist matches and health problems become alerts."""

    min_score: float = Field(
        0.6, ge=0.0, le=1.0, description="Watchlist matches scoring below this raise no alert."
    )
    strict_min_plate_confidence: float = Field(
        STRICT_MIN_CONFIDENCE,
        ge=0.0,
        le=1.0,
        description="Plate reads less confident than this (calibrated: the share of reads "
        "that are exact) never match a strict wanted list; they stay candidates for search "
        "and for the OCR-tolerant lists.",
    )
    dedup_window_s: float = Field(
        600.0,
        gt=0,
        description="Sightings of the same wanted entry and plate within this many seconds "
        "join the open alert (its trail) instead of raising a new one.",
    )
    offline_check_interval_s: float = Field(
        5.0, gt=0, description="Seconds between checks for offline agents and cameras."
    )
    past_reads_days: float = Field(
        7.0,
        ge=0,
        description="When wanted-list entries are added or changed, match them against the "
        "sightings of this many past days and raise historical alerts (0: off).",
    )


class WebhookEndpointConfig(StrictModel):
    """One endpoint that receives alert changes as signed JSON POSTs."""

    name: str = Field(..., min_length=1, description="Unique name (logs, alerts, queue).")
    url: str = Field(..., pattern=r"^https?://", description="http(s) URL to POST to.")
    secret_env: str = Field("", description="Environment variable holding the HMAC-SHA256 secret.")
    secret_file: Path | None = Field(
        None, description="File holding the HMAC-SHA256 secret (used if secret_env is empty)."
    )
    kinds: list[str] = Field(
        default_factory=list,
        description="Alert kinds to send (watchlist, agent_offline, camera_offline, "
        "webhook_failing); empty for all.",
    )
    lists: list[str] = Field(
        default_factory=list,
        description="Wanted lists whose watchlist alerts to send; empty for all (alerts "
        "of other kinds carry no list and pass only when this is empty).",
    )
    categories: list[str] = Field(
        default_factory=list,
        description="Categories to send (stolen, wanted, violation, crash, other, system); "
        "empty for all.",
    )
    max_priority: int = Field(
        5, ge=1, le=5, description="Send alerts with priority at most this (1 most urgent)."
    )
    timeout_s: float = Field(5.0, gt=0, description="Per-request timeout.")
    backoff_initial_s: float = Field(1.0, gt=0, description="First retry delay after a failure.")
    backoff_max_s: float = Field(60.0, gt=0, description="Longest retry delay.")
    failing_after: int = Field(
        5, ge=1, description="Consecutive failures that raise a webhook_failing alert."
    )


class WebhooksConfig(StrictModel):
    """Outgoing webhooks for alert changes."""

    endpoints: list[WebhookEndpointConfig] = Field(
        default_factory=list, description="Endpoints; each gets every accepted change in order."
    )


class LoginConfig(StrictModel):
    """How failed logins are slowed down and audited, and how many are checked at once.

    Failures are counted per user name and source address (IPv6: its /64), per source, and
    per user name; each failure beyond a count's free ones doubles the wait before the
    failing source may try again. A source that has not been failing never waits, so
    nobody can lock a real user out.
    """

    free_failures: int = Field(
        3,
        ge=1,
        description="Failed logins of one user name from one source answered without a "
        "wait; each further failure doubles the wait before that source may try that name.",
    )
    source_free_failures: int = Field(
        20,
        ge=1,
        description="Failed logins from one source over all user names without a wait "
        "(password spraying); beyond, the source waits, doubling per failure.",
    )
    account_free_failures: int = Field(
        50,
        ge=1,
        description="Failed logins of one user name from all sources after which every "
        "source that failed on it waits too; sources that did not fail are never held back.",
    )
    delay_initial_s: float = Field(1.0, gt=0, description="The first wait, in seconds.")
    delay_max_s: float = Field(900.0, gt=0, description="The longest wait, in seconds.")
    forget_s: float = Field(
        3600.0,
        gt=0,
        description="Seconds after its last failure (and wait) when a count starts afresh.",
    )
    audit_window_s: float = Field(
        600.0,
        gt=0,
        description="Refused logins of one user name from one source are at most two audit "
        "rows per window this long: the first at once, one with the count of the rest after.",
    )
    hash_concurrency: int = Field(
        2,
        ge=1,
        description="Password checks run at the same time, at most (argon2id takes ~64 MiB "
        "and tens of milliseconds each); they have their own threads.",
    )
    queue: int = Field(
        8,
        ge=0,
        description="Logins waiting for a password check at most; more are answered 429 "
        "with Retry-After, so a login flood never holds other requests' threads.",
    )


class WatchlistSyncConfig(StrictModel):
    """One wanted list kept in sync with its registry's full export while central runs."""

    name: str = Field(..., min_length=1, description="The list (created when missing).")
    folder: Path | None = Field(
        None, description="Drop folder of full exports; the newest settled file is applied."
    )
    url: str = Field(
        "",
        pattern=r"^(https?://.+)?$",
        description="HTTP(S) URL of the full export (asked with ETag / If-Modified-Since).",
    )
    interval_s: float = Field(300.0, gt=0, description="Seconds between checks of the source.")
    allow_mass_removal: bool = Field(
        False, description="Accept an export that removes over half of the list."
    )
    verify_key: str = Field(
        "",
        pattern=r"^(ed25519:[A-Za-z0-9+/]{43}=)?$",
        description="Public key of a national hub (ed25519:..., printed by `varta central "
        "national keygen`): the export must carry the hub's valid signature, else it is "
        "refused and the list in force stays. Empty: exports are not signed.",
    )
    token_file: Path | None = Field(
        None,
        description="File holding an API token (vt_...) sent as 'Authorization: Bearer' to "
        "the URL (a national hub's token with the national:read scope). Keep it mode 0600.",
    )

    @model_validator(mode="after")
    def _url_only(self) -> WatchlistSyncConfig:
        if (self.verify_key or self.token_file is not None) and not self.url:
            raise ValueError("verify_key and token_file need a url (a drop folder is not signed)")
        return self


class WatchlistsConfig(StrictModel):
    """Wanted lists synced inside central (changes over the API need no config)."""

    sync: list[WatchlistSyncConfig] = Field(
        default_factory=list,
        description="Lists synced from a drop folder or URL, each on its own interval.",
    )


class AuthConfig(StrictModel):
    """Users, login sessions and API tokens."""

    session_ttl_s: float = Field(
        8 * 3600.0, gt=0, description="A login session expires this many seconds after login."
    )
    session_cookie: str = Field(
        "varta_session", description="Name of the HttpOnly session cookie set at login."
    )
    cookie_secure: bool = Field(
        True,
        description="Send the session cookie over HTTPS only (turn off only for plain-HTTP "
        "loopback use).",
    )
    login: LoginConfig = Field(
        default_factory=LoginConfig, description="Failed-login throttling and auditing."
    )
    bootstrap_admin: str = Field(
        "admin", description="User name of the administrator made on first start."
    )
    bootstrap_password_env: str | None = Field(
        None,
        description="Name of an environment variable holding the first administrator's "
        "password; read at start, used only while no user exists.",
    )
    bootstrap_token_file: Path | None = Field(
        None,
        description="File holding an API token secret (vt_..., e.g. from `varta central tokens "
        "new-secret`) registered at start for the bootstrap administrator with every scope; "
        "for automation and tests. Keep it mode 0600.",
    )


class RetentionConfig(StrictModel):
    """Deleting sightings that hit nothing (data protection) and keeping hit evidence."""

    non_hit_days: float = Field(
        14.0,
        gt=0,
        description="Sightings referenced by no alert are deleted this many days after capture.",
    )
    interval_s: float = Field(
        3600.0, gt=0, description="Seconds between scheduled purges (the first runs at start)."
    )
    enabled: bool = Field(True, description="Run the scheduled purge in `varta central serve`.")
    chunk_rows: int = Field(
        20_000,
        ge=100,
        description="Sightings deleted per writer job; small chunks keep ingest unblocked.",
    )
    face_pending_days: float = Field(
        7.0,
        gt=0,
        description="Face candidates nobody confirmed or rejected within this many days of "
        "arrival are rejected by `system`, which deletes their embedding and crop.",
    )
    health_history_days: float = Field(
        7.0,
        gt=0,
        description="Per-minute camera health and sighting counts (the console's health "
        "plots) are deleted this many days after their minute.",
    )


class SearchConfig(StrictModel):
    """The plate index behind sighting search, and how far back browsing reaches."""

    live_window_s: float = Field(
        900.0,
        gt=0,
        description="GET /api/v1/sightings without a reason lists sightings captured this "
        "many seconds back at most (the live picture); older ones need a reason and are "
        "audited like a search.",
    )
    index_interval_s: float = Field(
        3600.0,
        gt=0,
        description="Seconds between moves of new sightings into the plate index (sorted runs "
        "of at most index_max_rows sightings; finished days are merged into one run).",
    )
    index_lag_s: float = Field(
        60.0,
        ge=0,
        description="Only sightings received at least this long ago are indexed; newer ones "
        "are searched directly (covers ingest transactions still open).",
    )
    index_max_rows: int = Field(
        200_000,
        ge=1000,
        description="Sightings per indexing job and index rows per merge job: bounds how "
        "long the database writer (and so ingest) waits behind the indexer.",
    )


class ArchiveConfig(StrictModel):
    """The sighting archive: closed days exported as Parquet (docs/archive.md)."""

    enabled: bool = Field(
        False,
        description="Export closed days to the archive in `varta central serve`, hold "
        "sightings in the database until their day is archived, and search archived days.",
    )
    root: str = Field(
        "",
        description="Archive root: a local directory, or s3://bucket/prefix on S3-compatible "
        "object storage.",
    )
    region: str = Field(
        "",
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:-]*$",
        description="This central's region, written in every archived row (national readers "
        "union many regions' archives), e.g. UA-IF.",
    )
    s3_endpoint: str = Field(
        "",
        pattern=r"^(https?://[^/\s]+/?)?$",
        description="S3 endpoint URL (e.g. http://minio.lan:9000); empty: AWS for s3_region.",
    )
    s3_region: str = Field("us-east-1", min_length=1, description="S3 region name.")
    s3_credentials_file: Path | None = Field(
        None,
        description="File with `access_key_id = ...` and `secret_access_key = ...` lines "
        "(optionally `session_token`); empty: the AWS environment variables and the usual "
        "credential chain. Keep it mode 0600.",
    )
    grace_s: float = Field(
        6 * 3600.0,
        ge=0,
        description="A UTC day is closed, and exported, this many seconds after it ends; "
        "sightings of a closed day that arrive later go into a further part file.",
    )
    retention_days: float = Field(
        365.0,
        gt=0,
        description="Archived days are deleted from the archive this many days after they "
        "end (by the retention run, audited).",
    )
    interval_s: float = Field(
        3600.0, gt=0, description="Seconds between export runs in `varta central serve`."
    )

    @field_validator("root")
    @classmethod
    def _root(cls, value: str) -> str:
        if value.startswith("s3://") and not value[5:].strip("/"):
            raise ValueError(f"expected s3://bucket[/prefix], got {value!r}")
        if "://" in value and not value.startswith("s3://"):
            raise ValueError(f"expected a local directory or s3://bucket/prefix, got {value!r}")
        return value.rstrip("/") if len(value) > 1 else value

    @model_validator(mode="after")
    def _complete(self) -> ArchiveConfig:
        if self.enabled and not self.root:
            raise ValueError("archive.enabled needs archive.root (a directory or s3://bucket)")
        if self.enabled and not self.region:
            raise ValueError("archive.enabled needs archive.region (written in every row)")
        return self


DEFAULT_REJECT_REASONS = [
    "Plate misread",
    "Different vehicle (plate matches, vehicle does not)",
    "Entry no longer wanted",
    "Duplicate of another alert",
    "Test or training",
]


class ConsoleConfig(StrictModel):
    """The operator console (the web UI under /console)."""

    reject_reasons: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REJECT_REASONS),
        min_length=1,
        description="Reasons an operator picks from to reject an alert (written to the "
        "alert's history and the audit log as chosen).",
    )
    timezone: str = Field(
        "Europe/Kyiv",
        description="IANA time zone the console shows times in (e.g. Europe/Kyiv, UTC).",
    )
    max_rows: int = Field(
        100, ge=1, le=200, description="Alerts the live board shows at most, newest first."
    )
    map_tiles: str = Field(
        "",
        pattern=r"^(https?://[^/?#\s]+/\S*)?$",
        description="URL template of the on-site map tile server, with {z}, {x} and {y} "
        "(e.g. http://tiles.centre.lan/{z}/{x}/{y}.png); its origin is the only one added to "
        "the pages' img-src. Empty: the journey map is a plain coordinate plan without tiles.",
    )

    @field_validator("map_tiles")
    @classmethod
    def _tile_template(cls, value: str) -> str:
        missing = [p for p in ("{z}", "{x}", "{y}") if value and p not in value]
        if missing:
            raise ValueError(
                f"expected a tile URL template with {{z}}, {{x}} and {{y}}, got "
                f"{value!r} (missing {', '.join(missing)})"
            )
        return value

    @property
    def tile_origin(self) -> str:
        """The tile server's origin (``scheme://host:port``), empty without one."""
        if not self.map_tiles:
            return ""
        parts = urlsplit(self.map_tiles)
        return f"{parts.scheme}://{parts.netloc}"


class CameraPlaceConfig(StrictModel):
    """Where one camera stands and which way it looks (the journey map draws it)."""

    id: str = Field(
        ..., min_length=1, max_length=64, description="Camera id as its edge agent sends it."
    )
    lat: float = Field(..., ge=-90.0, le=90.0, description="Latitude, decimal degrees (WGS 84).")
    lon: float = Field(..., ge=-180.0, le=180.0, description="Longitude, decimal degrees (WGS 84).")
    heading: float | None = Field(
        None,
        ge=0.0,
        lt=360.0,
        description="Direction the camera looks, degrees clockwise from north (0 north, 90 "
        "east); empty when unknown.",
    )
    label: str = Field(
        "", max_length=120, description="Place name shown on the map and the timeline."
    )


class FacesConfig(StrictModel):
    """Face matching against the persons watchlist (docs/faces.md)."""

    threshold: float = Field(
        0.40,
        ge=0.0,
        le=1.0,
        description="Minimum cosine score of a face match (0.40 calibrated on faces-dev and "
        "faces-dev-2 with `varta bench faces`).",
    )
    top_k: int = Field(5, ge=1, le=100, description="Persons a face search returns at most.")
    models_dir: Path | None = Field(
        None,
        description="Model store for enrolment (the edge's face models); default "
        "$VARTA_MODELS, else var/models.",
    )


NATIONAL_ENDPOINT = "national-hub"
"""Name of the built-in webhook endpoint that forwards alerts to the national hub."""


class NationalForwardConfig(StrictModel):
    """A region's forwarding of alerts on national lists to the national hub."""

    url: str = Field(
        "",
        pattern=r"^(https?://[^/?#\s]+/?)?$",
        description="Base URL of the national hub (scheme, host and port, e.g. "
        "https://hub.police.lan:8000); alerts go to POST /api/v1/national/alerts. Empty: "
        "nothing is forwarded.",
    )
    region: str = Field(
        "",
        pattern=r"^([a-z0-9][a-z0-9_.-]{0,62})?$",
        description="This region's name at the hub; the hub accepts it only from a token of "
        "the hub user with this name.",
    )
    token_file: Path | None = Field(
        None,
        description="File holding the hub API token (vt_..., scope national:forward) of the "
        "user named as region. Keep it mode 0600.",
    )
    lists: list[str] = Field(
        default_factory=list,
        description="Lists whose watchlist alerts are forwarded; empty: every list of "
        "watchlists.sync with a verify_key (the lists that came from the hub).",
    )
    batch_max: int = Field(
        200, ge=1, le=1000, description="Alert changes sent in one request, at most."
    )
    timeout_s: float = Field(10.0, gt=0, description="Per-request timeout.")
    backoff_initial_s: float = Field(1.0, gt=0, description="First retry delay after a failure.")
    backoff_max_s: float = Field(60.0, gt=0, description="Longest retry delay.")
    failing_after: int = Field(
        5, ge=1, description="Consecutive failures that raise a webhook_failing alert."
    )

    @model_validator(mode="after")
    def _complete(self) -> NationalForwardConfig:
        if self.url and (not self.region or self.token_file is None):
            raise ValueError("forwarding to url needs region and token_file")
        return self


class NationalConfig(StrictModel):
    """National hub (publishes signed wanted lists, receives regions' alerts) or region."""

    hub: bool = Field(
        False,
        description="Serve as the national hub: signed lists at GET "
        "/api/v1/national/lists/{name}, regions' alerts at /api/v1/national/alerts.",
    )
    signing_key_file: Path | None = Field(
        None,
        description="The hub's Ed25519 private key (PEM, `varta central national keygen`); "
        "required with hub. Keep it mode 0600.",
    )
    publish: list[str] = Field(
        default_factory=list,
        description="Names of the hub's lists that regions may sync (each must exist when "
        "asked for).",
    )
    forward: NationalForwardConfig = Field(
        default_factory=NationalForwardConfig,
        description="Region: forward alerts on national lists to the hub.",
    )
    alert_retention_days: float = Field(
        365.0,
        gt=0,
        description="Hub: a forwarded alert no region changed for this many days is deleted "
        "(by the retention schedule, retention.interval_s).",
    )

    @model_validator(mode="after")
    def _hub_parts(self) -> NationalConfig:
        if self.hub and self.signing_key_file is None:
            raise ValueError("hub needs signing_key_file (`varta central national keygen`)")
        if self.publish and not self.hub:
            raise ValueError("publish needs hub: true")
        if len(set(self.publish)) != len(self.publish):
            raise ValueError(f"expected each published list once, got {self.publish}")
        return self


class RegionArchiveConfig(StrictModel):
    """One region's sighting archive (the layout of central/archive/schema.py)."""

    region: str = Field(
        ...,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Region name as its archive's `region` column holds it.",
    )
    root: str = Field(
        ...,
        min_length=1,
        description="Archive root: a local directory or an object-store URL (s3a://bucket/"
        "prefix; Spark then needs the Hadoop S3A jars and their spark_conf settings).",
    )


class NationalSearchConfig(StrictModel):
    """National search over every region's archive on Spark (docs/national.md)."""

    archives: list[RegionArchiveConfig] = Field(
        default_factory=list, description="The regions' archives, one entry per region."
    )
    master: str = Field(
        "local[2]",
        pattern=r"^(local(\[(\d+|\*)\])?|spark://\S+)$",
        description="Spark master: local[N] (in this process) or spark://host:port "
        "(a standalone cluster).",
    )
    bind_address: str = Field(
        "127.0.0.1",
        description="Address the Spark driver binds to and tells executors (the cluster "
        "must reach it).",
    )
    driver_memory: str = Field(
        "2g", pattern=r"^\d+[kmgt]$", description="Spark driver JVM heap (e.g. 2g)."
    )
    shuffle_partitions: int = Field(
        8, ge=1, description="spark.sql.shuffle.partitions (sorting a result page)."
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict,
        description="Further Spark settings (e.g. spark.hadoop.fs.s3a.endpoint); the "
        "settings national search depends on cannot be changed.",
    )
    audit_db: Path = Field(
        Path("var/national/audit.duckdb"),
        description="DuckDB file of the national search audit log (the hash-chained "
        "audit_log of central; check it with `varta central audit verify --db FILE`).",
    )

    @field_validator("archives")
    @classmethod
    def _unique_regions(cls, value: list[RegionArchiveConfig]) -> list[RegionArchiveConfig]:
        counts = Counter(a.region for a in value)
        twice = sorted(name for name, n in counts.items() if n > 1)
        if twice:
            raise ValueError(f"expected each region once, got {', '.join(twice)} more than once")
        return value


class CentralConfig(StrictModel):
    """Everything `varta central serve` needs."""

    ingest: IngestConfig = Field(default_factory=IngestConfig, description="Agent ingest.")
    http: HttpConfig = Field(default_factory=HttpConfig, description="HTTP server.")
    storage: StorageConfig = Field(default_factory=StorageConfig, description="Storage.")
    agent_offline_after_s: float = Field(
        20.0, gt=0, description="An agent or camera silent this long is reported offline."
    )
    alerts: AlertsConfig = Field(default_factory=AlertsConfig, description="Alerting.")
    watchlists: WatchlistsConfig = Field(
        default_factory=WatchlistsConfig, description="Wanted lists synced from registries."
    )
    webhooks: WebhooksConfig = Field(default_factory=WebhooksConfig, description="Webhooks.")
    auth: AuthConfig = Field(default_factory=AuthConfig, description="Accounts and login.")
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig, description="Purge of sightings that hit nothing."
    )
    search: SearchConfig = Field(default_factory=SearchConfig, description="Sighting search.")
    archive: ArchiveConfig = Field(
        default_factory=ArchiveConfig, description="Parquet archive of closed days."
    )
    console: ConsoleConfig = Field(
        default_factory=ConsoleConfig, description="The operator console (web UI)."
    )
    faces: FacesConfig = Field(
        default_factory=FacesConfig, description="Face matching and the persons watchlist."
    )
    cameras: list[CameraPlaceConfig] = Field(
        default_factory=list,
        description="Camera positions and headings (journey map, evidence); a camera not "
        "listed is shown on the timeline but not on the map.",
    )
    national: NationalConfig = Field(
        default_factory=NationalConfig,
        description="National hub and regional forwarding (docs/national-hub.md).",
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig,
        description="Prometheus metrics on their own listener (off by default; port 9810).",
    )
    national_search: NationalSearchConfig = Field(
        default_factory=NationalSearchConfig,
        description="National search over the regions' archives on Spark (`varta national`, "
        "docs/national.md).",
    )
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="Log format.")

    @field_validator("cameras")
    @classmethod
    def _unique_cameras(cls, value: list[CameraPlaceConfig]) -> list[CameraPlaceConfig]:
        counts = Counter(c.id for c in value)
        twice = sorted(name for name, n in counts.items() if n > 1)
        if twice:
            raise ValueError(f"expected each camera id once, got {', '.join(twice)} more than once")
        return value

    @model_validator(mode="after")
    def _archive_outlives_database(self) -> CentralConfig:
        archive, retention = self.archive, self.retention
        if (
            archive.enabled
            and retention.enabled
            and archive.retention_days < retention.non_hit_days
        ):
            raise ValueError(
                f"expected archive.retention_days >= retention.non_hit_days, got "
                f"{archive.retention_days:g} < {retention.non_hit_days:g} (the archive would "
                "delete days that search expects it to hold)"
            )
        return self

    @model_validator(mode="after")
    def _national_forward(self) -> CentralConfig:
        if any(e.name == NATIONAL_ENDPOINT for e in self.webhooks.endpoints):
            raise ValueError(f"webhooks.endpoints: the name {NATIONAL_ENDPOINT!r} is reserved")
        forward = self.national.forward
        if not forward.url:
            return self
        synced = {s.name for s in self.watchlists.sync}
        unknown = sorted(set(forward.lists) - synced)
        if unknown:
            raise ValueError(
                f"national.forward.lists: expected lists of watchlists.sync, got {unknown}"
            )
        if not self.forwarded_lists:
            raise ValueError(
                "national.forward: no list to forward (give lists, or a watchlists.sync "
                "entry with a verify_key)"
            )
        return self

    @property
    def forwarded_lists(self) -> list[str]:
        """The lists whose alerts go to the national hub (none without forwarding)."""
        forward = self.national.forward
        if not forward.url:
            return []
        return list(forward.lists) or [s.name for s in self.watchlists.sync if s.verify_key]
