"""Varta wire protocol: every message the edge agents and central exchange.

Transport: ZeroMQ over TCP with CURVE encryption. Agents connect a DEALER socket to
central's ROUTER socket. Central authenticates each agent by its CURVE public key
(allow-list) and binds the key to an agent id; a message whose ``agent_id`` differs from
the id bound to its key is refused.

Frame layout (ZeroMQ multipart message)::

    [ header , frame_1 , frame_2 , ... ]

``header`` is one MessagePack map: a message struct from this module. Its ``kind`` key
names the message type and its ``schema`` key is ``"MAJOR.MINOR"``. Receivers refuse a
major version they do not know (``UnsupportedVersion``) and ignore unknown keys, so minor
versions may add optional fields. The bytes are plain MessagePack (maps with string
keys, floats, ints, strings, binary, arrays), readable by any MessagePack library.

Binary payloads never travel inside the header (no base64). Only a ``SightingBatch``
carries frames: the JPEG bytes of the thumbnails, in item order, and within one item in
the order of its ``thumbnails`` list. So the number of frames after the header equals
the sum of ``len(item.thumbnails)`` over all items; any other count is malformed.

Messages (agent -> central): ``AgentHello`` when the agent (re)connects, ``Heartbeat``
every few seconds, ``SightingBatch`` with ``Sighting`` and ``FaceObservation`` items,
``CropReply`` to a crop request. Messages (central -> agent): ``Ack`` for every hello and
batch, ``CropRequest`` for the face crop of an observation that matched the watchlist.
A batch is acknowledged only after central has committed it; ``Ack.rejected`` lists items
refused for good (the agent moves those to its dead-letter store instead of retrying them).
A whole batch that cannot be decoded is answered with ``status="rejected"`` when its
``batch_id`` can be recovered, and is counted and logged by central either way.

Crops (schema 1.1): central sends a ``CropRequest`` only to an agent whose hello listed
``"crops"`` in ``features`` (an agent of schema 1.0 never gets one; a 1.0 receiver would log
and drop the unknown kind). The agent answers with one ``CropReply``: ``status="ok"`` is
followed by exactly one frame, the JPEG (at most ``MAX_CROP_BYTES``); ``status="expired"``
by none. This is the only message that carries a face image off the edge.

Health (schema 1.2): a ``Heartbeat`` may carry ``link`` (reconnects, last ack, spool peak)
and ``clock`` (wall clock steps seen by the agent's guard). Both are optional: a 1.1 agent's
heartbeat still decodes, and a 1.1 central ignores the unknown keys.

Identity: ``Sighting.event_id`` is a UUID (version 7, time-ordered) made once on the edge
when the sighting is created and kept across retries; central stores each event id once.

Units: times are UNIX seconds (UTC) as floats; boxes are ``[x1, y1, x2, y2]`` in pixels of
the camera frame; confidences are 0..1.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Sequence
from typing import Annotated, Final, Literal

import msgspec
from msgspec import Meta, Struct

SCHEMA_MAJOR: Final = 1
SCHEMA_MINOR: Final = 2  # 1.1: crop request / reply, hello features; 1.2: link, clock health
SCHEMA: Final = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}"

# Bounds that keep one malformed or hostile message from costing much.
MAX_ITEMS_PER_BATCH: Final = 2_000
MAX_THUMBNAILS_PER_ITEM: Final = 8
MAX_THUMBNAIL_BYTES: Final = 512 * 1024
MAX_FRAME_BYTES: Final = 1024 * 1024  # central's ZeroMQ bound on any one frame
MAX_CROP_BYTES: Final = 256 * 1024  # one face crop JPEG in a CropReply
FEATURE_CROPS: Final = "crops"  # in AgentHello.features: the agent answers CropRequest

Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
ShortText = Annotated[str, Meta(max_length=64)]
PlateText = Annotated[str, Meta(max_length=32)]
Confidence = Annotated[float, Meta(ge=0.0, le=1.0)]
Seconds = Annotated[float, Meta(ge=0.0)]
Count = Annotated[int, Meta(ge=0)]
Box = Annotated[tuple[float, float, float, float], Meta()]
EventId = Annotated[str, Meta(min_length=32, max_length=36, pattern=r"^[0-9a-fA-F-]{32,36}$")]


class WireError(Exception):
    """A message could not be accepted; the text says what was expected and what came."""


class UnsupportedVersion(WireError):
    """The message's schema major version is not one this build understands."""


class _Message(
    Struct, gc=False, frozen=True, kw_only=True, tag_field="kind", forbid_unknown_fields=False
):
    schema: str = SCHEMA


class CameraInfo(Struct, gc=False, frozen=True, kw_only=True):
    """A camera an agent serves, as announced in its hello."""

    camera_id: Id
    name: ShortText = ""
    source_kind: ShortText = ""  # file, rtsp, http, snapshots, usb


