"""Webhook delivery: alert changes POSTed to configured endpoints, in order, durably.

The alert writer queues one delivery per accepting endpoint in the same transaction as the
change itself (table ``webhook_queue``), so nothing is lost when central or the endpoint
is down. One sender thread per endpoint sends the oldest undelivered change, waits for a
2xx, marks it delivered and moves on; on failure it retries the same delivery with
exponential backoff (head-of-line, so order is kept). An endpoint is never disabled: after
``failing_after`` consecutive failures a ``webhook_failing`` alert is raised, and it is
resolved by the first success.

Each request carries::

    Content-Type: application/json
    X-Varta-Timestamp: <UNIX seconds>
    X-Varta-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body, keyed by the secret>
    X-Varta-Delivery: <delivery id>        X-Varta-Seq: <change seq>

An endpoint with ``batch_max`` above one (the built-in ``national-hub`` endpoint, see
``central/national/forward.py``) gets up to that many queued changes in one request, the
body made by the sender's ``encode``; ``X-Varta-Delivery`` then names the first delivery
and ``X-Varta-Deliveries`` how many the request holds, and all of them are marked
delivered (or failed) together. Its extra ``headers`` (a bearer token) go with every
request.

Redirects are never followed: a 3xx answer is a failed delivery (a signed alert must not be
re-sent to wherever an endpoint, or whoever took it over, points). The endpoint's URL may
carry a secret path or query, so no error message, log line or alert names it; the
endpoint's configured name does.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from central.alerts.engine import AlertEngine
from central.alerts.model import WebhookFilter
from central.alerts.repository import AlertRepository, Delivery
from central.store.db import Database

log = logging.getLogger(__name__)


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Turn every 3xx into an ``HTTPError`` instead of following it."""

    def redirect_request(self, *_: object, **__: object) -> None:
        return None


@dataclass(frozen=True)
class Endpoint:
    """A webhook endpoint ready to use (secret already read).

    Attributes:
        filter: Name and which alerts it receives.
        url: Where to POST.
        secret: HMAC key.
        timeout_s: Per-request timeout.
        backoff_initial_s: First retry delay.
        backoff_max_s: Longest retry delay.
        failing_after: Consecutive failures that raise a ``webhook_failing`` alert.
        batch_max: Queued changes sent in one request, at most.
        headers: Extra request headers (e.g. ``Authorization``).
    """

    filter: WebhookFilter
    url: str
    secret: bytes
    timeout_s: float = 5.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    failing_after: int = 5
    batch_max: int = 1
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """The endpoint's name."""
        return self.filter.name


Encode = Callable[[Sequence[Delivery]], bytes]
"""Makes one request body of one or more queued deliveries, in queue order."""


def encode_json_array(deliveries: Sequence[Delivery]) -> bytes:
    """The default body: one change as it is, several as a JSON array of changes."""
    if len(deliveries) == 1:
        return deliveries[0].body
    return b"[" + b",".join(d.body for d in deliveries) + b"]"


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value for a body sent at ``timestamp``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


@dataclass
class SenderStats:
    """Counters of one endpoint since start."""

    delivered: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_error: str = ""


@dataclass
class WebhookSender:
    """The sender thread of one endpoint."""

    endpoint: Endpoint
    db: Database
    engine: AlertEngine
    clock: Callable[[], float] = time.time
    stats: SenderStats = field(default_factory=SenderStats)
    encode: Encode = encode_json_array

    def __post_init__(self) -> None:
        self._repo = AlertRepository()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._opener = urllib.request.build_opener(_RefuseRedirects)

    def start(self) -> None:
        """Start sending."""
        self._stop.clear()
        name = f"webhook-{self.endpoint.name}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        """Whether the thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Stop after the request in hand."""
        self._stop.set()
        self.engine.feed.kick()
        if self._thread is not None:
            self._thread.join(self.endpoint.timeout_s + 2)
            self._thread = None

    def _run(self) -> None:
        backoff = self.endpoint.backoff_initial_s
        size = self.endpoint.batch_max
        while not self._stop.is_set():
            head = self.engine.feed.head
            with self.db.reader() as con:
                batch = self._repo.pending(con, self.endpoint.name, max(100, size))
            if not batch:
                self.engine.feed.wait(head, 1.0)
                continue
            for start in range(0, len(batch), size):
                if self._stop.is_set():
                    return
                if not self._deliver(batch[start : start + size]):
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, self.endpoint.backoff_max_s)
                    break
                backoff = self.endpoint.backoff_initial_s

    def _deliver(self, group: Sequence[Delivery]) -> bool:
        error = self._post(group)
        name = self.endpoint.name
        ids = [d.delivery_id for d in group]
        if error is None:
            now = self.clock()
            self.db.writer.call(lambda con: self._repo.delivered(con, ids, now))
            self.stats.delivered += len(group)
            if self.stats.consecutive_failures:
                log.info("webhook %s delivers again", name)
            self.stats.consecutive_failures = 0
            if self.engine.has_open("webhook_failing", name):
                self.engine.close_system("webhook_failing", name, "endpoint accepts deliveries")
            return True
        self.db.writer.call(lambda con: self._repo.failed(con, ids, error))
        self.stats.failures += 1
        self.stats.consecutive_failures += 1
        self.stats.last_error = error
        log.warning("webhook %s delivery %d (%d in the request) failed: %s",
                    name, ids[0], len(ids), error)  # fmt: skip
        failing = self.stats.consecutive_failures >= self.endpoint.failing_after
        if failing and not self.engine.has_open("webhook_failing", name):
            self.engine.raise_system(
                "webhook_failing",
                name,
                f"webhook {name} failing: {self.stats.consecutive_failures} attempts, {error}",
                {"endpoint": name, "last_error": error},
                2,
            )
        return False

    def _post(self, group: Sequence[Delivery]) -> str | None:
        """POST deliveries in one request; None on a 2xx answer, else what went wrong."""
        timestamp = f"{self.clock():.3f}"
        body = self.encode(group)
        headers = {
            **self.endpoint.headers,
            "Content-Type": "application/json",
            "X-Varta-Timestamp": timestamp,
            "X-Varta-Signature": sign(self.endpoint.secret, timestamp, body),
            "X-Varta-Delivery": str(group[0].delivery_id),
            "X-Varta-Seq": str(group[0].seq),
        }
        if len(group) > 1:
            headers["X-Varta-Deliveries"] = str(len(group))
        request = urllib.request.Request(
            self.endpoint.url, data=body, method="POST", headers=headers
        )
        try:
            with self._opener.open(request, timeout=self.endpoint.timeout_s) as resp:
                status = int(resp.status)
        except urllib.error.HTTPError as err:
            status = err.code
            err.close()
        except (urllib.error.URLError, OSError) as err:
            return f"{type(err).__name__}: {getattr(err, 'reason', err)}"
        if 300 <= status < 400:
            return f"HTTP {status} (a redirect; redirects are not followed)"
        return None if 200 <= status < 300 else f"HTTP {status}"
