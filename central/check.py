"""``varta central check``: is this server ready to run (or running) central?

Each check looks at what ``varta central serve`` needs, without changing anything: the
keys and the allow-list load, webhook secrets are readable, the DuckDB file opens and its
schema is one this build knows, the data directory has room, the face models that
enrolment uses are verified, the archive (when enabled) answers, and each port is either
free to bind or answered by a central already serving there (ingest: a CURVE handshake
with a throwaway key is refused by central's authenticator, which proves both the server
key and the allow-list are in force; HTTP: ``/api/v1/health``; metrics: ``/metrics``).
"""

from __future__ import annotations

import errno
import json
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from central.config import CentralConfig
from central.services import free_disk_problem
from shared.checks import CheckResult, fail, guarded, ok, warn
from shared.errors import ConfigError


def run_checks(config: CentralConfig, timeout: float = 3.0) -> list[CheckResult]:
    """Every check of the central server, in the order an engineer would fix them."""
    results = [ok("config", "valid")]
    results += guarded("keys", lambda: check_keys(config))
    results += guarded("webhook secrets", lambda: check_webhooks(config))
    results += guarded("national", lambda: check_national(config, timeout))
    results += guarded("database", lambda: check_database(config))
    results += guarded("disk", lambda: check_disk(config))
    results += guarded("face models", lambda: check_face_models(config))
    if config.archive.enabled:
        results += guarded("archive", lambda: check_archive(config))
    results += guarded("ingest port", lambda: check_ingest_port(config, timeout))
    results += guarded("http port", lambda: check_http_port(config, timeout))
    if config.metrics.enabled:
        results += guarded("metrics port", lambda: check_metrics_port(config, timeout))
    return results


def check_archive(config: CentralConfig) -> list[CheckResult]:
    """The archive's root answers (a directory, or an S3 bucket that exists)."""
    import pyarrow.fs as pafs

    from central.archive.target import open_target
    from shared.errors import SourceUnavailable

    cfg = config.archive
    try:
        target = open_target(cfg)
        target.check()
        bucket = target.base.split("/", 1)[0]
        kind = target.fs.get_file_info(target.base if target.local else bucket).type
    except ConfigError as err:
        return [fail("archive", str(err), "correct archive.s3_credentials_file")]
    except (SourceUnavailable, OSError) as err:
        fix = "check archive.s3_endpoint, the network and the credentials"
        return [fail("archive", str(err), fix)]
    if target.local and kind == pafs.FileType.NotFound:
        return [warn("archive", f"{target.url} does not exist yet: created at first export")]
    if not target.local and kind != pafs.FileType.Directory:
        return [fail("archive", f"bucket {bucket} does not exist", f"create bucket {bucket}")]
    return [ok("archive", f"{target.url} answers")]


def check_keys(config: CentralConfig) -> list[CheckResult]:
    """Central's key pair and the agents' allow-list load."""
    from shared import keys

    ingest = config.ingest
    out_dir = ingest.server_secret_key.parent
    try:
        keys.load_pair(ingest.server_secret_key)
    except ConfigError as err:
        return [fail("server key", str(err), f"`varta keys gen central --out {out_dir}`")]
    rows = [ok("server key", f"{ingest.server_secret_key} loads")]
    add = f"`varta keys gen AGENT_ID --allow {ingest.allowed_agents_dir}` on the agent"
    try:
        allow = keys.load_allow_list(ingest.allowed_agents_dir)
    except ConfigError as err:
        return [*rows, fail("allow-list", str(err), f"mkdir {ingest.allowed_agents_dir}; {add}")]
    if not allow:
        detail = f"{ingest.allowed_agents_dir} holds no agent key: no agent can connect"
        return [*rows, warn("allow-list", detail, add)]
    names = ", ".join(sorted(allow.values())[:8]) + (" ..." if len(allow) > 8 else "")
    return [*rows, ok("allow-list", f"{len(allow)} agents: {names}")]


def check_face_models(config: CentralConfig) -> list[CheckResult]:
    """The face models enrolment embeds photos with (the edge's chain) are present and
    verified. Without them central still matches the agents' embeddings, but no person can
    be enrolled: a warning, not a failure."""
    from edge_agent.face_models import EMBEDDING_MODEL, LANDMARKS_MODEL
    from models.store import ModelStore, default_models_dir, pull_command
    from shared.errors import ModelError

    store = ModelStore(Path(config.faces.models_dir or default_models_dir()))
    wanted = ("face-detection-retail-0004", LANDMARKS_MODEL, EMBEDDING_MODEL)
    rows = []
    for name in wanted:
        try:
            store.path(name)
        except ModelError as err:
            what, _, how = str(err).partition("; ")
            fix = how or f"run `{pull_command(store.root)} --model {name}`"
            rows.append(warn(f"face model {name}", f"{what}: persons cannot be enrolled", fix))
    return rows or [ok("face models", f"{len(wanted)} enrolment models verified in {store.root}")]


