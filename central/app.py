"""Central's composition root: build the parts from config and wire them together."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from litestar import Litestar
from litestar.di import Provide
from litestar.logging import LoggingConfig

from central.accounts import AccountService
from central.accounts.bootstrap import build_accounts
from central.accounts.prefs import PrefsService
from central.alerts.board import BoardService
from central.alerts.past_reads import PastReads
from central.alerts.runtime import Alerting, build_alerting
from central.alerts.service import AlertService
from central.alerts.webhooks import WebhookSender
from central.api.account_controllers import (
    AuditController,
    AuthController,
    TokenController,
    UserController,
)
from central.api.alerts import AlertController
from central.api.auth import CookiePolicy, auth_dependencies, auth_middleware
from central.api.controllers import AgentController, SightingController, StatusController
from central.api.errors import HANDLERS
from central.api.evidence import EvidenceController
from central.api.faces import FaceCandidateController, PersonController
from central.api.login_gate import LoginGate
from central.api.national import NationalController
from central.api.openapi import document_errors
from central.api.search import SearchController
from central.api.watchlists import WatchlistController
from central.archive.export import ArchiveExporter, build_archive
from central.archive.search import ArchiveSearch
from central.audit import AuditLog
from central.camera_health import CameraHealthService
from central.config import CentralConfig, IngestConfig
from central.evidence import EvidenceService
from central.faces.candidates import FaceCandidates
from central.faces.crops import CropFetcher
from central.faces.service import FaceWatchlist
from central.ingest import FacesFn, IngestLimits, IngestServer
from central.national.forward import source_security
from central.national.hub import NationalHub
from central.national.runtime import build_hub
from central.retention import Scheduler, build_maintenance
from central.search import SearchService
from central.services import (
    AgentService,
    HealthService,
    SightingService,
    StatusService,
    free_disk_problem,
)
from central.store.db import Database
from central.store.thumbs import ThumbStore
from central.watchlist.reading import ExportReader
from central.watchlist.repository import WatchlistRepository
from central.watchlist.scheduler import SyncScheduler, SyncSource
from central.watchlist.service import WatchlistService
from central.web.i18n import Catalogues
from central.web.mount import console_parts
from central.web.pages import Console
from shared import keys

if TYPE_CHECKING:
    from edge_agent.face_analysis import FaceAnalyser
    from shared.metrics import MetricsServer

log = logging.getLogger(__name__)


@dataclass
class Central:
    """Everything one central process runs."""

    config: CentralConfig
    db: Database
    thumbs: ThumbStore
    ingest: IngestServer
    alerting: Alerting | None = None
    audit: AuditLog | None = None
    accounts: AccountService | None = None
    maintenance: Scheduler | None = None
    watchlists: WatchlistService | None = None
    past_reads: PastReads | None = None
    syncs: SyncScheduler | None = None
    faces: FaceWatchlist | None = None
    face_candidates: FaceCandidates | None = None
    metrics: MetricsServer | None = None
    archive: ArchiveExporter | None = None
    national: NationalHub | None = None

    def start(self) -> None:
        """Start alerting (ingest feeds it), then the ingest thread."""
        if self.alerting is not None:
            self.alerting.start()
        if self.face_candidates is not None:
            self.face_candidates.start()
        if self.past_reads is not None:
            self.past_reads.start()
        if self.syncs is not None:
            self.syncs.start()
        self.ingest.start()
        log.info("ingest listening on %s", self.ingest.bound_endpoint)
        if self.maintenance is not None:
            self.maintenance.start()
        if self.config.metrics.enabled:
            self.metrics = _serve_metrics(self)

    def stop(self) -> None:
        """Stop ingest (committing and acking the turn in hand), then close storage."""
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        if self.maintenance is not None:
            self.maintenance.stop()
        if self.syncs is not None:
            self.syncs.stop()
        if self.watchlists is not None:
            self.watchlists.close()
        self.ingest.stop()
        if self.face_candidates is not None:
            self.face_candidates.stop()
        if self.past_reads is not None:
            self.past_reads.stop()
        if self.alerting is not None:
            self.alerting.stop()
        if self.accounts is not None:
            self.accounts.flush_refusals()
        self.thumbs.close()
        self.db.close()


# Litestar's records (uncaught exceptions included) go to the root logger that
# shared.logs configured, in its format and through its redaction; Litestar's default
# would replace the root logger's handlers.
_LOGGING = LoggingConfig(
    configure_root_logger=False,
    log_exceptions="always",
    loggers={"litestar": {"level": "INFO", "handlers": [], "propagate": True}},
)


def _serve_metrics(central: Central) -> MetricsServer:
    """The Prometheus listener (prometheus-client is imported only when it is enabled)."""
    from central.metrics import CentralCollector
    from shared.metrics import serve

    return serve(central.config.metrics, CentralCollector(central))


def build(config: CentralConfig, on_faces: FacesFn | None = None) -> Central:
    """Open storage and prepare ingest (not started).

    Args:
        config: Central's configuration.
        on_faces: Also given each batch's accepted face observations on the ingest thread
            (at least once: a batch stored again after a failed commit repeats them).
            Matching itself is built in (``FaceCandidates``, exactly once per observation).
    """
    data_dir = config.storage.data_dir
    db = Database(
        Path(data_dir) / config.storage.duckdb_file,
        memory_limit_mb=config.storage.duckdb_memory_limit_mb,
    )
    thumbs = ThumbStore(Path(data_dir) / "thumbs")
    audit = AuditLog(db)
    accounts = build_accounts(config.auth, db, audit)
    server_keys = keys.load_pair(config.ingest.server_secret_key)
    allow = keys.load_allow_list(config.ingest.allowed_agents_dir)
    repo = WatchlistRepository(db)
    watchlists = WatchlistService(repo, audit, ExportReader(isolated=True))
    alerting = build_alerting(config, db, watchlists)
    past_reads = PastReads(
        db,
        repo,
        alerting.engine,
        days=config.alerts.past_reads_days,
        min_score=config.alerts.min_score,
    )
    watchlists.on_change(past_reads.submit)
    syncs = SyncScheduler(watchlists, sync_sources(config))
    faces = FaceWatchlist(
        db,
        audit,
        face_analyser(config),
        threshold=config.faces.threshold,
        top_k=config.faces.top_k,
    )
    face_candidates = FaceCandidates(db, audit, faces, alerting.engine)
    ingest = IngestServer(
        config.ingest.bind,
        server_keys,
        allow,
        db,
        thumbs,
        limits=ingest_limits(config.ingest),
        on_store=alerting.engine.after_store,
        data_dir=Path(data_dir),
        faces=face_candidates,
        crops=crop_fetcher(config.ingest),
        on_faces=on_faces,
    )
    face_candidates.set_fetcher(ingest.crops)  # crop on match only, over the agent link
    national = build_hub(config, db, watchlists)
    stop = threading.Event()
    archive = build_archive(config, db, stop)
    maintenance = build_maintenance(
        config,
        db,
        Path(data_dir) / "thumbs",
        audit,
        alerting.engine,
        face_candidates,
        archive=archive,
        stop=stop,
        national=national,
    )
    return Central(
        config,
        db,
        thumbs,
        ingest,
        alerting,
        audit=audit,
        accounts=accounts,
        maintenance=maintenance,
        watchlists=watchlists,
        past_reads=past_reads,
        syncs=syncs,
        faces=faces,
        face_candidates=face_candidates,
        archive=archive,
        national=national,
    )


def sync_sources(config: CentralConfig) -> list[SyncSource]:
    """The wanted-list sources of ``watchlists.sync`` (hub signature checks and tokens read).

    Raises:
        ConfigError: A verify_key is malformed or a token_file unreadable.
    """
    sources = []
    for s in config.watchlists.sync:
        security = source_security(s)
        sources.append(
            SyncSource(
                s.name,
                s.folder,
                s.url,
                s.interval_s,
                s.allow_mass_removal,
                security.verify,
                security.token,
                security.read,
            )
        )
    return sources


def face_analyser(config: CentralConfig) -> Callable[[], FaceAnalyser]:
    """Builds the enrolment face chain on first use: the edge's models from the model store
    (sha256-verified; a missing model names the pull command)."""

    def make() -> FaceAnalyser:
        from edge_agent.face_analysis import FaceAnalyser
        from edge_agent.face_models import FaceModels
        from models.store import ModelStore, default_models_dir

        root = config.faces.models_dir or default_models_dir()
        return FaceAnalyser(FaceModels.load(ModelStore(Path(root))))

    return make


def health_checks(central: Central) -> dict[str, Callable[[], str]]:
    """What ``/api/v1/health`` checks: each returns an empty string when healthy."""
    ingest, db = central.ingest, central.db
    checks: dict[str, Callable[[], str]] = {
        "ingest": lambda: "" if ingest.alive else "ingest thread not running",
        "ingest_storage": lambda: ingest.problem,
        "database_writer": lambda: "" if db.writer.alive else "database writer not running",
        "database_writable": lambda: (
            "" if db.writable(timeout=5.0) else f"write failed: {db.writer.stats.last_error}"
        ),
        "free_disk": lambda: free_disk_problem(
            Path(central.config.storage.data_dir), central.config.ingest.min_free_mb << 20
        ),
    }
    if central.archive is not None:
        stats = central.archive.stats
        checks["archive"] = lambda: (
            stats.last_error and f"archive export failing: {stats.last_error}"
        )
    if central.past_reads is not None:
        past = central.past_reads
        checks["past_reads"] = lambda: "" if past.alive else "past-read matching not running"
    if central.syncs is not None:
        syncs = central.syncs
        checks["watchlist_sync"] = lambda: "" if syncs.alive else "watchlist sync not running"
    if central.face_candidates is not None:
        crops = central.face_candidates
        checks["face_crops"] = lambda: "" if crops.alive else "face crop requests not running"
    if central.alerting is not None:
        monitor, engine = central.alerting.monitor, central.alerting.engine
        checks["alert_monitor"] = lambda: "" if monitor.alive else "alert monitor not running"
        checks["alert_matching"] = lambda: "behind: matching again" if engine.behind else ""
        for sender in central.alerting.senders:
            checks[f"webhook:{sender.endpoint.filter.name}"] = _thread_check(sender)
    return checks


def _thread_check(sender: WebhookSender) -> Callable[[], str]:
    return lambda: "" if sender.alive else "webhook sender not running"


def ingest_limits(cfg: IngestConfig) -> IngestLimits:
    """Ingest bounds from configuration."""
    return IngestLimits(
        max_drain=cfg.max_drain,
        max_turn_items=cfg.max_turn_items,
        min_turn_interval_s=cfg.min_turn_interval_ms / 1000,
        writer_duty=cfg.writer_duty,
        max_frame_bytes=cfg.max_frame_bytes,
        max_frames=cfg.max_frames,
        rcv_hwm=cfg.rcv_hwm,
        max_age_s=cfg.max_age_s,
        max_ahead_s=cfg.max_ahead_s,
        min_free_bytes=cfg.min_free_mb << 20,
    )


def crop_fetcher(cfg: IngestConfig) -> CropFetcher:
    """The face crop requests' timeout and bounds from configuration."""
    return CropFetcher(cfg.crop_timeout_s, cfg.crop_max_bytes, cfg.crop_max_side)


