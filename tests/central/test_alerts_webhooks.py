"""Webhooks against a real local HTTP server that is stopped and started again: deliveries
queue durably while it is down, a webhook_failing alert is raised, and everything arrives
in order, signed, once it is back."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from central.alerts.engine import AlertEngine
from central.alerts.model import WebhookFilter
from central.alerts.runtime import read_secret
from central.alerts.webhooks import Endpoint, WebhookSender
from central.config import WebhookEndpointConfig
from central.store.db import Database
from central.watchlist.repository import WatchlistRepository
from central.watchlist.service import WatchlistService
from shared.errors import ConfigError
from tests.central.alerts_helpers import incoming, write_wanted_list
from tests.harness import free_port, wait_for

SECRET = b"s3cret"


class Receiver:
    """A real http.server on 127.0.0.1 that records what it is sent."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: list[tuple[dict[str, str], bytes]] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(free_port())
    yield r
    r.stop()


def _setup(
    tmp_path: Path, port: int, categories: frozenset[str] = frozenset()
) -> tuple[Database, AlertEngine, WebhookSender]:
    write_wanted_list(tmp_path / "c.duckdb")
    db = Database(tmp_path / "c.duckdb")
    hook = Endpoint(
        filter=WebhookFilter(name="police", categories=categories),
        url=f"http://127.0.0.1:{port}/hook",
        secret=SECRET,
        timeout_s=1.0,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        failing_after=3,
    )
    engine = AlertEngine(db, WatchlistService(WatchlistRepository(db)),
                         webhooks=[hook.filter])  # fmt: skip
    sender = WebhookSender(hook, db, engine)
    engine.start()
    sender.start()
    return db, engine, sender


