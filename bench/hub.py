"""``varta bench hub``: a national hub's signed list sync and its intake of regions' alerts.

A hub runs as its own process (``varta central serve`` with ``national.hub``) on a DuckDB
file holding a synthetic national list of ``entries`` plates (``bench.match``'s export,
Cyrillic). This process is the region:

1. *Sync*: ``sync_url`` with the hub's pinned key and the columnar reader of verified
   exports, as a region's scheduler runs it, into a fresh region DuckDB file: the hub
   builds and signs the export (cold, on this request), the region downloads, verifies,
   reads and loads it; ``sync_s`` is that whole first sync. ``export_get_s`` is a plain
   GET of the cached export (download only), and ``not_modified_ms`` the median of
   conditional syncs answered 304.
2. *Receive*: ``alerts`` watchlist alert changes are queued in a region database's webhook
   outbox and the region's real ``WebhookSender`` for the ``national-hub`` endpoint sends
   them (``batch_max`` per request, and once with one per request, for comparison); the
   rate is alerts stored by the hub per second, from the sender's start until the hub's
   ``/api/v1/national/status`` counts them all.

``load_average_1m`` says how busy the machine was (the numbers move with it).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import yaml

from bench.alerts import _central_log, _wait_http
from bench.match import plates, write_export
from bench.stats import free_endpoint
from shared import keys
from shared.paths import REPO_ROOT

LIST = "national-stolen"
REGION = "bench-region"


def _hub_db(root: Path, entries: int, rng: random.Random) -> dict[str, Any]:
    """The hub's data directory with the national list and a region user; its config."""
    from central.accounts.bootstrap import build_accounts
    from central.accounts.secrets import new_secret
    from central.audit import AuditLog
    from central.config import CentralConfig
    from central.national.signing import generate
    from central.store.db import Database
    from central.watchlist.model import ListSettings
    from central.watchlist.repository import WatchlistRepository
    from central.watchlist.sync import import_file

    admin = root / "admin.token"
    admin.write_text(new_secret("api"))
    admin.chmod(0o600)
    keys.generate(root / "keys", "central")
    (root / "allowed").mkdir()
    public = generate(root / "hub.pem")
    port = int(free_endpoint().rsplit(":", 1)[1])
    config: dict[str, Any] = {
        "ingest": {
            "bind": free_endpoint(),
            "server_secret_key": str(root / "keys/central.key_secret"),
            "allowed_agents_dir": str(root / "allowed"),
        },
        "http": {"host": "127.0.0.1", "port": port},
        "storage": {"data_dir": str(root / "hub")},
        "auth": {"bootstrap_token_file": str(admin), "cookie_secure": False},
        "national": {"hub": True, "signing_key_file": str(root / "hub.pem"), "publish": [LIST]},
    }
    export = root / "export.csv"
    write_export(export, plates(rng, entries), rng, 0)
    cfg = CentralConfig.model_validate(config)
    db = Database(root / "hub" / "varta.duckdb")
    try:
        repo = WatchlistRepository(db)
        repo.save_list(ListSettings(name=LIST))
        import_file(repo, LIST, export, full=True)
        accounts = build_accounts(cfg.auth, db, AuditLog(db))
        accounts.create_user(REGION, "police-api", None, "bench")
        token = accounts.create_token(REGION, ["national:read", "national:forward"], "bench")
    finally:
        db.close()
    export.unlink()
    (root / "region.token").write_text(token.secret)
    (root / "region.token").chmod(0o600)
    (root / "hub.yaml").write_text(yaml.safe_dump(config))
    return {
        "url": f"http://127.0.0.1:{port}",
        "public": public,
        "token": token.secret,
        "admin": admin.read_text(),
    }


def _sync(root: Path, hub: dict[str, Any], repeats: int) -> dict[str, Any]:
    """The first signed sync into a fresh region database, then conditional ones (304)."""
    from central.national.forward import list_verifier
    from central.national.hub_export import read_hub_export
    from central.store.db import Database
    from central.watchlist.model import ListSettings
    from central.watchlist.repository import WatchlistRepository
    from central.watchlist.sync import sync_url

    url = f"{hub['url']}/api/v1/national/lists/{LIST}"
    verify = list_verifier(hub["public"])
    db = Database(root / "region-sync.duckdb")
    try:
        repo = WatchlistRepository(db)
        repo.save_list(ListSettings(name=LIST))
        started = time.perf_counter()
        report = sync_url(repo, LIST, url, verify=verify, token=hub["token"], read=read_hub_export)
        sync_s = time.perf_counter() - started
        headers = {"Authorization": f"Bearer {hub['token']}"}
        started = time.perf_counter()
        body = httpx.get(url, headers=headers, timeout=300)
        export_get_s = time.perf_counter() - started
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            again = sync_url(repo, LIST, url, verify=verify, token=hub["token"])
            times.append(time.perf_counter() - started)
            assert again.not_modified
    finally:
        db.close()
    return {
        "entries_synced": report.added,
        "rejected_rows": report.rejected,
        "export_bytes": len(body.content),
        "sync_s": round(sync_s, 2),
        "export_get_s": round(export_get_s, 3),
        "not_modified_ms": round(statistics.median(times) * 1000, 1),
        "not_modified_p90_ms": round(sorted(times)[int(0.9 * len(times))] * 1000, 1),
    }


