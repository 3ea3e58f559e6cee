"""Ingest: receive agents' messages over CURVE ZeroMQ, store them once, then acknowledge.

One thread owns the ROUTER socket and DuckDB's writer connection. Each turn it drains
what has arrived (up to ``max_drain`` messages), validates every item, appends thumbnails
to pack files, writes all rows in one transaction and only then sends the acks. Under load
the turns grow bigger, so the cost per sighting falls. A failing write (full disk) is
rolled back, counted and not acknowledged, so agents send the batch again later.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import zmq
from zmq.auth.thread import ThreadAuthenticator

from central.store.agents import AgentRepository
from central.store.db import Database
from central.store.sightings import IncomingSighting, SightingRepository
from central.store.thumbs import ThumbStore
from shared import wire
from shared.keys import KeyPair

log = logging.getLogger(__name__)


@dataclass
class IngestStats:
    """Counters since start; read by the HTTP API."""

    messages: int = 0
    batches: int = 0
    sightings_stored: int = 0
    duplicates: int = 0
    faces_received: int = 0
    items_rejected: int = 0
    messages_rejected: collections.Counter[str] = field(default_factory=collections.Counter)
    auth_denied: int = 0
    store_errors: int = 0
    last_error: str = ""

    def messages_rejected_total(self) -> int:
        """Messages refused as a whole, for any reason."""
        return sum(self.messages_rejected.values())

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {
            "messages": self.messages,
            "batches": self.batches,
            "sightings_stored": self.sightings_stored,
            "duplicates": self.duplicates,
            "faces_received": self.faces_received,
            "items_rejected": self.items_rejected,
            "messages_rejected": dict(self.messages_rejected),
            "messages_rejected_total": self.messages_rejected_total(),
            "auth_denied": self.auth_denied,
            "store_errors": self.store_errors,
            "last_error": self.last_error,
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
class _Turn:
    """What one drain of the socket produced."""

    sightings: list[IncomingSighting] = field(default_factory=list)
    hellos: list[wire.AgentHello] = field(default_factory=list)
    heartbeats: list[wire.Heartbeat] = field(default_factory=list)
    # (peer, ack, event ids of the sightings the ack covers)
    acks: list[tuple[bytes, wire.Ack, list[str]]] = field(default_factory=list)
    per_agent: collections.Counter[str] = field(default_factory=collections.Counter)
    new_ids: set[str] = field(default_factory=set)


class IngestServer:
    """The ingest thread: ROUTER socket, validation, storage, acks."""

    def __init__(
        self,
        endpoint: str,
        keys: KeyPair,
        allow: dict[bytes, str],
        db: Database,
        thumbs: ThumbStore,
        max_drain: int = 256,
        max_turn_items: int = 5000,
        clock: Callable[[], float] = time.time,
        on_commit: Callable[[list[IncomingSighting]], None] | None = None,
    ) -> None:
        self.stats = IngestStats()
        self._endpoint = endpoint
        self._keys = keys
        self._allow = allow
        self._db = db
        self._thumbs = thumbs
        self._sightings = SightingRepository()
        self._agents = AgentRepository()
        self._max_drain = max_drain
        self._max_turn_items = max_turn_items
        self._clock = clock
        self._on_commit = on_commit
        # Per-agent delivery counts are written with heartbeats or every few seconds, not on
        # every turn: an upsert costs milliseconds, and turns come hundreds a second.
        self._unflushed: collections.Counter[str] = collections.Counter()
        self._last_flush = 0.0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.bound_endpoint = ""

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

    def _run(self) -> None:
        ctx: zmq.Context[Any] = zmq.Context()
        auth = AgentAuthenticator(ctx, self._allow, self.stats)
        auth.start()
        sock = ctx.socket(zmq.ROUTER)
        sock.curve_server = True
        sock.curve_secretkey = self._keys.secret
        sock.curve_publickey = self._keys.public
        sock.setsockopt(zmq.MAXMSGSIZE, wire.MAX_MESSAGE_BYTES)
        sock.setsockopt(zmq.RCVHWM, 10_000)
        sock.setsockopt(zmq.LINGER, 2000)
        try:
            sock.bind(self._endpoint)
            self.bound_endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            self._ready.set()
            while not self._stop.is_set():
                if sock.poll(100):
                    self._turn(sock)
        finally:
            sock.close(linger=2000)
            auth.stop()
            ctx.term()

    def _turn(self, sock: zmq.Socket[Any]) -> None:
        turn = _Turn()
        for _ in range(self._max_drain):
            if len(turn.sightings) >= self._max_turn_items:
                break  # keep each commit short, so acks stay prompt under load
            try:
                frames = sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self.stats.messages += 1
            self._handle(frames, turn)
        if self._commit(turn):
            for peer, ack, _ids in turn.acks:
                sock.send_multipart([peer, wire.encode(ack)])
            self._notify(turn)

    def _notify(self, turn: _Turn) -> None:
        """Hand the sightings stored in this turn (not the duplicates) to the listener."""
        if self._on_commit is None or not turn.sightings:
            return
        try:
            self._on_commit([s for s in turn.sightings if s.sighting.event_id in turn.new_ids])
        except Exception:  # a listener's bug must not stop ingest; it is logged with its trace
            log.exception("on_commit listener failed")

    def _handle(self, frames: list[zmq.Frame], turn: _Turn) -> None:
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
            turn.hellos.append(msg)
            turn.acks.append((peer, wire.Ack(ref=msg.msg_id), []))
        elif isinstance(msg, wire.Heartbeat):
            turn.heartbeats.append(msg)
        else:
            self._reject("unexpected message kind", type(msg).__name__)

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
        sightings = [(i, t) for _, i, t in parts.items if isinstance(i, wire.Sighting)]
        self.stats.faces_received += len(parts.items) - len(sightings)  # no watchlist yet
        refs = iter(self._thumbs.append([f for _, thumbs in sightings for f in thumbs]))
        for item, thumbs in sightings:
            own = [next(refs) for _ in thumbs]
            turn.sightings.append(IncomingSighting(parts.agent_id, item, own))  # type: ignore[arg-type]
        ids = [item.event_id for item, _ in sightings]
        self.stats.items_rejected += len(parts.rejected)
        for r in parts.rejected:
            log.warning(
                "agent %s batch %d item %d refused: %s",
                parts.agent_id,
                parts.batch_id,
                r.index,
                r.reason,
            )
        turn.per_agent[parts.agent_id] += len(ids)
        turn.acks.append((peer, wire.Ack(ref=parts.batch_id, rejected=parts.rejected), ids))

    def _refuse(self, peer: bytes, header: bytes, reason: str, err: Exception, turn: _Turn) -> None:
        self._reject(reason, str(err))
        ref = wire.batch_ref(header)
        if ref is not None:
            turn.acks.append((peer, wire.Ack(ref=ref, status="rejected", error=str(err)), []))

    def _reject(self, reason: str, detail: str | None) -> None:
        self.stats.messages_rejected[reason] += 1
        self.stats.last_error = f"{reason}: {detail}" if detail else reason
        log.warning("rejected message: %s", self.stats.last_error)

    def _commit(self, turn: _Turn) -> bool:
        if not (turn.sightings or turn.hellos or turn.heartbeats):
            return bool(turn.acks)
        now = self._clock()
        con = self._db.writer
        try:
            self._thumbs.flush()
            con.execute("BEGIN")
            new = self._sightings.insert(con, turn.sightings, now)
            for hello in turn.hellos:
                self._agents.hello(con, hello, now)
            for hb in turn.heartbeats:
                self._agents.heartbeat(con, hb, now)
            counts = self._unflushed + turn.per_agent
            flush = bool(turn.hellos or turn.heartbeats) or now - self._last_flush >= 2.0
            if flush and counts:
                self._agents.seen(con, dict(counts), now)
            con.execute("COMMIT")
        except Exception as err:
            self._rollback(con)
            self.stats.store_errors += 1
            self.stats.last_error = f"store failed: {err}"
            log.error(
                "storing %d sightings failed, not acknowledged (agents will resend): %s",
                len(turn.sightings),
                err,
            )
            return False
        turn.new_ids = new
        if flush:
            self._unflushed.clear()
            self._last_flush = now
        else:
            self._unflushed = counts
        self.stats.sightings_stored += len(new)
        self.stats.duplicates += len(turn.sightings) - len(new)
        turn.acks = [(peer, _counted(ack, ids, new), ids) for peer, ack, ids in turn.acks]
        return True

    @staticmethod
    def _rollback(con: Any) -> None:
        try:
            con.execute("ROLLBACK")
        except Exception:
            log.debug("rollback had no open transaction")


def _counted(ack: wire.Ack, ids: list[str], new: set[str]) -> wire.Ack:
    """The ack with how many of its sightings were stored now and how many were known."""
    stored = sum(1 for i in ids if i in new)
    return msgspec.structs.replace(ack, stored=stored, duplicates=len(ids) - stored)
