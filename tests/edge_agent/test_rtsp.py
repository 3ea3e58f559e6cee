"""RTSP cameras against a real RTSP server on 127.0.0.1 serving frames of a road video.

The server (``rtsp_server.py``) sends RTP/JPEG, so every frame that OpenCV's FFmpeg
backend decodes can be matched to the JPEG it came from.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from edge_agent.capture import CameraConfig, CameraSource, CapturedFrame, open_source
from tests.edge_agent.rtsp_server import RtspServer, parse_jpeg, rtp_packets
from tests.edge_agent.test_capture import VIDEOS, camera, wait_for

CLIP = "vehiclecounting__input_video.mp4"
SHAPE = (352, 640, 3)
USER, PASSWORD = "varta", "Pa55-s3cret"
OPTIONS = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
# What each OPENCV_FFMPEG_CAPTURE_OPTIONS value makes FFmpeg ask for. Unset, OpenCV sets
# rtsp_flags=prefer_tcp; any value replaces that default.
TRANSPORTS = [
    pytest.param(None, "tcp", id="opencv-default-tcp"),
    pytest.param("rtsp_transport;tcp", "tcp", id="tcp"),
    pytest.param("rtsp_transport;udp", "udp", id="udp"),
]


@pytest.fixture(scope="module")
def road(shared_data: Path) -> list[NDArray[Any]]:
    """50 frames of the street camera clip, 4 frames apart (8 s of traffic)."""
    cap = cv2.VideoCapture(str(shared_data / VIDEOS / CLIP))
    frames = []
    for i in range(200):
        ok, image = cap.read()
        assert ok, f"{CLIP} ended after {i} frames"
        if i % 4 == 0:
            frames.append(image)
    cap.release()
    return frames


@pytest.fixture(scope="module")
def served(road: list[NDArray[Any]]) -> list[NDArray[Any]]:
    """The road frames as a receiver should see them: JPEG-compressed, then decoded."""
    frames: list[NDArray[Any]] = []
    for image in road:
        decoded = cv2.imdecode(np.frombuffer(jpeg(image), np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None
        frames.append(decoded)
    return frames


@pytest.fixture
def server(road: list[NDArray[Any]]) -> Iterator[RtspServer]:
    """A running 25 fps RTSP camera that wants ``USER`` and ``PASSWORD``."""
    srv = RtspServer([jpeg(f) for f in road], fps=25.0, user=USER, password=PASSWORD)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def sources() -> Iterator[list[CameraSource]]:
    """Sources a test starts; all stopped afterwards."""
    started: list[CameraSource] = []
    yield started
    for s in started:
        s.stop()


def jpeg(image: NDArray[Any], *params: int) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 80, *params])
    assert ok
    return data.tobytes()


def use_options(monkeypatch: pytest.MonkeyPatch, options: str | None) -> None:
    """Set (or unset) the FFmpeg options OpenCV reads at every open."""
    if options is None:
        monkeypatch.delenv(OPTIONS, raising=False)
    else:
        monkeypatch.setenv(OPTIONS, options)


def rtsp_camera(
    sources: list[CameraSource], server: RtspServer, password: str = PASSWORD, **fields: object
) -> CameraSource:
    fields.setdefault("open_timeout_s", 3.0)
    fields.setdefault("read_timeout_s", 1.5)
    source = open_source(camera(server.url(USER, password), "rtsp", **fields))
    sources.append(source)
    source.start()
    return source


def redacted(server: RtspServer) -> str:
    return server.url(USER, "***")


def match(image: NDArray[Any], served: list[NDArray[Any]]) -> tuple[int, float]:
    """The served frame ``image`` is closest to, and their mean absolute difference."""
    diffs = [cv2.norm(image, s, cv2.NORM_L1) / image.size for s in served]
    best = int(np.argmin(diffs))
    return best, diffs[best]


def take(source: CameraSource, seconds: float) -> list[CapturedFrame]:
    """Every frame the source offers for ``seconds``."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if (f := source.latest(left)) is not None:
            frames.append(f)
    return frames


def capture_thread_alive(config: CameraConfig) -> bool:
    name = f"capture-{config.camera_id}"
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


SAMPLING = cv2.IMWRITE_JPEG_SAMPLING_FACTOR


