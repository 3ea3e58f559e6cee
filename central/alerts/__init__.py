"""Alerts: raised on watchlist matches and health problems, pulled by police, pushed by webhooks.

Modules: ``model`` (types and the lifecycle), ``builders`` (alerts from matches),
``repository`` (DuckDB), ``feed`` (change-feed head and cursors), ``engine`` (the writer
thread fed by ingest's ``on_commit``), ``monitor`` (offline agents and cameras),
``webhooks`` (durable, ordered, signed delivery) and ``service`` (what the API calls).

Composition (central/app.py)::

    engine = AlertEngine(db, watchlists, min_score=0.6, webhooks=[e.filter for e in hooks])
    ingest = IngestServer(..., on_commit=engine.on_commit)
    monitor = OfflineMonitor(db, engine, offline_after=20.0)
    senders = [WebhookSender(e, db, engine) for e in hooks]
    alerts = AlertService(engine, db, audit)
"""

from __future__ import annotations

from central.alerts.engine import AlertEngine
from central.alerts.model import Alert, AlertDetail, Change, ChangePage, IllegalTransition
from central.alerts.monitor import OfflineMonitor
from central.alerts.service import AlertService
from central.alerts.webhooks import Endpoint, WebhookSender

__all__ = [
    "Alert",
    "AlertDetail",
    "AlertEngine",
    "AlertService",
    "Change",
    "ChangePage",
    "Endpoint",
    "IllegalTransition",
    "OfflineMonitor",
    "WebhookSender",
]