def check_webhooks(config: CentralConfig) -> list[CheckResult]:
    """Each webhook endpoint's HMAC secret is readable (never printed)."""
    from central.alerts.runtime import read_secret

    rows = []
    for endpoint in config.webhooks.endpoints:
        name = f"webhook {endpoint.name}"
        try:
            read_secret(endpoint)
        except ConfigError as err:
            rows.append(fail(name, str(err), "set the variable or file named in the config"))
            continue
        rows.append(ok(name, "secret readable"))
    return rows


def check_national(config: CentralConfig, timeout: float = 3.0) -> list[CheckResult]:
    """The hub's signing key, the pinned keys and token files of signed list sources, and
    the forwarding token and hub (only the parts configured). An unreachable hub is a
    warning: the region matches and alerts without it, forwarding waits."""
    from central.national.forward import read_token, source_security
    from central.national.signing import Signer, key_id

    rows = []
    national = config.national
    if national.hub and national.signing_key_file is not None:
        try:
            public = Signer.load(national.signing_key_file).public
        except ConfigError as err:
            fix = "`varta central national keygen --out FILE`"
            rows.append(fail("hub signing key", str(err), fix))
        else:
            detail = f"key id {key_id(public)}; regions pin {public}"
            rows.append(ok("hub signing key", detail))
    for source in config.watchlists.sync:
        if not source.verify_key and source.token_file is None:
            continue
        try:
            source_security(source)
        except ConfigError as err:
            rows.append(fail(f"signed list {source.name}", str(err), "correct verify_key/token"))
        else:
            rows.append(ok(f"signed list {source.name}", "verify key and token readable"))
    forward = national.forward
    if forward.url and forward.token_file is not None:
        try:
            read_token(forward.token_file, "national.forward")
        except ConfigError as err:
            rows.append(fail("national forward", str(err), "write the hub token to the file"))
        else:
            lists = ", ".join(config.forwarded_lists)
            rows.append(ok("national forward", f"region {forward.region}: {lists}"))
        rows.append(_hub_reachable(forward.url.rstrip("/"), timeout))
    return rows


def _hub_reachable(url: str, timeout: float) -> CheckResult:
    status, body = _get(f"{url}/api/v1/health", timeout)
    if status in (200, 503):  # 503: the hub runs but reports a problem of its own
        return ok("national hub", f"{url} answers (health HTTP {status})")
    detail = f"{url} does not answer ({status or body}): alerts queue until it does"
    return warn("national hub", detail, "check the hub and the network to it")


def check_database(config: CentralConfig) -> list[CheckResult]:
    """The DuckDB file opens read-only and its schema is one this build knows."""
    import duckdb

    from central.store.db import MIGRATIONS

    path = Path(config.storage.data_dir) / config.storage.duckdb_file
    known = len(MIGRATIONS)
    if not path.exists():
        return [ok("database", f"{path} does not exist yet: created at first start")]
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as err:
        if "lock" in str(err).lower() or "different configuration" in str(err):
            return [ok("database", f"{path} is open in a running central (its lock is held)")]
        return [fail("database", f"{path} does not open: {err}", "restore it from a backup")]
    try:
        row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    except duckdb.Error as err:
        return [fail("database", f"{path}: no schema version: {err}", "restore it from a backup")]
    finally:
        con.close()
    version = int(row[0]) if row else 0
    if version > known:
        detail = f"{path}: schema version {version} is newer than this build knows ({known})"
        return [fail("database", detail, "upgrade Varta to the version that wrote it")]
    if version < known:
        detail = f"{path}: schema version {version}, migrated to {known} at next start"
        return [ok("database", detail)]
    return [ok("database", f"{path}: schema version {version} is current")]


def check_disk(config: CentralConfig) -> list[CheckResult]:
    """The data directory's file system has at least ``ingest.min_free_mb`` free."""
    path = Path(config.storage.data_dir)
    existing = next(p for p in [path, *path.parents] if p.exists())
    minimum = config.ingest.min_free_mb << 20
    problem = free_disk_problem(existing, minimum)
    if problem:
        return [fail("disk", problem, f"free space in {existing}, or move storage.data_dir")]
    return [ok("disk", f"{existing}: at least {minimum >> 20} MiB free")]