@pytest.mark.parametrize(
    ("size", "params", "kind", "error"),
    [
        ((640, 352), [], 1, None),
        ((2040, 16), [SAMPLING, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422], 0, None),
        ((640, 352), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1], None, "restarts, got FF C2"),
        ((640, 352), [cv2.IMWRITE_JPEG_RST_INTERVAL, 4], None, "restarts, got FF DD"),
        ((640, 352), [cv2.IMWRITE_JPEG_OPTIMIZE, 1], None, "[0, 1], optimised"),
        ((640, 352), [SAMPLING, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444], None, "[17, 17, 17]"),
        ((636, 352), [], None, "multiples of 8 up to 2040, got 636x352"),
        ((2048, 16), [], None, "multiples of 8 up to 2040, got 2048x16"),
    ],
    ids=["420", "422", "progressive", "restarts", "optimised", "444", "636-wide", "2048-wide"],
)
def test_server_sends_only_jpegs_rtp_jpeg_can_carry(
    road: list[NDArray[Any]],
    size: tuple[int, int],
    params: list[int],
    kind: int | None,
    error: str | None,
) -> None:
    data = jpeg(cv2.resize(road[0], size), *params)
    if error is not None:
        with pytest.raises(ValueError, match=re.escape(error)):
            parse_jpeg(data)
        return
    scan = parse_jpeg(data)
    assert (scan.width, scan.height, scan.kind, len(scan.qtables)) == (*size, kind, 128)
    packets = rtp_packets(scan, 65534, 1234, 99)  # sequence numbers wrap
    assert [int.from_bytes(p[2:4], "big") for p in packets[:3]] == [65534, 65535, 0]
    assert max(len(p) for p in packets) == 12 + 1400
    assert [p[1] >> 7 for p in packets] == [0] * (len(packets) - 1) + [1]  # marker: last
    assert sum(len(p) - 20 for p in packets) == len(scan.scan) + 4 + 128  # + table header


