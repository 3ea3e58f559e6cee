"""The running parts of alerting, built from config: engine, offline monitor, webhook senders."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from central.alerts.engine import AlertEngine
from central.alerts.model import WebhookFilter
from central.alerts.monitor import OfflineMonitor
from central.alerts.webhooks import Endpoint, WebhookSender
from central.config import CentralConfig, WebhookEndpointConfig
from central.national.forward import hub_endpoint
from central.store.db import Database
from central.watchlist.service import WatchlistService
from shared.errors import ConfigError

log = logging.getLogger(__name__)


def read_secret(cfg: WebhookEndpointConfig) -> bytes:
    """An endpoint's HMAC secret from the environment variable or file it names.

    Raises:
        ConfigError: Neither is set, or the one named is missing or empty.
    """
    where = f"webhooks.endpoints[{cfg.name}]"
    if cfg.secret_env:
        value = os.environ.get(cfg.secret_env, "")
        if not value:
            raise ConfigError(f"{where}: environment variable {cfg.secret_env} is unset or empty")
        return value.encode()
    if cfg.secret_file is None:
        raise ConfigError(f"{where}: expected secret_env or secret_file, got neither")
    try:
        secret = cfg.secret_file.read_bytes().strip()
    except OSError as err:
        raise ConfigError(f"{where}: cannot read secret_file {cfg.secret_file}: {err}") from err
    if not secret:
        raise ConfigError(f"{where}: secret_file {cfg.secret_file} is empty")
    return secret


def endpoint(cfg: WebhookEndpointConfig) -> Endpoint:
    """A ready endpoint from its config (reads the secret)."""
    return Endpoint(
        filter=WebhookFilter(
            name=cfg.name,
            kinds=frozenset(cfg.kinds),
            categories=frozenset(cfg.categories),
            max_priority=cfg.max_priority,
            lists=frozenset(cfg.lists),
        ),
        url=cfg.url,
        secret=read_secret(cfg),
        timeout_s=cfg.timeout_s,
        backoff_initial_s=cfg.backoff_initial_s,
        backoff_max_s=cfg.backoff_max_s,
        failing_after=cfg.failing_after,
    )


@dataclass
class Alerting:
    """Alert engine, offline monitor and webhook senders, started and stopped together."""

    engine: AlertEngine
    monitor: OfflineMonitor
    senders: list[WebhookSender] = field(default_factory=list)

    def start(self) -> None:
        """Start the writer first (ingest feeds it), then the monitor and senders."""
        self.engine.start()
        self.monitor.start()
        for sender in self.senders:
            sender.start()

    def stop(self) -> None:
        """Stop senders and monitor, then let the writer finish its queue."""
        for sender in self.senders:
            sender.stop()
        self.monitor.stop()
        self.engine.stop()


def build_alerting(
    config: CentralConfig, db: Database, watchlists: WatchlistService | None
) -> Alerting:
    """Build (not start) alerting from central's config."""
    names = [e.name for e in config.webhooks.endpoints]
    if len(set(names)) != len(names):
        raise ConfigError(f"webhooks.endpoints: expected unique names, got {names}")
    hooks = [endpoint(e) for e in config.webhooks.endpoints]
    national = hub_endpoint(config)
    if national is not None:
        hooks.append(national[0])
    engine = AlertEngine(
        db,
        watchlists,
        min_score=config.alerts.min_score,
        strict_min_confidence=config.alerts.strict_min_plate_confidence,
        dedup_window_s=config.alerts.dedup_window_s,
        webhooks=[h.filter for h in hooks],
    )
    monitor = OfflineMonitor(
        db,
        engine,
        offline_after=config.agent_offline_after_s,
        interval=config.alerts.offline_check_interval_s,
    )
    senders = [WebhookSender(h, db, engine) for h in hooks[: len(names)]]
    if national is not None:
        senders.append(WebhookSender(national[0], db, engine, encode=national[1]))
    return Alerting(engine, monitor, senders)