class AgentHello(_Message, frozen=True, tag="hello"):
    """Sent when an agent starts or reconnects."""

    agent_id: Id
    software_version: ShortText
    cameras: Annotated[list[CameraInfo], Meta(max_length=256)] = []
    models: Annotated[dict[ShortText, ShortText], Meta(max_length=64)] = {}
    started_at: Seconds = 0.0
    msg_id: Count = 0
    features: Annotated[list[ShortText], Meta(max_length=16)] = []  # 1.1, e.g. ["crops"]


class CameraStats(Struct, gc=False, frozen=True, kw_only=True):
    """Per-camera health in a heartbeat. Counters are cumulative since agent start."""

    camera_id: Id
    online: bool
    fps_in: Annotated[float, Meta(ge=0.0)] = 0.0
    fps_out: Annotated[float, Meta(ge=0.0)] = 0.0
    frames_dropped: Count = 0
    error: Annotated[str, Meta(max_length=256)] = ""


class LinkHealth(Struct, frozen=True, kw_only=True):
    """The agent's link to central, in a heartbeat (schema 1.2). Counters since agent start."""

    reconnects: Count = 0  # connections to central lost and made again
    last_ack_age_s: Seconds | None = None  # since the last ack of a batch; None: none yet
    spool_peak: Count = 0  # deepest the spool has been (records waiting)
    in_flight: Count = 0  # batches sent and not yet acknowledged


class ClockHealth(Struct, frozen=True, kw_only=True):
    """The agent's wall clock guard, in a heartbeat (schema 1.2; edge_agent/clock.py).

    ``offset_s`` is the agent's wall clock minus the clock its sightings are stamped by:
    non-zero while a step is pending (not yet confirmed, so not used).
    """

    offset_s: float = 0.0
    pending: bool = False
    steps: Count = 0
    steps_confirmed: Count = 0
    steps_reverted: Count = 0
    last_step_s: float = 0.0


class Heartbeat(_Message, frozen=True, tag="heartbeat"):
    """Periodic agent health. Spool counters are cumulative over the spool's life.

    ``sent_at`` is the agent's raw wall clock (central compares it with its own); ``link``
    and ``clock`` (schema 1.2) are absent in heartbeats of older agents. ``started_at`` and
    ``seq`` order one process's heartbeats: one that arrives after a later one (sent on a
    connection that was replaced meanwhile) is stale and central ignores it.
    """

    agent_id: Id
    sent_at: Seconds
    cameras: Annotated[list[CameraStats], Meta(max_length=256)] = []
    spool_depth: Count = 0
    spool_bytes: Count = 0
    spool_evictions: Count = 0
    dead_letters: Count = 0
    link: LinkHealth | None = None  # 1.2
    clock: ClockHealth | None = None  # 1.2
    started_at: Seconds = 0.0  # 1.2: the agent process's start, as in its hello
    seq: Count = 0  # 1.2: 1, 2, ... per agent process; 0: not given (older agent)


class PlateCandidate(Struct, gc=False, frozen=True, array_like=True):
    """One alternative reading of a plate: ``[text, confidence]`` on the wire."""

    text: PlateText
    confidence: Confidence


class Plate(Struct, gc=False, frozen=True, kw_only=True):
    """A plate read. ``text`` is folded to Latin look-alikes, no spaces; ``raw`` is OCR output."""

    text: PlateText
    raw: Annotated[str, Meta(max_length=64)]
    confidence: Confidence
    candidates: Annotated[list[PlateCandidate], Meta(max_length=16)] = []
    char_confidences: Annotated[list[Confidence], Meta(max_length=32)] = []
    format: ShortText = ""  # e.g. ua_current, ua_ev, ua_1995, eu_generic
    region: ShortText = ""  # e.g. UA-AT for Ivano-Frankivsk
    box: Box | None = None


class Vehicle(Struct, gc=False, frozen=True, kw_only=True):
    """What the vehicle looks like."""

    box: Box
    type: ShortText = ""  # car, van, truck, bus, motorcycle
    type_confidence: Confidence = 0.0
    colour: ShortText = ""  # white, gray, yellow, red, green, blue, black
    colour_confidence: Confidence = 0.0


class Thumbnail(Struct, gc=False, frozen=True, kw_only=True):
    """Describes one JPEG frame that follows the header (see the module docstring)."""

    role: Literal["vehicle", "plate", "face", "scene"]
    width: Annotated[int, Meta(ge=1, le=8192)]
    height: Annotated[int, Meta(ge=1, le=8192)]


