"""The wire protocol: plain MessagePack, versioning, per-item validation."""

from __future__ import annotations

import random
import uuid
from typing import Any

import msgpack
import pytest

from bench.loadgen import fake_jpeg, make_sighting
from shared import wire


def _batch(n: int = 2, seed: int = 1) -> tuple[bytes, list[bytes]]:
    rng = random.Random(seed)
    made = [make_sighting(rng) for _ in range(n)]
    header = wire.encode(wire.SightingBatch(agent_id="a1", batch_id=7, items=[s for s, _ in made]))
    return header, [f for _, fs in made for f in fs]


def test_header_is_plain_msgpack() -> None:
    header, frames = _batch()
    data = msgpack.unpackb(header)
    assert data["kind"] == "batch" and data["schema"] == wire.SCHEMA
    item = data["items"][0]
    assert item["kind"] == "sighting"
    assert isinstance(item["plate"]["text"], str)
    assert item["plate"]["candidates"][0][0] == item["plate"]["text"]
    assert [t["role"] for t in item["thumbnails"]] == ["vehicle", "plate"]
    assert all(f.startswith(b"\xff\xd8") for f in frames)  # raw JPEG frames, not base64


def test_round_trip_and_split() -> None:
    header, frames = _batch(3)
    parts = wire.split_batch(header, frames)
    assert (parts.agent_id, parts.batch_id, parts.rejected) == ("a1", 7, [])
    assert [len(f) for _, _, f in parts.items] == [2, 2, 2]
    assert parts.items[1][2] == frames[2:4]


def test_event_ids_are_uuid7_and_time_ordered() -> None:
    ids = [wire.new_event_id(1_700_000_000 + i) for i in range(50)]
    assert all(uuid.UUID(i).version == 7 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (b"\xc1\x00garbage", "not a MessagePack map"),
        (msgpack.packb({"kind": "batch", "schema": "2.0"}), "major version 2"),
        (msgpack.packb({"kind": "batch", "schema": "x"}), "MAJOR.MINOR"),
        (
            msgpack.packb(
                {"kind": "batch", "schema": "1.0", "agent_id": "a", "batch_id": "x", "items": []}
            ),
            "invalid batch",
        ),
        (
            msgpack.packb(
                {"kind": "batch", "schema": "1.0", "agent_id": "a" * 65, "batch_id": 1, "items": []}
            ),
            "invalid batch",
        ),
        (msgpack.packb({"kind": "hello", "schema": "1.0"}), "expected a batch"),
    ],
)
def test_unusable_batches_raise(header: bytes, error: str) -> None:
    with pytest.raises(wire.WireError, match=error):
        wire.split_batch(header, [])


def test_minor_versions_and_unknown_keys_are_accepted() -> None:
    hello = msgpack.packb(
        {
            "kind": "hello",
            "schema": "1.7",
            "agent_id": "a1",
            "software_version": "9",
            "future_field": [1, 2],
        }
    )
    msg = wire.decode(hello)
    assert isinstance(msg, wire.AgentHello) and msg.agent_id == "a1"


def test_bad_item_is_rejected_alone() -> None:
    rng = random.Random(3)
    good, good_frames = make_sighting(rng)
    bad: dict[str, Any] = dict(wire.to_builtins(good))
    bad["plate"]["text"] = "X" * 200  # oversized field
    bad["event_id"] = "not-a-uuid"
    header = msgpack.packb(
        {
            "kind": "batch",
            "schema": "1.0",
            "agent_id": "a1",
            "batch_id": 1,
            "items": [wire.to_builtins(good), bad],
        }
    )
    parts = wire.split_batch(header, [*good_frames, *good_frames])
    assert [i for i, _, _ in parts.items] == [0]
    assert parts.rejected[0].index == 1 and "invalid item" in parts.rejected[0].reason


@pytest.mark.parametrize(
    ("frames", "error"),
    [
        (lambda f: f[:-1], "describe 2 thumbnail frames, 1 followed"),
        (lambda f: [*f, f[0]], "describe 2 thumbnail frames, 3 followed"),
    ],
)
def test_frame_count_must_match(frames, error) -> None:
    header, real = _batch(1)
    with pytest.raises(wire.WireError, match=error):
        wire.split_batch(header, frames(real))


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"PNG not jpeg", "not a JPEG"),
        (fake_jpeg(random.Random(1), wire.MAX_THUMBNAIL_BYTES + 10), "at most"),
    ],
)
def test_bad_thumbnail_rejects_its_item(frame: bytes, reason: str) -> None:
    header, real = _batch(2)
    parts = wire.split_batch(header, [frame, *real[1:]])
    assert [r.index for r in parts.rejected] == [0]
    assert reason in parts.rejected[0].reason
    assert [i for i, _, _ in parts.items] == [1]


def test_crop_messages_are_plain_msgpack_and_round_trip() -> None:
    oid = wire.new_event_id()
    request = wire.CropRequest(request_id=5, observation_id=oid)
    reply = wire.CropReply(agent_id="a1", request_id=5, observation_id=oid, status="ok")
    assert msgpack.unpackb(wire.encode(request)) == {
        "kind": "crop_request",
        "schema": wire.SCHEMA,
        "request_id": 5,
        "observation_id": oid,
    }
    assert wire.decode(wire.encode(request)) == request
    assert wire.decode(wire.encode(reply)) == reply


def test_a_hello_of_schema_1_0_has_no_features_and_a_1_1_hello_lists_crops() -> None:
    old = msgpack.packb(
        {"kind": "hello", "schema": "1.0", "agent_id": "a1", "software_version": "x"}
    )
    hello = wire.decode(old)
    assert isinstance(hello, wire.AgentHello) and hello.features == []
    new = wire.AgentHello(agent_id="a1", software_version="x", features=[wire.FEATURE_CROPS])
    decoded = wire.decode(wire.encode(new))
    assert isinstance(decoded, wire.AgentHello) and decoded.features == ["crops"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"status": "maybe"}, "status"),
        ({"observation_id": "../etc"}, "observation_id"),
        ({"request_id": -1}, "request_id"),
        ({"agent_id": ""}, "agent_id"),
    ],
)
def test_bad_crop_replies_raise(fields: dict[str, Any], error: str) -> None:
    body = {
        "kind": "crop_reply",
        "schema": wire.SCHEMA,
        "agent_id": "a1",
        "request_id": 1,
        "observation_id": "0" * 32,
        "status": "ok",
        **fields,
    }
    with pytest.raises(wire.WireError, match=error):
        wire.decode(msgpack.packb(body))
