"""Crop on match only: central fetches one face crop from the agent that still holds it.

A face image leaves the edge only on this path: when a face observation matched the
watchlist, central code calls :meth:`CropFetcher.fetch` (or :meth:`CropFetcher.submit`)
with the agent and the observation id; the agent answers from its crop ring buffer, or
"expired" when it no longer holds the crop. Messages: ``wire.CropRequest`` and
``wire.CropReply`` (the module docstring of ``shared/wire.py`` has the frame layout).

Threads: ZeroMQ sockets are not thread-safe and the ingest thread owns the ROUTER socket,
so callers never touch it. ``submit`` queues the request and wakes the ingest thread
through a pipe its poller watches; the ingest thread sends it (:meth:`pump`) to the
routing identity of the agent's latest hello, and hands each reply (:meth:`on_reply`)
back to the waiting caller's future. Every request ends in exactly one result:

* ``ok``: the JPEG, checked here first (size, JPEG frame header, dimensions, decodes);
* ``expired``: the agent answered that it no longer holds the crop;
* ``unreachable``: the agent is not connected, did not announce crop support (schema
  1.0), its connection is gone or its queue is full, it sent an unusable reply, or no
  answer came within the timeout.

A reply nobody waits for (unknown or late request id, another observation) is dropped and
counted; a reply that cannot be decoded is dropped, counted and logged.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Literal

from shared import wire

log = logging.getLogger(__name__)

CropStatus = Literal["ok", "expired", "unreachable"]
SendOutcome = Literal["sent", "gone", "busy"]  # busy: the agent's queue is full now
SendFn = Callable[[bytes, list[bytes]], SendOutcome]  # (routing id, frames)

_OBSERVATION_ID = re.compile(r"^[0-9a-fA-F-]{32,36}$")  # wire.EventId
# SOFn markers carry the frame size; C4 (DHT), C8 (JPG), CC (DAC) share the range but don't.
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


@dataclass(frozen=True)
class CropResult:
    """The outcome of one crop request: ``jpeg`` is set only when ``status`` is ``ok``."""

    status: CropStatus
    jpeg: bytes | None = None


UNREACHABLE = CropResult("unreachable")


@dataclass
class CropStats:
    """Counters since start (shown with the ingest stats)."""

    requests: int = 0
    ok: int = 0
    expired: int = 0
    unreachable: int = 0
    not_connected: int = 0  # unreachable: no connection / no crop support / send refused
    timeouts: int = 0  # unreachable: no answer in time
    replies_malformed: int = 0  # replies that could not be decoded or failed the checks
    replies_unknown: int = 0  # replies to no pending request (late, forged, duplicated)

    def as_dict(self) -> dict[str, int]:
        """JSON-friendly view."""
        return dict(vars(self))


@dataclass
class _Pending:
    agent_id: str
    observation_id: str
    future: Future[CropResult]
    deadline: float


@dataclass(frozen=True)
class _Peer:
    routing_id: bytes
    crops: bool  # the agent announced the "crops" feature


class CropFetcher:
    """Crop requests from any thread, carried by the ingest thread's ROUTER socket.

    Args:
        timeout_s: Default wait for an answer before ``unreachable``.
        max_bytes: Largest crop accepted (at most ``wire.MAX_CROP_BYTES``).
        max_side: Largest width or height accepted, in pixels (checked before decoding).
        clock: Monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        timeout_s: float = 5.0,
        max_bytes: int = wire.MAX_CROP_BYTES,
        max_side: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if timeout_s <= 0 or not 0 < max_bytes <= wire.MAX_CROP_BYTES or max_side < 1:
            raise ValueError(
                f"expected timeout_s > 0, 0 < max_bytes <= {wire.MAX_CROP_BYTES}, max_side >= 1;"
                f" got {timeout_s}, {max_bytes}, {max_side}"
            )
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_side = max_side
        self.stats = CropStats()
        self._clock = clock
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Pending] = {}
        self._outbox: deque[int] = deque()
        self._peers: dict[str, _Peer] = {}
        self._closed = False
        self._pump_thread: int | None = None  # the ingest thread, once it pumped
        # A socket pair, not a pipe: once closed, a late write fails instead of landing in
        # whatever file reuses the descriptor number.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    # -- callers (any thread) -------------------------------------------------------------

    def fetch(self, agent_id: str, observation_id: str, timeout: float | None = None) -> CropResult:
        """The crop of ``observation_id`` from ``agent_id``; blocks up to ``timeout``.

        Raises:
            ValueError: ``observation_id`` is not an observation (event) id.
            RuntimeError: Called on the ingest thread, which would wait for itself (use
                :meth:`submit` there, e.g. in an ``on_faces`` hook).
        """
        if threading.get_ident() == self._pump_thread:
            raise RuntimeError(
                "fetch() on the ingest thread would block the thread that carries the "
                "request; use submit() and a callback on its future"
            )
        future = self.submit(agent_id, observation_id, timeout)
        wait = self.timeout_s if timeout is None else timeout
        try:  # the ingest thread resolves it at the deadline; this margin covers a dead one
            return future.result(wait + 1.0)
        except FutureTimeout:
            self._resolve_future(future, UNREACHABLE, "timeouts")
            return future.result(0)

    def submit(
        self, agent_id: str, observation_id: str, timeout: float | None = None
    ) -> Future[CropResult]:
        """Queue a crop request; the future resolves to its :class:`CropResult`.

        Raises:
            ValueError: ``observation_id`` is not an observation (event) id.
        """
        if not _OBSERVATION_ID.match(observation_id):
            raise ValueError(f"expected an observation id (UUID), got {observation_id!r}")
        future: Future[CropResult] = Future()
        deadline = self._clock() + (self.timeout_s if timeout is None else timeout)
        with self._lock:
            self.stats.requests += 1
            peer = self._peers.get(agent_id)
            if self._closed or peer is None or not peer.crops:
                self._count(UNREACHABLE, "not_connected")
                future.set_result(UNREACHABLE)
                return future
            request_id = next(self._ids)
            self._pending[request_id] = _Pending(agent_id, observation_id, future, deadline)
            self._outbox.append(request_id)
        with contextlib.suppress(OSError):  # full: wake-ups are pending; closed: stopping
            self._wake_w.send(b"\0")
        return future

    # -- the ingest thread ----------------------------------------------------------------

    @property
    def wake_fd(self) -> int:
        """Readable when requests are queued: the ingest thread polls it with its socket."""
        return self._wake_r.fileno()

    def agent_hello(self, agent_id: str, routing_id: bytes, features: Sequence[str]) -> None:
        """An agent (re)connected: requests go to this connection from now on."""
        with self._lock:
            self._peers[agent_id] = _Peer(routing_id, wire.FEATURE_CROPS in features)

    def pump(self, send: SendFn) -> None:
        """Send the queued requests and resolve the overdue ones (ingest thread only)."""
        self._pump_thread = threading.get_ident()
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        with self._lock:
            queued = [(rid, self._pending.get(rid)) for rid in self._outbox]
            self._outbox.clear()
            peers = dict(self._peers)
        for rid, pending in queued:
            if pending is None:
                continue  # resolved meanwhile (caller gave up)
            peer = peers.get(pending.agent_id)
            request = wire.CropRequest(request_id=rid, observation_id=pending.observation_id)
            outcome: SendOutcome = "gone"
            if peer is not None and peer.crops:
                outcome = send(peer.routing_id, [wire.encode(request)])
            if outcome == "gone":
                self._forget_peer(pending.agent_id, peer)
            if outcome != "sent":
                self._resolve(rid, UNREACHABLE, "not_connected")
        now = self._clock()
        with self._lock:
            overdue = [rid for rid, p in self._pending.items() if p.deadline <= now]
        for rid in overdue:
            self._resolve(rid, UNREACHABLE, "timeouts")

    def on_reply(self, agent_id: str, header: bytes, frames: Sequence[wire.Frame]) -> None:
        """A ``crop_reply`` message from ``agent_id`` (the id bound to its CURVE key)."""
        try:
            reply = wire.decode(header)
        except wire.WireError as err:
            self._malformed(agent_id, str(err))
            return
        if not isinstance(reply, wire.CropReply) or reply.agent_id != agent_id:
            self._malformed(agent_id, f"expected a crop reply of {agent_id!r}, got {reply!r}"[:200])
            return
        with self._lock:
            pending = self._pending.get(reply.request_id)
            if (
                pending is None
                or pending.agent_id != agent_id
                or pending.observation_id != reply.observation_id
            ):
                self.stats.replies_unknown += 1
                return
        if reply.status == "expired":
            problem = f"an expired reply has {len(frames)} frames, expected none" if frames else ""
            result = CropResult("expired")
        else:
            jpeg = bytes(frames[0]) if len(frames) == 1 else b""
            problem = (
                f"an ok reply has {len(frames)} frames, expected one JPEG"
                if len(frames) != 1
                else jpeg_problem(jpeg, self.max_bytes, self.max_side)
            )
            result = CropResult("ok", jpeg)
        if problem:
            self._malformed(agent_id, f"request {reply.request_id}: {problem}")
            self._resolve(reply.request_id, UNREACHABLE, "")
        else:
            self._resolve(reply.request_id, result, "")

    def close(self) -> None:
        """Ingest stopped: every waiting request is unreachable, and so is every new one."""
        with self._lock:
            self._closed = True
            waiting = list(self._pending)
        for rid in waiting:
            self._resolve(rid, UNREACHABLE, "not_connected")
        self._wake_r.close()
        self._wake_w.close()

    # -- internals ------------------------------------------------------------------------

    def _forget_peer(self, agent_id: str, peer: _Peer | None) -> None:
        """The connection is gone: fail fast until the agent's next hello."""
        with self._lock:
            if peer is not None and self._peers.get(agent_id) == peer:
                del self._peers[agent_id]

    def _resolve(self, request_id: int, result: CropResult, reason: str) -> None:
        with self._lock:
            pending = self._pending.pop(request_id, None)
            if pending is None:
                return
            self._count(result, reason)
        pending.future.set_result(result)

    def _resolve_future(self, future: Future[CropResult], result: CropResult, reason: str) -> None:
        with self._lock:
            rid = next((r for r, p in self._pending.items() if p.future is future), None)
        if rid is not None:
            self._resolve(rid, result, reason)

    def _count(self, result: CropResult, reason: str) -> None:
        """Count a result (lock held)."""
        setattr(self.stats, result.status, getattr(self.stats, result.status) + 1)
        if reason:
            setattr(self.stats, reason, getattr(self.stats, reason) + 1)

    def _malformed(self, agent_id: str, why: str) -> None:
        with self._lock:
            self.stats.replies_malformed += 1
        log.warning("unusable crop reply from agent %s: %s", agent_id, why)


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from a JPEG's frame header, or None when there is none."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        if marker in _SOF_MARKERS:
            if pos + 9 > len(data):
                return None
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        if marker == 0xDA:  # scan data before any frame header
            return None
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
    return None


def jpeg_problem(data: bytes, max_bytes: int, max_side: int) -> str:
    """Why ``data`` is not an acceptable face crop, or empty.

    The size is read from the frame header before decoding, so a small file that claims a
    huge image never makes central allocate it.
    """
    if len(data) > max_bytes:
        return f"crop is {len(data)} bytes, at most {max_bytes} accepted"
    if data[:2] != b"\xff\xd8":
        return f"crop is not a JPEG (starts {data[:4].hex()}, expected ffd8)"
    size = jpeg_size(data)
    if size is None:
        return "crop has no JPEG frame header"
    width, height = size
    if not (0 < width <= max_side and 0 < height <= max_side):
        return f"crop is {width}x{height} pixels, at most {max_side} a side accepted"
    decoded = _decode(data)
    if decoded is None or decoded[:2] != (height, width):
        return f"crop does not decode as the {width}x{height} JPEG it claims to be"
    return ""


def _decode(data: bytes) -> tuple[int, ...] | None:
    """The decoded image's shape, or None when OpenCV cannot decode it."""
    import cv2
    import numpy as np

    image: Any = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else tuple(image.shape)
