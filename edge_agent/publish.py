"""Forward spooled sightings to central over CURVE-encrypted ZeroMQ, with application acks.

The publisher owns one DEALER socket. It announces itself with an ``AgentHello``, then
sends batches read from the spool, keeping at most ``window`` batches in flight. Records
leave the spool only when central acknowledges the batch that carried them.

A lost link is noticed from the connection itself: a socket monitor reports the disconnect
(the kernel drops a connection whose sent data stays unacknowledged for 6 s, ``TCP_MAXRT``,
and probes an idle one with TCP keepalives). ZMTP heartbeats are not used: a ZMTP PING
arriving while central's per-connection queue is full makes libzmq 4.3 abort central
(``Assertion failed: !_io_error (stream_engine_base.cpp)``, zeromq/libzmq#4364, #3937),
which 60 s of 20 % packet loss did (docs/faults.md). Then the socket is dropped, the read
position rewinds to the oldest unacknowledged record and everything in flight is sent
again after a backoff; central de-duplicates by event id. ``ack_timeout`` is only a last
resort for a peer that is connected but never answers: it must be longer than central's
slowest commit, or a busy central would be flooded with resends.

Central's ``CropRequest`` messages arrive on the same socket, between acks. The hello
announces the ``crops`` feature; each request is answered at once from the ``crops``
lookup (the face crop ring buffer, in memory): the JPEG when it holds the observation's
crop, ``expired`` otherwise (always, on an agent without face cameras). This reply is the
only path by which a face image leaves the edge.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import zmq

from edge_agent.spool import Spool
from shared import wire
from shared.keys import KeyPair

log = logging.getLogger(__name__)

CropLookup = Callable[[str], bytes | None]  # observation id -> JPEG, None once expired
_COUNT = struct.Struct("<H")
_LEN = struct.Struct("<I")


def pack_record(item: bytes, frames: Sequence[bytes]) -> bytes:
    """Spool record: frame count, item length, frame lengths, item bytes, frame bytes."""
    head = [_COUNT.pack(len(frames)), _LEN.pack(len(item))]
    head.extend(_LEN.pack(len(f)) for f in frames)
    return b"".join([*head, item, *frames])


def unpack_record(record: bytes) -> tuple[memoryview, list[memoryview]]:
    """Inverse of :func:`pack_record`, without copying the bytes."""
    (count,) = _COUNT.unpack_from(record, 0)
    lengths = struct.unpack_from(f"<{count + 1}I", record, _COUNT.size)
    view = memoryview(record)
    pos = _COUNT.size + (count + 1) * _LEN.size
    parts = []
    for length in lengths:
        parts.append(view[pos : pos + length])
        pos += length
    return parts[0], parts[1:]


class _OutBatch(msgspec.Struct, tag_field="kind", tag="batch", kw_only=True):
    """Encode-side twin of ``wire.SightingBatch`` that embeds pre-encoded items as-is."""

    schema: str = wire.SCHEMA
    agent_id: str
    batch_id: int
    items: list[msgspec.Raw]
    sent_at: float


@dataclass(frozen=True)
class LinkSettings:
    """How the publisher talks to central."""

    endpoint: str
    server_public_key: bytes
    keys: KeyPair
    batch_max_items: int = 500
    batch_max_bytes: int = 4 << 20
    window: int = 4
    ack_timeout: float = 30.0
    heartbeat_interval: float = 5.0
    backoff_min: float = 0.2
    backoff_max: float = 30.0


@dataclass
class PublisherStats:
    """Counters the agent reports and tests read."""

    batches_sent: int = 0
    records_acked: int = 0
    dead_letters: int = 0
    dead_letter_errors: int = 0  # refused records the disk could not take yet (retried)
    reconnects: int = 0
    connected: bool = False
    crop_requests: int = 0
    crops_served: int = 0
    crops_expired: int = 0
    crop_replies_dropped: int = 0  # the socket could not take the reply now
    last_ack_at: float | None = None  # monotonic time of the last batch ack
    in_flight: int = 0  # batches sent and not acknowledged yet


@dataclass
class _InFlight:
    seqs: list[int]
    sent_at: float


class Publisher:
    """Sends the spool's records to central until stopped."""

    def __init__(
        self,
        agent_id: str,
        spool: Spool,
        link: LinkSettings,
        hello: Callable[[], wire.AgentHello],
        heartbeat: Callable[[], wire.Heartbeat],
        dead_letter_dir: Path,
        on_ack: Callable[[list[int], float], None] | None = None,
        crops: CropLookup | None = None,
    ) -> None:
        self._agent_id = agent_id
        self._crops = crops
        self._spool = spool
        self._link = link
        self._hello = hello
        self._heartbeat = heartbeat
        self._dead_dir = dead_letter_dir
        self._on_ack = on_ack
        self.stats = PublisherStats()
        self._ctx: zmq.Context[Any] = zmq.Context.instance()
        self._sock: zmq.Socket[bytes] | None = None
        self._monitor: zmq.Socket[bytes] | None = None
        self._in_flight: dict[int, _InFlight] = {}
        self._unwritten_dead: dict[int, str] = {}  # refused seq -> reason, kept in the spool
        self._dead_retry_at = 0.0
        self._cursor = 0
        self._next_id = int(time.time() * 1000) << 8  # unique across restarts
        self._backoff = link.backoff_min
        self._last_heartbeat = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Idle, the loop sleeps on the socket (a crop request wakes it) and on this pair,
        # which :meth:`wake` writes when records were spooled.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def wake(self) -> None:
        """Records were spooled: end an idle wait now (any thread)."""
        with contextlib.suppress(OSError):  # full: a wake-up is pending; closed: stopped
            self._wake_w.send(b"\0")

    def start(self) -> None:
        """Run in a background thread."""
        self._thread = threading.Thread(target=self.run, name="publisher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the loop to end and wait for it."""
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._thread is None or not self._thread.is_alive():
            self._wake_r.close()
            self._wake_w.close()

    def run(self) -> None:
        """The publish loop: connect, send, collect acks, recover from silence."""
        try:
            while not self._stop.is_set():
                if self._sock is None and not self._connect():
                    self._sleep_backoff()
                    continue
                self._maybe_heartbeat()
                self._retry_dead_letters()
                self._fill_window()
                self._receive()
                if self._disconnected():
                    self._drop_connection("connection to central lost")
                elif self._timed_out():
                    self._drop_connection(f"no ack within {self._link.ack_timeout:.1f} s")
        finally:
            self._close_socket()

    # -- connection -----------------------------------------------------------------------

    def _connect(self) -> bool:
        sock = self._ctx.socket(zmq.DEALER)
        sock.curve_serverkey = self._link.server_public_key
        sock.curve_publickey = self._link.keys.public
        sock.curve_secretkey = self._link.keys.secret
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        # Dead peer detection by the kernel, not ZMTP PINGs (see the module docstring).
        sock.setsockopt(zmq.TCP_MAXRT, 6000)
        sock.setsockopt(zmq.TCP_KEEPALIVE, 1)
        sock.setsockopt(zmq.TCP_KEEPALIVE_IDLE, 2)
        sock.setsockopt(zmq.TCP_KEEPALIVE_INTVL, 1)
        sock.setsockopt(zmq.TCP_KEEPALIVE_CNT, 4)
        # A TCP connect begun while the link is cut would otherwise wait out the kernel's
        # SYN backoff (up to a minute or two) after the link is back; this retries afresh.
        sock.setsockopt(zmq.CONNECT_TIMEOUT, 3000)
        self._monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        sock.connect(self._link.endpoint)
        self._sock = sock
        hello = self._hello()
        msg_id = self._new_id()
        features = sorted({*hello.features, wire.FEATURE_CROPS})
        hello = msgspec.structs.replace(hello, msg_id=msg_id, features=features)
        # With IMMEDIATE set, the socket is writable only once the CURVE handshake is done.
        writable = sock.poll(int(self._link.ack_timeout * 1000), zmq.POLLOUT)
        if not writable or not self._send([wire.encode(hello)]) or not self._await_ack(msg_id):
            self._drop_connection("central did not answer the hello")
            return False
        log.info("connected to central at %s", self._link.endpoint)
        self.stats.connected = True
        self._backoff = self._link.backoff_min
        self._cursor = self._spool.floor - 1
        return True

    def _await_ack(self, ref: int) -> bool:
        deadline = time.monotonic() + self._link.ack_timeout
        while (left := deadline - time.monotonic()) > 0 and not self._stop.is_set():
            assert self._sock is not None
            if not self._sock.poll(int(min(left, 0.2) * 1000)):
                continue
            ack = self._recv_message()
            if isinstance(ack, wire.Ack) and ack.ref == ref:
                return ack.status == "ok"
        return False

    def _drop_connection(self, why: str) -> None:
        if self._sock is not None:
            log.warning("central link down: %s; reconnecting", why)
            self.stats.reconnects += 1
        self._close_socket()
        self._in_flight.clear()
        self.stats.in_flight = 0
        self._cursor = self._spool.floor - 1
        self.stats.connected = False
        self._sleep_backoff()

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.disable_monitor()
            self._sock.close(linger=0)
            self._sock = None
        if self._monitor is not None:
            self._monitor.close(linger=0)
            self._monitor = None

    def _disconnected(self) -> bool:
        """True once the monitor reported that the established connection went away."""
        if self._monitor is None or not self._monitor.poll(0):
            return False
        self._monitor.recv_multipart()
        return True

    def _sleep_backoff(self) -> None:
        delay = self._backoff * random.uniform(0.8, 1.2)
        self._backoff = min(self._backoff * 2, self._link.backoff_max)
        self._stop.wait(delay)

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _send(self, frames: list[bytes | memoryview]) -> bool:
        assert self._sock is not None
        try:
            self._sock.send_multipart(frames, flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return False
        return True

    # -- sending --------------------------------------------------------------------------

    def _maybe_heartbeat(self) -> None:
        now = time.monotonic()
        if now - self._last_heartbeat >= self._link.heartbeat_interval:
            self._last_heartbeat = now
            self._send([wire.encode(self._heartbeat())])

    def _fill_window(self) -> None:
        while len(self._in_flight) < self._link.window:
            records = self._spool.read(
                self._cursor, self._link.batch_max_items, self._link.batch_max_bytes
            )
            if not records:
                if not self._in_flight:
                    self._idle_wait()
                return
            batch_id = self._new_id()
            items: list[msgspec.Raw] = []
            frames: list[memoryview] = []
            for _seq, record in records:
                item, thumbs = unpack_record(record)
                items.append(msgspec.Raw(item))
                frames.extend(thumbs)
            header = msgspec.msgpack.encode(
                _OutBatch(
                    agent_id=self._agent_id, batch_id=batch_id, items=items, sent_at=time.time()
                )
            )
            if not self._send([header, *frames]):
                return
            self._in_flight[batch_id] = _InFlight([s for s, _ in records], time.monotonic())
            self.stats.in_flight = len(self._in_flight)
            self._cursor = records[-1][0]
            self.stats.batches_sent += 1

    def _idle_wait(self) -> None:
        """Nothing to send or await: sleep until records are spooled, central writes (a
        crop request) or 0.2 s pass (a writer that does not call :meth:`wake`)."""
        assert self._sock is not None
        poller = zmq.Poller()
        poller.register(self._sock, zmq.POLLIN)
        poller.register(self._wake_r, zmq.POLLIN)
        poller.poll(200)
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass

    def _receive(self) -> None:
        """Take acks and crop requests as they come (waits briefly only for acks)."""
        if self._sock is None or not self._sock.poll(50 if self._in_flight else 0):
            return
        while self._sock.poll(0):
            msg = self._recv_message()
            if isinstance(msg, wire.Ack):
                self._apply_ack(msg)
            elif isinstance(msg, wire.CropRequest):
                self._answer_crop(msg)

    def _recv_message(self) -> wire.Message | None:
        assert self._sock is not None
        frames = self._sock.recv_multipart()
        try:
            return wire.decode(frames[0])
        except wire.WireError as err:
            log.error("unreadable message from central: %s", err)
            return None

    def _answer_crop(self, request: wire.CropRequest) -> None:
        """Answer from the lookup without waiting: the JPEG, or ``expired``."""
        self.stats.crop_requests += 1
        jpeg = self._crops(request.observation_id) if self._crops is not None else None
        if jpeg is not None and len(jpeg) > wire.MAX_CROP_BYTES:
            log.error(
                "face crop %s is %d bytes, over the wire's %d: answered as expired",
                request.observation_id,
                len(jpeg),
                wire.MAX_CROP_BYTES,
            )
            jpeg = None
        reply = wire.CropReply(
            agent_id=self._agent_id,
            request_id=request.request_id,
            observation_id=request.observation_id,
            status="ok" if jpeg is not None else "expired",
        )
        if not self._send([wire.encode(reply), *([jpeg] if jpeg is not None else [])]):
            self.stats.crop_replies_dropped += 1  # central times the request out
        elif jpeg is not None:
            self.stats.crops_served += 1
        else:
            self.stats.crops_expired += 1

    def _apply_ack(self, ack: wire.Ack) -> None:
        flight = self._in_flight.pop(ack.ref, None)
        if flight is None:
            return
        self.stats.in_flight = len(self._in_flight)
        self.stats.last_ack_at = time.monotonic()
        refused: dict[int, str] = {}
        if ack.status == "rejected":
            refused = dict.fromkeys(flight.seqs, ack.error)
        elif ack.rejected:
            refused = {
                flight.seqs[r.index]: r.reason for r in ack.rejected if r.index < len(flight.seqs)
            }
        unwritten = self._dead_letter(refused)
        # A refused record leaves the spool only once its dead letter is on disk.
        self._spool.ack([s for s in flight.seqs if s not in unwritten])
        self.stats.records_acked += len(flight.seqs)
        if self._on_ack is not None:
            self._on_ack(flight.seqs, flight.sent_at)

    def _dead_letter(self, refused: dict[int, str]) -> set[int]:
        """Keep records central refused for good, with the reason, and count them.

        Returns the seqs whose files the disk refused (full): they stay in the spool and
        are written by :meth:`_retry_dead_letters` once there is room.
        """
        if not refused:
            return set()
        first, last = min(refused), max(refused)
        records = dict(self._spool.read(first - 1, last - first + 1, 1 << 62))
        unwritten: set[int] = set()
        for seq, reason in refused.items():
            record = records.get(seq)
            if record is None:
                continue  # evicted meanwhile
            try:
                _write_dead_letter(self._dead_dir, seq, record, reason)
            except OSError as err:
                if not self._unwritten_dead:
                    log.error("cannot keep refused record %d in %s: %s", seq, self._dead_dir, err)
                self.stats.dead_letter_errors += 1
                self._unwritten_dead[seq] = reason
                unwritten.add(seq)
                continue
            self._unwritten_dead.pop(seq, None)
            self.stats.dead_letters += 1
        if len(unwritten) < len(refused):
            log.error(
                "central refused %d record(s) for good: %s (kept in %s)",
                len(refused) - len(unwritten),
                next(iter(refused.values())),
                self._dead_dir,
            )
        return unwritten

    def _retry_dead_letters(self) -> None:
        """Write the dead letters a full disk refused, then let their records go."""
        if not self._unwritten_dead or time.monotonic() < self._dead_retry_at:
            return
        self._dead_retry_at = time.monotonic() + 1.0
        pending = dict(self._unwritten_dead)
        unwritten = self._dead_letter(pending)
        self._spool.ack([s for s in pending if s not in unwritten])

    def _timed_out(self) -> bool:
        if not self._in_flight:
            return False
        oldest = min(f.sent_at for f in self._in_flight.values())
        return time.monotonic() - oldest > self._link.ack_timeout


def _write_dead_letter(directory: Path, seq: int, record: bytes, reason: str) -> None:
    """``<seq>.rec`` (the spool record) and ``<seq>.why``; neither is left half written."""
    rec, why = directory / f"{seq:020d}.rec", directory / f"{seq:020d}.why"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        rec.write_bytes(record)
        why.write_text(reason + "\n")
    except OSError:
        rec.unlink(missing_ok=True)
        why.unlink(missing_ok=True)
        raise