def _changes(count: int, first_id: int) -> list[bytes]:
    """Change JSON of ``count`` new watchlist alerts on the national list."""
    from central.alerts.model import Alert, Change

    now = time.time()
    out = []
    for i in range(first_id, first_id + count):
        alert = Alert(
            alert_id=i,
            kind="watchlist",
            state="new",
            priority=1,
            category="stolen",
            title=f"stolen: AA{i % 10000:04d}TE seen at cam-1 ({LIST})",
            subject=f"AA{i % 10000:04d}TE",
            dedup_key=f"watchlist:{LIST}:id:{i}:AA{i % 10000:04d}TE",
            details={"list_name": LIST, "entry_key": f"id:{i}", "score": 1.0},
            created_at=now,
            updated_at=now,
            first_seen=now,
            last_seen=now,
            sightings=1,
            seq=i,
        )
        out.append(msgspec.json.encode(Change(seq=i, change="created", at=now, alert=alert)))
    return out


def _forward(
    root: Path, hub: dict[str, Any], alerts: int, batch: int, first_id: int
) -> dict[str, Any]:
    """Queue ``alerts`` changes in a region outbox; time the sender until the hub has them."""
    from central.alerts.engine import AlertEngine
    from central.alerts.webhooks import WebhookSender
    from central.config import CentralConfig
    from central.national.forward import hub_endpoint
    from central.store.db import Database

    config = CentralConfig.model_validate(
        {
            "national": {
                "forward": {
                    "url": hub["url"],
                    "region": REGION,
                    "token_file": str(root / "region.token"),
                    "lists": [LIST],
                    "batch_max": batch,
                }
            },
            "watchlists": {"sync": [{"name": LIST, "url": f"{hub['url']}/x"}]},
        }
    )
    built = hub_endpoint(config)
    assert built is not None
    endpoint, encode = built
    db = Database(root / f"region-{batch}.duckdb")
    bodies = _changes(alerts, first_id)
    db.writer.call(
        lambda con: con.executemany(
            "INSERT INTO webhook_queue (delivery_id, endpoint, seq, body) VALUES (?, ?, ?, ?)",
            [[n + 1, endpoint.name, n + first_id, b.decode()] for n, b in enumerate(bodies)],
        )
    )
    engine = AlertEngine(db, None)
    sender = WebhookSender(endpoint, db, engine, encode=encode)
    headers = {"Authorization": f"Bearer {hub['admin']}"}
    before = _stored(hub["url"], headers)
    started = time.perf_counter()
    sender.start()
    try:
        while _stored(hub["url"], headers) < before + alerts:
            if time.perf_counter() - started > 600:
                raise RuntimeError("the hub did not store every alert within 600 s")
            time.sleep(0.05)
        took = time.perf_counter() - started
    finally:
        sender.stop()
        db.close()
    return {
        "alerts": alerts,
        "batch_max": batch,
        "seconds": round(took, 2),
        "alerts_per_s": round(alerts / took, 1),
        "requests_failed": sender.stats.failures,
    }


def _stored(url: str, headers: dict[str, str]) -> int:
    body = httpx.get(f"{url}/api/v1/national/status", headers=headers, timeout=30).json()
    return sum(int(r["alerts"]) for r in body["regions"])


def run(entries: int = 200_000, alerts: int = 2000, batch: int = 200) -> dict[str, Any]:
    """Run the benchmark and return its result object."""
    logging.getLogger("httpx").setLevel(logging.WARNING)
    rng = random.Random(13)
    with tempfile.TemporaryDirectory(prefix="varta-bench-hub-") as tmp:
        root = Path(tmp)
        hub = _hub_db(root, entries, rng)
        proc = subprocess.Popen(
            [sys.executable, "-c", "from varta.cli import main; main()", "central", "serve",
             "--config", str(root / "hub.yaml")],
            cwd=REPO_ROOT, stderr=_central_log(),
        )  # fmt: skip
        try:
            _wait_http(hub["url"], proc, 300)
            result: dict[str, Any] = {"entries": entries, **_sync(root, hub, 20)}
            single = min(alerts, 300)
            result["receive_single"] = _forward(root, hub, single, 1, 1)
            result["receive_batched"] = _forward(root, hub, alerts, batch, 1_000_000)
            result["load_average_1m"] = round(os.getloadavg()[0], 2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    return result