class Sighting(Struct, gc=False, frozen=True, kw_only=True, tag_field="kind", tag="sighting"):
    """One vehicle pass seen by one camera."""

    event_id: EventId
    camera_id: Id
    captured_at: Seconds
    vehicle: Vehicle | None = None
    plate: Plate | None = None
    track_frames: Count = 1
    track_seconds: Seconds = 0.0
    thumbnails: Annotated[list[Thumbnail], Meta(max_length=MAX_THUMBNAILS_PER_ITEM)] = []


class FaceObservation(Struct, gc=False, frozen=True, kw_only=True, tag_field="kind", tag="face"):
    """A face seen by a camera: embedding only, for watchlist matching at central.

    ``embedding`` is little-endian float16, ``dim`` values. Central compares it against the
    enrolled watchlist and keeps nothing of a face that matches no one. ``event_id`` is the
    observation id: the key under which the agent keeps the face's crop (edge only; central
    refuses a face observation that carries thumbnails). One is sent per face track.
    """

    event_id: EventId
    camera_id: Id
    captured_at: Seconds
    box: Box
    quality: Confidence
    embedding: Annotated[bytes, Meta(max_length=4096)]
    dim: Annotated[int, Meta(ge=1, le=2048)]
    model: ShortText = ""
    thumbnails: Annotated[list[Thumbnail], Meta(max_length=MAX_THUMBNAILS_PER_ITEM)] = []


Item = Sighting | FaceObservation
Frame = bytes | memoryview  # a thumbnail frame, received without copying


class SightingBatch(_Message, frozen=True, tag="batch"):
    """Items from one agent; frames follow the header (see the module docstring)."""

    agent_id: Id
    batch_id: Count
    items: Annotated[list[Item], Meta(max_length=MAX_ITEMS_PER_BATCH)]
    sent_at: Seconds = 0.0


class Rejected(Struct, gc=False, frozen=True, array_like=True):
    """An item central refused for good: ``[index in batch, reason]``."""

    index: Count
    reason: str


class Ack(_Message, frozen=True, tag="ack"):
    """Central's answer to a hello (``ref`` = its msg_id) or a batch (``ref`` = batch_id)."""

    ref: Count
    status: Literal["ok", "rejected"] = "ok"
    stored: Count = 0
    duplicates: Count = 0
    rejected: list[Rejected] = []
    error: str = ""


class CropRequest(_Message, frozen=True, tag="crop_request"):
    """Central asks for the face crop of one observation (schema 1.1; only on a match)."""

    request_id: Count
    observation_id: EventId


class CropReply(_Message, frozen=True, tag="crop_reply"):
    """An agent's answer to ``CropRequest``; with ``status="ok"`` the JPEG frame follows."""

    agent_id: Id
    request_id: Count
    observation_id: EventId
    status: Literal["ok", "expired"]


Message = AgentHello | Heartbeat | SightingBatch | Ack | CropRequest | CropReply


class _Envelope(Struct, gc=False, forbid_unknown_fields=False):
    kind: str = ""
    schema: str = ""


_encoder = msgspec.msgpack.Encoder()
_decoder: msgspec.msgpack.Decoder[Message] = msgspec.msgpack.Decoder(Message)
_envelope_decoder = msgspec.msgpack.Decoder(_Envelope)


def encode(message: Message) -> bytes:
    """Encode a message header to MessagePack."""
    return _encoder.encode(message)


def to_builtins(message: Message | Item) -> dict[str, object]:
    """The message as plain dicts and lists (what a MessagePack library would produce)."""
    out: dict[str, object] = msgspec.to_builtins(message)
    return out


def encode_item(item: Item) -> bytes:
    """Encode one batch item alone (the edge spool stores items this way)."""
    return _encoder.encode(item)


_item_decoder: msgspec.msgpack.Decoder[Item] = msgspec.msgpack.Decoder(Item)  # type: ignore[arg-type]


def decode_item(data: bytes) -> Item:
    """Decode one item written by :func:`encode_item`."""
    try:
        return _item_decoder.decode(data)
    except msgspec.DecodeError as err:
        raise WireError(f"malformed item: {err}") from err


def check_version(schema: str) -> None:
    """Raise ``UnsupportedVersion`` unless ``schema`` is ``"MAJOR.MINOR"`` with a known major."""
    major, _, minor = schema.partition(".")
    if not (major.isascii() and major.isdigit() and minor.isascii() and minor.isdigit()):
        raise UnsupportedVersion(f"expected schema 'MAJOR.MINOR', got {schema!r}")
    if int(major) != SCHEMA_MAJOR:
        raise UnsupportedVersion(
            f"schema major version {major} is not supported (this build speaks {SCHEMA})"
        )


def peek(header: bytes) -> tuple[str, str]:
    """Return ``(kind, schema)`` of a header without validating the rest."""
    try:
        env = _envelope_decoder.decode(header)
    except msgspec.DecodeError as err:
        raise WireError(f"header is not a MessagePack map with 'kind' and 'schema': {err}") from err
    return env.kind, env.schema