def archive_search(central: Central) -> ArchiveSearch | None:
    """Search over archived days, when the archive is on and the database purges."""
    if central.archive is None or not central.config.retention.enabled:
        return None
    return ArchiveSearch(central.db, central.archive.target, central.config.retention.non_hit_days)


def create_app(central: Central) -> Litestar:
    """The Litestar app; its lifespan starts and stops ingest."""
    if central.alerting is None:
        raise RuntimeError("create_app needs a Central built with alerting (central.app.build)")
    if central.audit is None or central.accounts is None or central.watchlists is None:
        raise RuntimeError("create_app needs a Central built with accounts (central.app.build)")
    if central.faces is None or central.face_candidates is None:
        raise RuntimeError("create_app needs a Central built with faces (central.app.build)")
    faces, face_candidates = central.faces, central.face_candidates
    agents = AgentService(central.db, central.config.agent_offline_after_s)
    sightings = SightingService(
        central.db, central.thumbs, central.audit, central.config.search.live_window_s
    )
    status = StatusService(central.ingest.stats)
    health = HealthService(health_checks(central))
    alerts = AlertService(central.alerting.engine, central.db, central.audit)
    audit, auth = central.audit, central.config.auth
    searches = SearchService(central.db, audit, archive=archive_search(central))
    evidence = EvidenceService(
        central.db, central.thumbs, audit, alerts, searches, tuple(central.config.cameras)
    )
    watchlists = central.watchlists
    if central.faces is None or central.face_candidates is None:
        raise RuntimeError("create_app needs a Central built with faces (central.app.build)")
    cookie = CookiePolicy(auth.session_cookie, auth.cookie_secure, int(auth.session_ttl_s))
    gate = LoginGate(auth.login.hash_concurrency, auth.login.queue)
    console = Console(
        alerts=alerts,
        board=BoardService(central.db),
        prefs=PrefsService(central.db),
        accounts=central.accounts,
        audit=audit,
        health=CameraHealthService(central.db, central.config.agent_offline_after_s),
        catalogues=Catalogues(central.config.console.timezone),
        config=central.config.console,
        searches=searches,
        evidence=evidence,
        cameras=tuple(central.config.cameras),
        watchlists=watchlists,
        persons=central.faces,
        faces=central.face_candidates,
    )
    web = console_parts(console, Path(central.config.storage.data_dir), auth.cookie_secure)
    national = central.national
    hub_routes: list[type[NationalController]] = [] if national is None else [NationalController]
    app = Litestar(
        route_handlers=[
            *hub_routes,
            AgentController,
            SightingController,
            StatusController,
            AlertController,
            AuthController,
            UserController,
            TokenController,
            AuditController,
            SearchController,
            EvidenceController,
            WatchlistController,
            PersonController,
            FaceCandidateController,
            web.router,
            web.static,
        ],
        dependencies={
            "agents": Provide(lambda: agents, sync_to_thread=False),
            "sightings": Provide(lambda: sightings, sync_to_thread=False),
            "status": Provide(lambda: status, sync_to_thread=False),
            "health": Provide(lambda: health, sync_to_thread=False),
            "alerts": Provide(lambda: alerts, sync_to_thread=False),
            "audit": Provide(lambda: audit, sync_to_thread=False),
            "searches": Provide(lambda: searches, sync_to_thread=False),
            "evidence": Provide(lambda: evidence, sync_to_thread=False),
            "login_gate": Provide(lambda: gate, sync_to_thread=False),
            "watchlists": Provide(lambda: watchlists, sync_to_thread=False),
            "faces": Provide(lambda: faces, sync_to_thread=False),
            "face_candidates": Provide(lambda: face_candidates, sync_to_thread=False),
            "national_hub": Provide(lambda: national, sync_to_thread=False),
            **auth_dependencies(central.accounts, cookie),
        },
        middleware=[auth_middleware(central.accounts, cookie.name)],
        exception_handlers=HANDLERS,
        on_startup=[central.start],
        on_shutdown=[central.stop],
        openapi_config=web.openapi_config,
        template_config=web.template_config,
        csrf_config=web.csrf_config,
        logging_config=_LOGGING,
    )
    document_errors(app)
    return app