@pytest.mark.parametrize(("options", "transport"), TRANSPORTS)
def test_rtsp_camera_delivers_the_road_frames_without_leaking_its_password(
    server: RtspServer,
    served: list[NDArray[Any]],
    sources: list[CameraSource],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    options: str | None,
    transport: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    use_options(monkeypatch, options)
    source = rtsp_camera(sources, server)
    first = source.latest(10.0)
    assert first is not None and first.image.shape == SHAPE
    take(source, 0.5)  # frames FFmpeg read while probing the stream come in a burst
    before, began = source.status().frames_decoded, time.monotonic()
    frames = take(source, 1.6)
    rate = (source.status().frames_decoded - before) / (time.monotonic() - began)
    assert 20 < rate < 30  # the server sends 25 fps
    sent, decoded = server.frames_sent, source.status().frames_decoded
    assert sent - 3 <= decoded <= sent + 1  # none lost: at most a frame or two in flight
    assert {f.image.shape for f in frames} == {SHAPE}
    # Frame k of a session is served frame k % 50, rebuilt by FFmpeg from the scan and
    # tables: a wrong header would differ by far more than decoder rounding (about 1),
    # a lost or repeated frame would shift the index.
    samples = [first, *frames[::8]]
    matches = [match(f.image, served) for f in samples]
    assert [i for i, _ in matches] == [f.index % len(served) for f in samples], matches
    assert max(diff for _, diff in matches) < 2.5, matches
    status = source.status()
    assert status.online and status.reconnects == 0 and status.error == ""
    assert server.plays == [transport] and server.rejected == 0
    out, err = capfd.readouterr()
    assert f"opened rtsp {redacted(server)}" in caplog.text
    assert PASSWORD not in caplog.text + out + err + status.error
    print(f"{transport}: {rate:.1f} fps decoded, frames matched {matches}")


@pytest.mark.parametrize(("options", "transport"), [TRANSPORTS[0], TRANSPORTS[2]])
def test_rtsp_camera_reconnects_when_the_server_comes_back(
    server: RtspServer,
    served: list[NDArray[Any]],
    sources: list[CameraSource],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    options: str | None,
    transport: str,
) -> None:
    caplog.set_level(logging.WARNING, logger="edge_agent.sources")
    use_options(monkeypatch, options)
    # A read timeout far above how fast a closed connection must be noticed.
    source = rtsp_camera(sources, server, read_timeout_s=5.0)
    first = source.latest(10.0)
    assert first is not None and first.image.shape == SHAPE
    port = server.port

    server.stop()
    died = time.monotonic()
    wait_for(lambda: not source.status().online, 5.0)
    assert time.monotonic() - died < 2.0
    wait_for(lambda: source.status().reconnects >= 3, 5.0)  # retrying, not stuck
    assert capture_thread_alive(source.config)
    assert source.status().error == f"cannot open rtsp {redacted(server)}"

    server.start()
    assert server.port == port
    wait_for(lambda: source.status().online, 10.0)
    frame = source.latest(5.0)
    assert frame is not None and frame.image.shape == SHAPE and frame.index > first.index
    assert match(frame.image, served)[1] < 2.5
    assert source.latest(1.0) is not None  # frames keep coming
    status = source.status()
    assert status.reconnects >= 3 and status.fps_in > 0
    assert server.plays == [transport, transport]
    offline = [r.getMessage() for r in caplog.records if "offline" in r.getMessage()]
    assert offline == [
        f"camera cam-rtsp: offline: rtsp stream {redacted(server)} stopped sending frames "
        "(closed, or nothing for 5 s)",
        f"camera cam-rtsp: offline: cannot open rtsp {redacted(server)}",
    ]
    out, err = capfd.readouterr()
    assert PASSWORD not in caplog.text + out + err


def test_stalled_rtsp_stream_times_out_and_recovers(
    server: RtspServer, sources: list[CameraSource], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge_agent.sources")
    source = rtsp_camera(sources, server, read_timeout_s=1.5, open_timeout_s=2.0)
    assert source.latest(10.0) is not None

    server.stall()  # connections stay open, frames stop: a hung encoder or a lost route
    stalled = time.monotonic()
    wait_for(lambda: not source.status().online, 5.0)
    took = time.monotonic() - stalled
    print(f"stall noticed after {took:.2f} s")
    assert 1.3 < took < 3.0
    # The server still answers RTSP, so a reopen gets as far as PLAY; OpenCV gives up
    # probing for a frame after open_timeout_s and calls the stream open with no frame
    # size, which the source refuses: a second failure, each logged once.
    wait_for(lambda: source.status().reconnects >= 3, 8.0)
    assert len(server.plays) >= 2 and not source.status().online
    stopped = (
        f"rtsp stream {redacted(server)} stopped sending frames (closed, or nothing for 1.5 s)"
    )
    no_frame = f"rtsp {redacted(server)} sent no frame within 2 s"
    assert source.status().error == no_frame
    assert [r.getMessage() for r in caplog.records] == [
        f"camera cam-rtsp: offline: {stopped}",
        f"camera cam-rtsp: offline: {no_frame}",
    ]

    server.stall(False)
    wait_for(lambda: source.status().online, 6.0)
    frame = source.latest(5.0)
    assert frame is not None and frame.image.shape == SHAPE
    assert source.latest(1.0) is not None  # frames keep coming


@pytest.mark.parametrize(
    ("user", "password", "path", "rejected"),
    [
        # FFmpeg answers the challenge once, then gives up.
        pytest.param(USER, "wrong", "/cam", 1, id="wrong-password"),
        pytest.param("", "", "/cam", 0, id="no-credentials"),
        pytest.param(USER, PASSWORD, "/nope", 0, id="wrong-path"),
    ],
)
def test_rtsp_camera_that_refuses_us_stays_offline(
    server: RtspServer,
    sources: list[CameraSource],
    capfd: pytest.CaptureFixture[str],
    user: str,
    password: str,
    path: str,
    rejected: int,
) -> None:
    url = server.url(user, password).replace("/cam", path)
    source = open_source(camera(url, "rtsp", open_timeout_s=3.0))
    sources.append(source)
    source.start()
    wait_for(lambda: source.status().reconnects >= 2, 5.0)
    status = source.status()
    shown = server.url(user, "***" if user else "").replace("/cam", path)
    assert status.error == f"cannot open rtsp {shown}"
    assert not status.online and status.frames_decoded == 0
    # Each failed open is one reconnect; one more open may be under way.
    assert status.reconnects * rejected <= server.rejected <= (status.reconnects + 1) * rejected
    assert server.plays == []
    out, err = capfd.readouterr()
    assert not password or password not in out + err