def decode(header: bytes) -> Message:
    """Decode and validate a header; refuse unknown major versions first."""
    kind, schema = peek(header)
    check_version(schema)
    try:
        return _decoder.decode(header)
    except msgspec.ValidationError as err:
        raise WireError(f"invalid {kind or 'message'}: {err}") from err
    except msgspec.DecodeError as err:
        raise WireError(f"malformed {kind or 'message'}: {err}") from err


def new_event_id(now: float | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48-bit millisecond time, then random bits; sorts by time."""
    ms = int((time.time() if now is None else now) * 1000)
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= (rand >> 68) << 64 & (0xFFF << 64)  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    return str(uuid.UUID(int=value))


class _LooseBatch(Struct, gc=False, forbid_unknown_fields=False, kw_only=True):
    agent_id: Id
    batch_id: Count
    items: Annotated[list[msgspec.Raw], Meta(max_length=MAX_ITEMS_PER_BATCH)]


class _ThumbCount(Struct, gc=False, forbid_unknown_fields=False):
    thumbnails: Annotated[list[msgspec.Raw], Meta(max_length=MAX_THUMBNAILS_PER_ITEM)] = []


_loose_batch_decoder = msgspec.msgpack.Decoder(_LooseBatch)
_batch_decoder = msgspec.msgpack.Decoder(SightingBatch)
_thumb_count_decoder = msgspec.msgpack.Decoder(_ThumbCount)


class BatchParts(Struct, gc=False, frozen=True):
    """A batch split for per-item validation: good items, refused items, and their frames."""

    agent_id: str
    batch_id: int
    items: list[tuple[int, Item, list[Frame]]]
    rejected: list[Rejected]


def split_batch(header: bytes, frames: Sequence[Frame]) -> BatchParts:
    """Validate a batch item by item, so one bad item does not sink the others.

    Raises ``WireError`` when the batch as a whole is unusable: not a batch, unknown major
    version, or frames that do not match what the items describe (e.g. a missing thumbnail).
    """
    kind, schema = peek(header)
    check_version(schema)
    if kind != "batch":
        raise WireError(f"expected a batch, got kind {kind!r}")
    try:  # the common case: the whole batch is valid, one decode call
        batch = _batch_decoder.decode(header)
        decoded: list[tuple[Item | None, int, str]] = [
            (item, len(item.thumbnails), "") for item in batch.items
        ]
        return _assemble(batch.agent_id, batch.batch_id, decoded, frames)
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass
    try:
        loose = _loose_batch_decoder.decode(header)
    except (msgspec.ValidationError, msgspec.DecodeError) as err:
        raise WireError(f"invalid batch: {err}") from err
    decoded = []
    for raw in loose.items:
        try:
            item = _item_decoder.decode(raw)
            decoded.append((item, len(item.thumbnails), ""))
            continue
        except (msgspec.ValidationError, msgspec.DecodeError) as err:
            reason = f"invalid item: {err}"
        try:
            count = len(_thumb_count_decoder.decode(raw).thumbnails)
        except (msgspec.ValidationError, msgspec.DecodeError) as err:
            raise WireError(f"batch {loose.batch_id}: {reason}; its frames unknown") from err
        decoded.append((None, count, reason))
    return _assemble(loose.agent_id, loose.batch_id, decoded, frames)


def _assemble(
    agent_id: str,
    batch_id: int,
    decoded: list[tuple[Item | None, int, str]],
    frames: Sequence[Frame],
) -> BatchParts:
    expected = sum(count for _, count, _ in decoded)
    if len(frames) != expected:
        raise WireError(
            f"batch {batch_id}: items describe {expected} thumbnail frames, "
            f"{len(frames)} followed the header"
        )
    items: list[tuple[int, Item, list[Frame]]] = []
    rejected: list[Rejected] = []
    pos = 0
    for index, (item, count, reason) in enumerate(decoded):
        own = list(frames[pos : pos + count])
        pos += count
        problem = reason or _frames_problem(own)
        if item is None or problem:
            rejected.append(Rejected(index, problem))
        else:
            items.append((index, item, own))
    return BatchParts(agent_id, batch_id, items, rejected)


def _frames_problem(frames: list[Frame]) -> str:
    for i, frame in enumerate(frames):
        if len(frame) > MAX_THUMBNAIL_BYTES:
            return f"thumbnail {i} is {len(frame)} bytes, at most {MAX_THUMBNAIL_BYTES} allowed"
        if bytes(frame[:2]) != b"\xff\xd8":
            return f"thumbnail {i} is not a JPEG (starts {bytes(frame[:4]).hex()}, expected ffd8)"
    return ""


def batch_ref(header: bytes) -> int | None:
    """Best effort: the batch id of an unusable batch, so it can still be answered."""
    try:
        return _loose_batch_decoder.decode(header).batch_id
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
