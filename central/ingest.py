"""Ingest: receive agents' messages over CURVE ZeroMQ, store them once, then acknowledge.

One thread owns the ROUTER socket. Each turn it drains what has arrived (up to
``max_drain`` messages, ``max_turn_items`` sightings), validates every item, appends the
thumbnails to pack files, and hands the rows to the database writer as one job; only when
that job has committed does it send the acks.

Nothing one message does can stop the loop or another agent's data:

* an exception while handling a message refuses that message and counts it by reason;
* items are checked one by one (event id a real UUID, capture time finite and within
  ``max_age_s`` before / ``max_ahead_s`` after now, camera announced by the sending agent in
  its hello); an item that fails is refused for good with the reason, in the batch's ack;
* a turn whose commit fails is stored again batch by batch and then item by item, so one
  bad row is refused alone; when the database cannot write at all (or free disk is below
  ``min_free_bytes``) nothing is acknowledged, the problem is reported in ``health`` and
  ingest resumes by itself once storage works again (agents resend what was not acked);
* thumbnails written for a write that rolled back are cut off their pack again.

Matching waits until the acks are out: the follow-up job that records alerts is queued
after them (it commits with the next turn's rows when ingest is busy). A crash before it
commits loses no alert: the alert engine matches again whatever was stored after its
watermark when central starts.

Crop requests (``central.faces.crops.CropFetcher``) ride the same socket: callers on other
threads queue them and wake this thread through a pipe it polls with the socket; it sends
them to the connection of each agent's latest hello and hands the replies back.

Memory is bounded per connection by ZeroMQ: each frame at most ``max_frame_bytes``
(a larger one drops the connection), at most ``rcv_hwm`` whole messages queued per agent
(then TCP pushes back), and a message of more than ``max_frames`` frames is refused
without being kept.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import duckdb
import msgspec
import zmq
from zmq.auth.thread import ThreadAuthenticator

from central.faces.crops import CropFetcher, CropStats, SendOutcome
from central.faces.model import MatchedFace
from central.store.agents import AgentRepository
from central.store.camera_history import CameraHistory, SightingMinutes
from central.store.db import Database
from central.store.sightings import FollowUp, IncomingSighting, SightingRepository
from central.store.thumbs import ThumbStore
from shared import wire
from shared.histogram import Histogram
from shared.keys import KeyPair

log = logging.getLogger(__name__)

FacesFn = Callable[[str, list[wire.FaceObservation]], None]  # (agent id, observations)
_LOG_EVERY_S = 5.0
_MAX_DUTY_WAIT_S = 0.25  # the longest writer_duty makes a turn wait after the last one
_DUTY_ENOUGH_ITEMS = 1000  # a turn this large shares a transaction's fixed cost enough
_FACE_IMAGE_REFUSED = "face observation carries an image; face crops stay on the edge"


class FaceMatching(Protocol):
    """Face watchlist matching at ingest (``central.faces.candidates.FaceCandidates``)."""

    def match(self, agent_id: str, obs: wire.FaceObservation) -> MatchedFace | None:
        """The observation's match above the threshold, or None (ingest thread)."""
        ...

    def write(
        self, con: duckdb.DuckDBPyConnection, faces: list[MatchedFace], received_at: float
    ) -> list[MatchedFace]:
        """Store matches in the turn's transaction; the ones new to the database."""
        ...

    def committed(self, faces: list[MatchedFace]) -> None:
        """After the commit: the new matches (crop requests go out)."""
        ...


@dataclass(frozen=True)
class IngestLimits:
    """Bounds of one ingest server (from ``IngestConfig``)."""

    max_drain: int = 256
    max_turn_items: int = 5000
    min_turn_interval_s: float = 0.0
    writer_duty: float = 1.0
    max_frame_bytes: int = 1 << 20
    max_frames: int = 4097
    rcv_hwm: int = 64
    max_age_s: float = 30 * 86_400.0
    max_ahead_s: float = 300.0
    min_free_bytes: int = 256 << 20