def _verify(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    ts = headers["X-Varta-Timestamp"]
    mac = hmac.new(SECRET, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert headers["X-Varta-Signature"] == f"sha256={mac}"
    change: dict[str, Any] = json.loads(body)
    assert headers["X-Varta-Seq"] == str(change["seq"])
    return change


def test_down_receiver_queues_alerts_then_gets_all_in_order(
    tmp_path: Path, receiver: Receiver
) -> None:
    db, engine, sender = _setup(tmp_path, receiver.port)
    try:
        receiver.start()
        engine.on_commit([incoming("AA7681TE")])
        assert wait_for(lambda: len(receiver.received) == 1, 5, 0.02)
        receiver.stop()
        for i, plate in enumerate(["BC1234HH", "KA0001AB", "AA7681TE"]):
            engine.on_commit([incoming(plate, camera=f"cam-{i + 2}", seed=i + 10)])
        # Three failures in a row raise a webhook_failing alert; sending goes on.
        assert wait_for(lambda: engine.has_open("webhook_failing", "police"), 30, 0.05)
        with db.reader() as con:
            assert engine.repository.queue_depth(con)["police"] >= 3
        receiver.start()
        assert wait_for(lambda: not engine.has_open("webhook_failing", "police"), 30, 0.05)
        head = engine.feed.head
        assert wait_for(lambda: len(receiver.received) == head, 30, 0.05), receiver.received
        changes = [_verify(h, b) for h, b in receiver.received]
        assert [c["seq"] for c in changes] == list(range(1, head + 1))
        kinds = [(c["alert"]["kind"], c["change"]) for c in changes]
        assert kinds[:4] == [("watchlist", "created")] * 3 + [("watchlist", "sighted")]
        assert ("webhook_failing", "created") in kinds
        assert kinds[-1] == ("webhook_failing", "transition")
        assert changes[-1]["alert"]["state"] == "resolved"
        assert sender.stats.failures >= 3

        def queue_depth() -> dict[str, int]:
            with db.reader() as con:
                return dict(engine.repository.queue_depth(con))

        # a delivered row leaves the queue just after the receiver has it
        assert wait_for(lambda: queue_depth() == {}, 30, 0.05), queue_depth()
    finally:
        sender.stop()
        engine.stop()
        db.close()


def test_filter_by_category(tmp_path: Path, receiver: Receiver) -> None:
    receiver.start()
    db, engine, sender = _setup(tmp_path, receiver.port, categories=frozenset({"stolen"}))
    try:
        engine.on_commit([incoming("KA0001AB", seed=3), incoming("AA7681TE", seed=4)])
        assert wait_for(lambda: len(receiver.received) == 1, 5, 0.02)
        [(headers, body)] = receiver.received
        assert _verify(headers, body)["alert"]["category"] == "stolen"
    finally:
        sender.stop()
        engine.stop()
        db.close()


def test_queue_survives_central_restart(tmp_path: Path, receiver: Receiver) -> None:
    db, engine, sender = _setup(tmp_path, receiver.port)  # receiver down from the start
    engine.on_commit([incoming("AA7681TE"), incoming("BC1234HH", seed=2)])
    assert wait_for(lambda: sender.stats.failures >= 1, 5, 0.02)
    sender.stop()
    engine.stop()
    db.close()
    receiver.start()
    db = Database(tmp_path / "c.duckdb")
    engine = AlertEngine(db, None, webhooks=[sender.endpoint.filter])
    sender = WebhookSender(sender.endpoint, db, engine)
    engine.start()
    sender.start()
    try:
        assert wait_for(lambda: len(receiver.received) == 2, 10, 0.05)
        assert [_verify(h, b)["seq"] for h, b in receiver.received] == [1, 2]
    finally:
        sender.stop()
        engine.stop()
        db.close()


SECRETS = [
    ({"secret_env": "VARTA_TEST_HOOK"}, {"VARTA_TEST_HOOK": "abc"}, b"abc", None),
    ({"secret_env": "VARTA_TEST_HOOK"}, {}, None, "VARTA_TEST_HOOK"),
    ({}, {}, None, "expected secret_env or secret_file"),
    ({"secret_file": "missing.key"}, {}, None, "cannot read"),
    ({"secret_file": "hook.key"}, {}, b"from-file", None),
]


@pytest.mark.parametrize(("fields", "env", "secret", "error"), SECRETS)
def test_webhook_secret_from_env_or_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fields: dict[str, str],
    env: dict[str, str],
    secret: bytes | None,
    error: str | None,
) -> None:
    (tmp_path / "hook.key").write_text("from-file\n")
    monkeypatch.delenv("VARTA_TEST_HOOK", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if "secret_file" in fields:
        fields = {**fields, "secret_file": str(tmp_path / fields["secret_file"])}
    cfg = WebhookEndpointConfig(name="h", url="http://127.0.0.1:9/x", **fields)
    if error is None:
        assert read_secret(cfg) == secret
    else:
        with pytest.raises(ConfigError, match=error):
            read_secret(cfg)


class Redirector:
    """A real http.server on 127.0.0.1 that answers every POST with ``status`` and a Location."""

    def __init__(self, status: int, location: str) -> None:
        self.posts = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts += 1
                self.send_response(status)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST  # a followed 302 would come back as a GET

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_failed_deliveries_never_followed(
    tmp_path: Path, receiver: Receiver, status: int
) -> None:
    receiver.start()
    redirector = Redirector(status, f"http://127.0.0.1:{receiver.port}/elsewhere")
    db, engine, sender = _setup(tmp_path, redirector.port)
    try:
        engine.on_commit([incoming("AA7681TE")])
        assert wait_for(lambda: engine.has_open("webhook_failing", "police"), 10, 0.05)
        assert redirector.posts >= 3 and receiver.received == []
        assert sender.stats.delivered == 0
        error = f"HTTP {status} (a redirect; redirects are not followed)"
        assert sender.stats.last_error == error
        with db.reader() as con:
            assert engine.repository.queue_depth(con)["police"] >= 1  # still queued, for later
            rows = con.execute("SELECT body FROM alert_changes").fetchall()
        assert rows and not any(f":{redirector.port}" in body for (body,) in rows)
        failing = [json.loads(b)["alert"] for (b,) in rows]
        details = next(a["details"] for a in failing if a["kind"] == "webhook_failing")
        assert details == {"endpoint": "police", "last_error": error}
    finally:
        sender.stop()
        engine.stop()
        db.close()
        redirector.stop()