def check_ingest_port(config: CentralConfig, timeout: float) -> list[CheckResult]:
    """The ingest endpoint is free to bind, or central's CURVE ingest answers there."""
    endpoint = config.ingest.bind
    parts = urlsplit(endpoint)
    if parts.scheme != "tcp" or parts.port is None:
        return [ok("ingest port", f"{endpoint}: not a TCP port; not checked")]
    host = parts.hostname or "0.0.0.0"
    host = "0.0.0.0" if host == "*" else host
    problem = _bind_problem(host, parts.port)
    if not problem:
        return [ok("ingest port", f"{endpoint}: free to bind")]
    if problem != "in use":
        return [fail("ingest port", f"{endpoint}: {problem}", "fix ingest.bind")]
    if _central_ingest_answers(config, timeout):
        detail = f"{endpoint}: central is serving (it refused a throwaway key, as it should)"
        return [ok("ingest port", detail)]
    detail = f"{endpoint}: in use, and not by a central holding {config.ingest.server_secret_key}"
    return [fail("ingest port", detail, "stop what holds the port, or change ingest.bind")]


def _bind_problem(host: str, port: int) -> str:
    """Empty when ``host:port`` can be bound now; ``in use`` or the error otherwise."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            return "in use" if err.errno == errno.EADDRINUSE else str(err)
    return ""


def _central_ingest_answers(config: CentralConfig, timeout: float) -> bool:
    """Whether a CURVE server with central's key is there and refuses an unknown key."""
    import time

    import zmq
    from zmq.utils.monitor import recv_monitor_message

    from shared import keys

    try:
        server = keys.load_pair(config.ingest.server_secret_key)
    except ConfigError:
        return False
    ctx: zmq.Context[Any] = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    public, secret = zmq.curve_keypair()
    sock.curve_serverkey, sock.curve_publickey, sock.curve_secretkey = (
        server.public,
        public,
        secret,
    )
    sock.setsockopt(zmq.LINGER, 0)
    monitor = sock.get_monitor_socket()
    deadline = time.monotonic() + timeout
    refused = False
    try:
        sock.connect(config.ingest.bind.replace("tcp://*", "tcp://127.0.0.1"))
        while (left := deadline - time.monotonic()) > 0 and monitor.poll(int(left * 1000) + 1):
            event = recv_monitor_message(monitor)["event"]
            if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
                refused = True
                break
            if event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                break  # a server that takes any key is not central's ingest
    finally:
        sock.disable_monitor()
        monitor.close(0)
        sock.close(0)
        ctx.term()
    return refused


def check_http_port(config: CentralConfig, timeout: float) -> list[CheckResult]:
    """The HTTP port is free to bind, or a central answers ``/api/v1/health`` there."""
    http = config.http
    where = f"{http.host}:{http.port}"
    problem = _bind_problem(http.host, http.port)
    if not problem:
        return [ok("http port", f"{where}: free to bind")]
    if problem != "in use":
        return [fail("http port", f"{where}: {problem}", "fix http.host / http.port")]
    host = "127.0.0.1" if http.host in ("0.0.0.0", "") else http.host
    status, body = _get(f"http://{host}:{http.port}/api/v1/health", timeout)
    if status == 200:
        return [ok("http port", f"{where}: central is serving and healthy")]
    if status == 503:
        checks = json.loads(body).get("checks", {})
        failing = "; ".join(f"{k}: {v}" for k, v in checks.items() if v != "ok")
        return [fail("http port", f"{where}: central serves but is failing: {failing}", failing)]
    detail = f"{where}: in use by something that is not central ({status or body})"
    return [fail("http port", detail, "stop what holds the port, or change http.port")]


def check_metrics_port(config: CentralConfig, timeout: float) -> list[CheckResult]:
    """The metrics port is free to bind, or serves Varta's metrics."""
    m = config.metrics
    where = f"{m.host}:{m.port}"
    problem = _bind_problem(m.host, m.port)
    if not problem:
        return [ok("metrics port", f"{where}: free to bind")]
    if problem == "in use":
        status, body = _get(f"http://{m.host}:{m.port}/metrics", timeout)
        if status == 200 and "varta_ingest" in body:
            return [ok("metrics port", f"{where}: central's metrics are served")]
        problem = f"in use by something that is not central's metrics ({status or body})"
    return [fail("metrics port", f"{where}: {problem}", "change metrics.port")]


def _get(url: str, timeout: float) -> tuple[int, str]:
    """``(status, body)``; status 0 with the error as body when nothing HTTP answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status), resp.read(1 << 20).decode(errors="replace")
    except urllib.error.HTTPError as err:
        return int(err.code), err.read(1 << 20).decode(errors="replace")
    except (OSError, ValueError) as err:
        return 0, str(err)