@dataclass
class IngestStats:
    """Counters since start; read by the HTTP API."""

    messages: int = 0
    batches: int = 0
    turns: int = 0
    sightings_stored: int = 0
    duplicates: int = 0
    faces_received: int = 0
    faces_matched: int = 0
    items_rejected: int = 0
    items_rejected_by_reason: collections.Counter[str] = field(default_factory=collections.Counter)
    messages_rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    auth_denied: int = 0
    store_errors: int = 0
    turns_retried: int = 0
    storage_unavailable: int = 0
    thumb_bytes_reclaimed: int = 0
    last_error: str = ""
    # Seconds from a turn's first receive to its acks sent (written by the ingest thread).
    turn_seconds: Histogram = field(default_factory=Histogram)
    crops: CropStats = field(default_factory=CropStats)

    def messages_rejected_total(self) -> int:
        """Messages refused as a whole, for any reason."""
        return sum(self.messages_rejected.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {
            "messages": self.messages,
            "batches": self.batches,
            "turns": self.turns,
            "sightings_stored": self.sightings_stored,
            "duplicates": self.duplicates,
            "faces_received": self.faces_received,
            "faces_matched": self.faces_matched,
            "items_rejected": self.items_rejected,
            "items_rejected_by_reason": dict(self.items_rejected_by_reason),
            "messages_rejected": dict(self.messages_rejected),
            "messages_rejected_total": self.messages_rejected_total(),
            "auth_denied": self.auth_denied,
            "store_errors": self.store_errors,
            "turns_retried": self.turns_retried,
            "storage_unavailable": self.storage_unavailable,
            "thumb_bytes_reclaimed": self.thumb_bytes_reclaimed,
            "last_error": self.last_error,
            "crops": self.crops.as_dict(),
        }


class AgentAuthenticator(ThreadAuthenticator):
    """ZAP handler: only allow-listed agent keys; binds each key to its agent id."""

    def __init__(self, ctx: zmq.Context[Any], allow: dict[bytes, str], stats: IngestStats) -> None:
        super().__init__(ctx)
        self._allow = allow
        self._stats = stats
        self.configure_curve_callback("*", self)

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by pyzmq for each CURVE handshake with the client's z85 public key."""
        if key in self._allow:
            return True
        self._stats.auth_denied += 1
        log.warning("refused agent with unknown CURVE key %s", key.decode(errors="replace"))
        return False

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The agent id bound to a key, delivered as each message's User-Id property."""
        return self._allow.get(zmq.utils.z85.encode(client_public_key), "")


@dataclass
class _Batch:
    """One batch message: its accepted sightings with their frames, and its answer."""

    peer: bytes
    agent_id: str
    batch_id: int
    items: list[tuple[int, wire.Sighting, list[wire.Frame]]]
    rejected: list[wire.Rejected]
    stored: set[str] = field(default_factory=set)  # event ids new to the database
    faces: list[MatchedFace] = field(default_factory=list)  # observations that matched
    face_indexes: list[int] = field(default_factory=list)  # their indexes in the batch


@dataclass
class _Turn:
    """What one drain of the socket produced."""

    batches: list[_Batch] = field(default_factory=list)
    hellos: list[tuple[bytes, wire.AgentHello]] = field(default_factory=list)
    heartbeats: list[wire.Heartbeat] = field(default_factory=list)
    refusals: list[tuple[bytes, wire.Ack]] = field(default_factory=list)
    items: int = 0
    messages: int = 0


@dataclass
class _Stored:
    """Filled in by the write job on the writer thread."""

    new: set[str] = field(default_factory=set)
    received_at: float = 0.0
    faces: list[MatchedFace] = field(default_factory=list)  # candidates new to the database


class StorageUnavailable(RuntimeError):
    """Storage cannot take writes now (disk full, database failing); nothing is acked."""


class IngestServer:
    """The ingest thread: ROUTER socket, validation, storage, acks."""

    def __init__(
        self,
        endpoint: str,
        keys: KeyPair,
        allow: dict[bytes, str],
        db: Database,
        thumbs: ThumbStore,
        limits: IngestLimits | None = None,
        clock: Callable[[], float] = time.time,
        on_store: Callable[[list[IncomingSighting]], FollowUp | None] | None = None,
        data_dir: Path | None = None,
        faces: FaceMatching | None = None,
        crops: CropFetcher | None = None,
        on_faces: FacesFn | None = None,
    ) -> None:
        self.crops = crops if crops is not None else CropFetcher()
        self.stats = IngestStats(crops=self.crops.stats)
        self._faces = faces
        self._on_faces = on_faces  # accepted face observations, per batch, on this thread
        self._endpoint = endpoint
        self._keys = keys
        self._allow = allow
        self._db = db
        self._thumbs = thumbs
        self._limits = limits or IngestLimits()
        self._clock = clock
        self._on_store = on_store
        self._data_dir = data_dir
        self._sightings = SightingRepository()
        self._agents = AgentRepository()
        self._history = CameraHistory()
        self._minutes = SightingMinutes()  # sightings per camera minute, written with `seen`
        with db.reader() as con:
            self._cameras = self._agents.cameras(con)
        # Per-agent delivery counts are written with heartbeats or every few seconds, not on
        # every turn: an upsert costs milliseconds, and turns come hundreds a second.
        self._unflushed: collections.Counter[str] = collections.Counter()
        self._last_flush = 0.0
        self._last_received = 0.0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.problem = ""  # why storage is refused now; empty when ingest is healthy
        self._warned: dict[str, tuple[float, int]] = {}
        self._stored: list[tuple[list[IncomingSighting], _Stored]] = []
        self._sock: zmq.Socket[Any] | None = None  # the ingest thread's, while it runs
        self._next: _Turn | None = None  # received while the writer committed a turn
        self.last_turn_at = 0.0
        self._turn_began = 0.0  # monotonic; for min_turn_interval_s and writer_duty
        self._stored_s = 0.0  # how long the last turn took to store and ack
        self.bound_endpoint = ""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Bind and start the ingest thread; returns once the socket is bound."""
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"ingest could not bind {self._endpoint}")

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the turn in hand (commit and ack it), then close the socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        """Whether the ingest thread is running."""
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        ctx: zmq.Context[Any] = zmq.Context()
        auth = AgentAuthenticator(ctx, self._allow, self.stats)
        auth.start()
        sock = ctx.socket(zmq.ROUTER)
        sock.curve_server = True
        sock.curve_secretkey = self._keys.secret
        sock.curve_publickey = self._keys.public
        sock.setsockopt(zmq.MAXMSGSIZE, self._limits.max_frame_bytes)
        sock.setsockopt(zmq.RCVHWM, self._limits.rcv_hwm)
        sock.setsockopt(zmq.LINGER, 2000)
        try:
            sock.bind(self._endpoint)
            self.bound_endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            self._ready.set()
            self._sock = sock
            poller = zmq.Poller()
            poller.register(sock, zmq.POLLIN)
            poller.register(self.crops.wake_fd, zmq.POLLIN)
            send = functools.partial(_send_crop_request, sock)
            while not self._stop.is_set():
                self.last_turn_at = time.time()
                self.crops.pump(send)
                if self._next is not None or sock in dict(poller.poll(100)):
                    self._turn(sock)
            if self._next is not None:  # received while the last turn committed
                self._sock, turn, self._next = None, self._next, None
                self._finish(sock, turn)
        finally:
            self._sock = None
            self.crops.close()
            sock.close(linger=2000)
            auth.stop()
            ctx.term()

    # -- one turn -------------------------------------------------------------------------

    def _turn(self, sock: zmq.Socket[Any]) -> None:
        began = time.perf_counter()
        turn, self._next = self._next or _Turn(), None
        self._drain(sock, turn)
        self._gather(sock, turn)
        self._turn_began = time.monotonic()
        self._finish(sock, turn)
        self._stored_s = time.monotonic() - self._turn_began
        self.stats.turn_seconds.observe(time.perf_counter() - began)

    def _gather(self, sock: zmq.Socket[Any], turn: _Turn) -> None:
        """Keep draining until ``min_turn_interval_s`` has passed since the last turn
        began, and long enough for its storage to have taken at most ``writer_duty`` of
        the time since, unless the turn holds enough to share a transaction's fixed cost
        already (or is full): fewer, larger transactions."""
        limits, stored = self._limits, self._stored_s
        floor = self._turn_began + limits.min_turn_interval_s
        # A slow store (a checkpoint) must not hold the next turn long: at most this wait.
        spacing = min(stored / limits.writer_duty, stored + _MAX_DUTY_WAIT_S)
        duty = self._turn_began + spacing
        while (
            turn.items < limits.max_turn_items
            and turn.messages < limits.max_drain
            and not self._stop.is_set()
        ):
            now = time.monotonic()
            if now >= floor and (now >= duty or turn.items >= _DUTY_ENOUGH_ITEMS):
                return
            left = (floor if now < floor else duty) - now
            if sock.poll(max(1, int(left * 1000))):
                self._drain(sock, turn)

    def _drain(self, sock: zmq.Socket[Any], turn: _Turn) -> None:
        """Receive and check what is waiting, up to the turn's bounds."""
        for _ in range(self._limits.max_drain - turn.messages):
            if turn.items >= self._limits.max_turn_items:
                break  # keep each commit short, so acks stay prompt under load
            frames = self._recv(sock)
            if frames is None:
                break
            self.stats.messages += 1
            turn.messages += 1
            try:
                self._handle(frames, turn)
            except Exception as err:  # one message's surprise must not stop ingest
                log.exception("handling a message failed")
                self._reject(f"internal error: {type(err).__name__}", str(err))

    def _prefetch(self) -> None:
        """While the writer commits a turn, receive and check the next one (its
        thumbnails and rows wait until this turn is settled)."""
        if self._sock is not None and self._next is None:
            self._next = _Turn()
            self._drain(self._sock, self._next)

    def _finish(self, sock: zmq.Socket[Any], turn: _Turn) -> None:
        self.stats.turns += 1
        acks = self._settle(turn)
        for peer, ack in acks:
            sock.send_multipart([peer, wire.encode(ack)])
        self._follow_up()

    def _follow_up(self) -> None:
        """After the acks: match what the turn stored and queue the alert follow-up (the
        match watermark covers a crash before it commits)."""
        stored, self._stored = self._stored, []
        if self._on_store is None:
            return
        for items, result in stored:
            job = self._on_store(items)
            if job is not None:
                self._db.writer.submit(
                    functools.partial(job, new=result.new, received=result.received_at)
                )

    def _recv(self, sock: zmq.Socket[Any]) -> list[zmq.Frame] | None:
        """The next message, or None when none is waiting. A message with more than
        ``max_frames`` frames is read to its end without keeping the rest, and refused."""
        try:
            first = sock.recv(flags=zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return None
        frames = [first]
        dropped = 0
        more = first.more
        while more:
            part = sock.recv(copy=False)
            more = part.more
            if len(frames) <= self._limits.max_frames:  # the routing id frame comes first
                frames.append(part)
            else:
                dropped += 1
        if dropped:
            self._reject(
                "too many frames",
                f"{len(frames) + dropped - 1} frames, at most {self._limits.max_frames}",
            )
            return []  # refused: nothing of it is handled
        return frames

    def _handle(self, frames: list[zmq.Frame], turn: _Turn) -> None:
        if not frames:
            return  # refused by _recv
        if len(frames) < 2:
            self._reject("no header frame", None)
            return
        peer, header = frames[0].bytes, frames[1]
        bound_agent = str(header.get("User-Id"))
        data = header.bytes
        try:
            kind, schema = wire.peek(data)
            wire.check_version(schema)
            if kind == "batch":
                self._batch(peer, bound_agent, data, [f.buffer for f in frames[2:]], turn)
                return
            if kind == "crop_reply":
                self.crops.on_reply(bound_agent, data, [f.buffer for f in frames[2:]])
                return
            msg = wire.decode(data)
        except wire.UnsupportedVersion as err:
            self._refuse(peer, data, "unsupported version", err, turn)
            return
        except wire.WireError as err:
            self._refuse(peer, data, "malformed", err, turn)
            return
        agent_id = getattr(msg, "agent_id", None)
        if agent_id != bound_agent:
            self._reject("agent id does not match key", f"{agent_id!r} vs key of {bound_agent!r}")
            return
        if isinstance(msg, wire.AgentHello):
            turn.hellos.append((peer, msg))
            self._cameras[msg.agent_id] = {c.camera_id for c in msg.cameras}
            self.crops.agent_hello(msg.agent_id, peer, msg.features)
        elif isinstance(msg, wire.Heartbeat):
            turn.heartbeats.append(self._own_cameras(msg))
        else:
            self._reject("unexpected message kind", type(msg).__name__)

    def _own_cameras(self, hb: wire.Heartbeat) -> wire.Heartbeat:
        """The heartbeat with only the cameras its agent announced (others are counted)."""
        own = self._cameras.get(hb.agent_id, set())
        foreign = [c.camera_id for c in hb.cameras if c.camera_id not in own]
        if not foreign:
            return hb
        self._reject("camera not announced by agent", f"{hb.agent_id}: {foreign}")
        return msgspec.structs.replace(hb, cameras=[c for c in hb.cameras if c.camera_id in own])

    def _batch(
        self,
        peer: bytes,
        bound_agent: str,
        header: bytes,
        frames: list[memoryview],
        turn: _Turn,
    ) -> None:
        parts = wire.split_batch(header, frames)
        if parts.agent_id != bound_agent:
            raise wire.WireError(
                f"batch claims agent {parts.agent_id!r} but its key belongs to {bound_agent!r}"
            )
        self.stats.batches += 1
        now = self._clock()
        own = self._cameras.get(parts.agent_id, set())
        rejected = list(parts.rejected)
        items: list[tuple[int, wire.Sighting, list[wire.Frame]]] = []
        matched_faces: list[MatchedFace] = []
        matched_indexes: list[int] = []
        faces: list[wire.FaceObservation] = []
        for index, item, thumbs in parts.items:
            if not isinstance(item, wire.Sighting):
                # Faces: matched against the persons watchlist here; only a match is
                # stored (with its batch), a face that matches no one leaves no trace. An
                # image with one is refused: crops stay on the edge until central asks for
                # a match's crop (docs/faces.md).
                problem = _FACE_IMAGE_REFUSED if thumbs or item.thumbnails else ""
                problem = problem or self._item_problem(item, own, now)
                if problem:
                    rejected.append(wire.Rejected(index, problem))
                    continue
                self.stats.faces_received += 1
                try:
                    matched = self._faces.match(parts.agent_id, item) if self._faces else None
                except ValueError as err:
                    rejected.append(wire.Rejected(index, f"face embedding: {err}"))
                    continue
                faces.append(item)
                if matched is not None:
                    matched_faces.append(matched)
                    matched_indexes.append(index)
                continue
            problem = self._item_problem(item, own, now)
            if problem:
                rejected.append(wire.Rejected(index, problem))
            else:
                items.append((index, item, thumbs))
        for r in rejected:
            self._item_refused(parts.agent_id, parts.batch_id, r)
        turn.items += len(items)
        turn.batches.append(
            _Batch(
                peer,
                parts.agent_id,
                parts.batch_id,
                items,
                rejected,
                faces=matched_faces,
                face_indexes=matched_indexes,
            )
        )
        if faces and self._on_faces is not None:
            self._on_faces(parts.agent_id, faces)

    def _item_problem(
        self, item: wire.Sighting | wire.FaceObservation, cameras: set[str], now: float
    ) -> str:
        """Why an item cannot be stored, or empty."""
        try:
            uuid.UUID(item.event_id)
        except ValueError:
            return f"event_id {item.event_id!r} is not a UUID"
        at = item.captured_at
        if not math.isfinite(at):
            return f"captured_at {at} is not a finite time"
        if at < now - self._limits.max_age_s or at > now + self._limits.max_ahead_s:
            return (
                f"captured_at {at:.3f} is outside the accepted window "
                f"[{now - self._limits.max_age_s:.0f}, {now + self._limits.max_ahead_s:.0f}] "
                "(check the agent's clock)"
            )
        if item.camera_id not in cameras:
            return f"camera {item.camera_id!r} was not announced by this agent"
        return ""

    def _item_refused(self, agent_id: str, batch_id: int, r: wire.Rejected) -> None:
        self.stats.items_rejected += 1
        kind = _reason_kind(r.reason)
        self.stats.items_rejected_by_reason[kind] += 1
        self._warn(
            f"item:{kind}",
            "agent %s batch %d item %d refused: %s",
            agent_id,
            batch_id,
            r.index,
            r.reason,
        )

    def _refuse(self, peer: bytes, header: bytes, reason: str, err: Exception, turn: _Turn) -> None:
        self._reject(reason, str(err))
        ref = wire.batch_ref(header)
        if ref is not None:
            turn.refusals.append((peer, wire.Ack(ref=ref, status="rejected", error=str(err))))

    def _reject(self, reason: str, detail: str | None) -> None:
        self.stats.messages_rejected[reason] += 1
        self.stats.last_error = f"{reason}: {detail}" if detail else reason
        self._warn(reason, "rejected message: %s", self.stats.last_error)

    def _warn(self, key: str, msg: str, *args: object) -> None:
        """Log a warning, at most once per ``_LOG_EVERY_S`` per ``key`` (a flood of bad
        messages must not flood the log too); how many were held back is said."""
        now = time.monotonic()
        last, held = self._warned.get(key, (0.0, 0))
        if now - last < _LOG_EVERY_S:
            self._warned[key] = (last, held + 1)
            return
        self._warned[key] = (now, 0)
        suffix = f" (and {held} more like it)" if held else ""
        log.warning(msg + suffix, *args)

    # -- storing --------------------------------------------------------------------------

    def _settle(self, turn: _Turn) -> list[tuple[bytes, wire.Ack]]:
        """Store a turn; the acks to send (none for what could not be stored)."""
        acks = list(turn.refusals)
        if not (turn.batches or turn.hellos or turn.heartbeats):
            return acks
        try:
            self._check_space()
            try:
                self._store(turn.batches, turn.hellos, turn.heartbeats)
            except StorageUnavailable:
                raise
            except Exception as err:
                self._store_failed(err, len(turn.batches))
                self.stats.turns_retried += 1
                self._store_apart(turn)
        except StorageUnavailable as err:
            self._unavailable(str(err))
            return acks
        if self.problem:
            log.warning("storage works again after: %s", self.problem)
            self.problem = ""
        acks += [(peer, wire.Ack(ref=hello.msg_id)) for peer, hello in turn.hellos]
        acks += [(b.peer, _ack(b)) for b in turn.batches]
        return acks

    def _store_apart(self, turn: _Turn) -> None:
        """Store a turn whose commit failed piece by piece: hellos and heartbeats, then each
        batch, then each item of a batch that fails; an item failing alone while the
        database writes is refused for good."""
        self._store([], turn.hellos, turn.heartbeats)
        for batch in turn.batches:
            try:
                self._store([batch], [], [])
                continue
            except StorageUnavailable:
                raise
            except Exception as err:
                self._store_failed(err, 1)
            kept = []
            for one in batch.items:
                single = _Batch(batch.peer, batch.agent_id, batch.batch_id, [one], [])
                try:
                    self._store([single], [], [])
                except StorageUnavailable:
                    raise
                except Exception as err:  # the row itself cannot be stored
                    refusal = wire.Rejected(one[0], f"store failed: {err}"[:300])
                    batch.rejected.append(refusal)
                    self._item_refused(batch.agent_id, batch.batch_id, refusal)
                    continue
                kept.append(one)
                batch.stored |= single.stored
            batch.items = kept
            if batch.faces:  # the batch's face candidates, apart from its sightings
                faces = _Batch(
                    batch.peer, batch.agent_id, batch.batch_id, [], [], faces=batch.faces
                )
                try:
                    self._store([faces], [], [])
                except StorageUnavailable:
                    raise
                except Exception as err:  # refused, not dropped: the agent dead-letters them
                    self._store_failed(err, 1)
                    for index in batch.face_indexes:
                        refusal = wire.Rejected(index, f"store failed: {err}"[:300])
                        batch.rejected.append(refusal)
                        self._item_refused(batch.agent_id, batch.batch_id, refusal)

    def _store(
        self,
        batches: list[_Batch],
        hellos: list[tuple[bytes, wire.AgentHello]],
        heartbeats: list[wire.Heartbeat],
    ) -> None:
        """Write thumbnails, then rows in one writer job; wait for its commit.

        Raises:
            StorageUnavailable: The thumbnails could not be written.
            Exception: Whatever the write job or its commit raised (thumbnails reclaimed).
        """
        mark = self._thumbs.mark()
        frames = [f for b in batches for _, _, thumbs in b.items for f in thumbs]
        try:
            refs = iter(self._thumbs.append(frames))
            self._thumbs.flush()
        except OSError as err:
            self.stats.thumb_bytes_reclaimed += self._thumbs.truncate(mark)
            raise StorageUnavailable(f"thumbnails cannot be written: {err}") from err
        items = [
            IncomingSighting(b.agent_id, item, [next(refs) for _ in thumbs])
            for b in batches
            for _, item, thumbs in b.items
        ]
        per_agent = collections.Counter({b.agent_id: len(b.items) for b in batches})
        faces = [f for b in batches for f in b.faces]
        stored = _Stored()
        future: Future[None] = self._db.writer.submit(
            lambda con: self._write(con, items, hellos, heartbeats, per_agent, stored, faces)
        )
        self._prefetch()
        try:
            future.result()
        except Exception as err:
            self.stats.thumb_bytes_reclaimed += self._thumbs.truncate(mark)
            if not _about_the_data(err):
                raise StorageUnavailable(f"the database cannot write: {err}") from err
            raise
        if items:
            self._stored.append((items, stored))
        if stored.faces and self._faces is not None:
            self.stats.faces_matched += len(stored.faces)
            self._faces.committed(stored.faces)
        for b in batches:
            b.stored = {item.event_id for _, item, _ in b.items} & stored.new
        self.stats.sightings_stored += len(stored.new)
        self.stats.duplicates += len(items) - len(stored.new)

    def _write(
        self,
        con: duckdb.DuckDBPyConnection,
        items: list[IncomingSighting],
        hellos: list[tuple[bytes, wire.AgentHello]],
        heartbeats: list[wire.Heartbeat],
        per_agent: collections.Counter[str],
        stored: _Stored,
        faces: list[MatchedFace] | None = None,
    ) -> None:
        """The writer job of one turn (writer thread, inside its transaction)."""
        now = max(self._clock(), self._last_received)  # received_at never goes back
        new = self._sightings.insert(con, items, now)
        if faces and self._faces is not None:
            stored.faces = self._faces.write(con, faces, now)
        for _, hello in hellos:
            self._agents.hello(con, hello, now)
        for hb in heartbeats:
            if self._agents.heartbeat(con, hb, now):  # a stale one (arrived late) is not
                self._history.beat(con, hb, now)
        counts = self._unflushed + per_agent
        flush = bool(hellos or heartbeats) or now - self._last_flush >= 2.0
        if flush and counts:
            self._agents.seen(con, dict(counts), now)
        for item in items:
            if item.sighting.event_id in new:
                self._minutes.add(item.agent_id, [item.sighting])
        if flush and self._minutes:
            self._history.add_sightings(con, self._minutes.take())
        # Counters change only here, on the writer thread; a rollback that follows this job
        # costs at most a delivery count on the agents page (or a minute's sighting count
        # on the health page), never a sighting.
        if flush:
            self._unflushed.clear()
            self._last_flush = now
        else:
            self._unflushed = counts
        self._last_received = now
        stored.new, stored.received_at = new, now

    def _check_space(self) -> None:
        if self._data_dir is None:
            return
        try:
            st = os.statvfs(self._data_dir)
        except OSError as err:
            raise StorageUnavailable(f"cannot check free space of {self._data_dir}: {err}") from err
        free = st.f_bavail * st.f_frsize
        if free < self._limits.min_free_bytes:
            raise StorageUnavailable(
                f"disk almost full: {free >> 20} MiB free in {self._data_dir}, "
                f"at least {self._limits.min_free_bytes >> 20} MiB needed"
            )

    def _store_failed(self, err: Exception, batches: int) -> None:
        self.stats.store_errors += 1
        self.stats.last_error = f"store failed: {err}"
        log.error("storing %d batch(es) failed, rolled back: %s", batches, err)

    def _unavailable(self, why: str) -> None:
        self.stats.storage_unavailable += 1
        if why != self.problem:
            log.error("ingest is not acknowledging (agents keep their data): %s", why)
        self.problem = why
        self.stats.last_error = why


def _send_crop_request(sock: zmq.Socket[Any], peer: bytes, frames: list[bytes]) -> SendOutcome:
    """Send to one connection without waiting; a gone peer is reported, not silently
    dropped (ROUTER_MANDATORY, on for this send only: acks keep ROUTER's drop semantics)."""
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    try:
        sock.send_multipart([peer, *frames], flags=zmq.NOBLOCK)
    except zmq.Again:
        return "busy"
    except zmq.ZMQError:  # EHOSTUNREACH: no connection with this routing id any more
        return "gone"
    finally:
        sock.setsockopt(zmq.ROUTER_MANDATORY, 0)
    return "sent"


def _ack(batch: _Batch) -> wire.Ack:
    """A batch's ack: how many of its sightings were stored now and how many were known."""
    stored = len(batch.stored)
    return wire.Ack(
        ref=batch.batch_id,
        rejected=sorted(batch.rejected, key=lambda r: r.index),
        stored=stored,
        duplicates=len(batch.items) - stored,
    )


# Errors that say a row itself cannot be stored; anything else (I/O, a full disk, memory,
# a failing commit) is the storage's problem: nothing is refused for good then.
_DATA_ERRORS = (
    duckdb.ConversionException,
    duckdb.ConstraintException,
    duckdb.InvalidInputException,
    duckdb.TypeMismatchException,
    duckdb.OutOfRangeException,
    duckdb.BinderException,
    ValueError,
    TypeError,
    OverflowError,
)


def _about_the_data(err: BaseException) -> bool:
    """Whether a failed write was refused because of what was written (not storage)."""
    return isinstance(err, _DATA_ERRORS) and not isinstance(err, duckdb.IOException)


def _reason_kind(reason: str) -> str:
    """A short, countable kind of an item refusal reason."""
    for prefix, kind in (
        ("invalid item", "invalid item"),
        ("thumbnail", "bad thumbnail"),
        ("event_id", "event id not a UUID"),
        ("captured_at", "capture time out of window"),
        ("camera", "camera not announced"),
        ("store failed", "store failed"),
        ("face observation carries an image", "face image refused"),
    ):
        if reason.startswith(prefix):
            return kind
    return "other"
