"""Camera sources on real clips, real files in temp folders and a real HTTP MJPEG server."""

from __future__ import annotations

import csv
import itertools
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import msgspec
import pydantic
import pytest

from edge_agent.capture import (
    CameraConfig,
    CameraHub,
    CapturedFrame,
    SourceStatus,
    open_source,
)
from edge_agent.sources.base import CameraSource
from shared import wire

VIDEOS = "traffic-video/videos"
FRAMES = "traffic-video/frames"


def camera(source: str | Path, kind: str = "file", **fields: Any) -> CameraConfig:
    """A camera config with quick retries, for tests."""
    fields.setdefault("reconnect_min_s", 0.1)
    fields.setdefault("reconnect_max_s", 0.4)
    return CameraConfig(camera_id=f"cam-{kind}", kind=kind, source=str(source), **fields)


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``cond`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def drain(source: CameraSource, timeout: float = 30.0) -> list[CapturedFrame]:
    """Every frame of a finite source."""
    frames: list[CapturedFrame] = []
    deadline = time.monotonic() + timeout
    while not source.finished:
        assert time.monotonic() < deadline
        if (f := source.latest(0.5)) is not None:
            frames.append(f)
    return frames


@pytest.fixture
def running() -> Iterator[list[CameraSource]]:
    """Sources a test starts; all stopped afterwards."""
    sources: list[CameraSource] = []
    yield sources
    for s in sources:
        s.stop()


def start(running: list[CameraSource], config: CameraConfig) -> CameraSource:
    source = open_source(config)
    running.append(source)
    source.start()
    return source


def manifest(shared_data: Path) -> dict[str, dict[str, str]]:
    with (shared_data / VIDEOS / ".." / "videos_manifest.csv").open() as f:
        return {row["file"].split("/")[-1]: row for row in csv.DictReader(f)}


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"kind": "file", "source": "a.mp4", "loop": True}, None),
        ({"kind": "rtsp", "source": "rtsp://u:p@10.0.0.5/stream1"}, None),
        ({"kind": "usb", "source": "/dev/video0", "roi": [[0, 0], [1, 0], [1, 1]]}, None),
        ({"kind": "snapshots", "source": "/srv/ftp/cam1"}, None),
        ({"kind": "rtsp", "source": "http://10.0.0.5/stream"}, pydantic.ValidationError),
        ({"kind": "rtsp", "source": "rtsp://x/", "loop": True}, pydantic.ValidationError),
        ({"kind": "snapshots", "source": "/d", "frame_step": 2}, pydantic.ValidationError),
        ({"kind": "file", "source": "a", "roi": [[0, 0], [1, 1]]}, pydantic.ValidationError),
        (
            {"kind": "file", "source": "a", "roi": [[0, 0], [2, 0], [1, 1]]},
            pydantic.ValidationError,
        ),
        ({"kind": "webcam", "source": "0"}, pydantic.ValidationError),
        ({"kind": "rtsp", "source": "rtsp://x/", "when_full": "wait"}, pydantic.ValidationError),
        ({"kind": "file", "source": "a", "fps": 5}, pydantic.ValidationError),
        (
            {"kind": "snapshots", "source": "/d", "snapshots": {"after": "move"}},
            pydantic.ValidationError,
        ),
    ],
)
def test_camera_config_validation(fields: dict[str, Any], error: type[Exception] | None) -> None:
    data = {"camera_id": "cam1", **fields}
    if error is None:
        CameraConfig.model_validate(data)
    else:
        with pytest.raises(error):
            CameraConfig.model_validate(data)


def test_every_config_field_is_described() -> None:
    cfg = camera("a.mp4")
    for model in (type(cfg), type(cfg.snapshots), type(cfg.motion)):
        assert all(f.description for f in model.model_fields.values()), model.__name__


@pytest.mark.parametrize(
    ("kind", "realtime", "policy"),
    [
        ("file", True, "drop"),
        ("file", False, "wait"),
        ("snapshots", None, "wait"),
        ("rtsp", None, "drop"),
    ],
)
def test_full_policy_defaults(kind: str, realtime: bool | None, policy: str) -> None:
    source = {"rtsp": "rtsp://h/s"}.get(kind, "/x")
    extra = {} if realtime is None else {"realtime": realtime}
    assert camera(source, kind, **extra).full_policy == policy


def test_hub_refuses_duplicate_camera_ids() -> None:
    with pytest.raises(ValueError, match="repeated: cam-file"):
        CameraHub([camera("a.mp4"), camera("b.mp4")])


# -- video files ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "clip",
    [
        "intel__car-detection.mp4",
        "bgslibrary__video02.avi",
        "udacity__test_video.mp4",
        "vehiclecounting__input_video.mp4",
    ],
)
def test_real_clip_decodes_every_frame_at_its_fps(
    shared_data: Path, running: list[CameraSource], clip: str
) -> None:
    meta = manifest(shared_data)[clip]
    began = time.perf_counter()
    source = start(running, camera(shared_data / VIDEOS / clip, realtime=False))
    frames = drain(source)
    elapsed = time.perf_counter() - began
    w, h, fps = int(meta["width"]), int(meta["height"]), float(meta["fps"])
    print(f"{clip}: {w}x{h} decoded {len(frames)} frames at {len(frames) / elapsed:.0f} fps")
    assert len(frames) == int(meta["frames"])
    assert [f.index for f in frames] == list(range(len(frames)))
    assert {f.image.shape for f in frames} == {(h, w, 3)}
    gaps = {round(b.captured_at - a.captured_at, 4) for a, b in itertools.pairwise(frames)}
    assert gaps == {round(1 / fps, 4)}
    status = source.status()
    assert status.finished and not status.online and status.error == ""
    assert status.frames_dropped == 0 and status.frames_taken == len(frames)


def test_realtime_file_plays_at_native_fps(shared_data: Path, running: list[CameraSource]) -> None:
    source = start(running, camera(shared_data / VIDEOS / "udacity__test_video.mp4"))
    began = time.monotonic()
    frames = drain(source)
    elapsed = time.monotonic() - began
    assert 1.3 < elapsed < 4.0  # 38 frames at 25 fps is 1.52 s
    assert len(frames) >= 30  # realtime may drop a frame the test did not take in time


@pytest.mark.parametrize(
    ("fields", "offered"),
    [({"frame_step": 5}, 150), ({"max_fps": 12.5}, 374), ({"max_fps": 5}, 150)],
)
def test_frame_step_and_max_fps_thin_a_25_fps_clip(
    shared_data: Path, running: list[CameraSource], fields: dict[str, Any], offered: int
) -> None:
    clip = shared_data / VIDEOS / "bgslibrary__video02.avi"
    source = start(running, camera(clip, realtime=False, **fields))
    frames = drain(source)
    status = source.status()
    assert len(frames) == offered and status.frames_decoded == 748
    assert status.frames_skipped == 748 - offered


def test_slow_consumer_drops_are_counted(shared_data: Path, running: list[CameraSource]) -> None:
    clip = shared_data / VIDEOS / "bgslibrary__video02.avi"
    source = start(running, camera(clip, realtime=False, when_full="drop", buffer=2))
    taken = []
    while not source.finished:
        if (f := source.latest(0.5)) is not None:
            taken.append(f)
        time.sleep(0.01)  # a pipeline slower than the decoder
    s = source.status()
    assert s.frames_offered == 748 and s.frames_taken == len(taken)
    assert s.frames_dropped == s.frames_offered - s.frames_taken > 0
    assert source.stats().frames_dropped == s.frames_dropped
    assert [f.index for f in taken] == sorted(f.index for f in taken)


@pytest.mark.parametrize(
    ("clip", "keep", "error", "finished"),
    [
        # moov atom first: plays until the data runs out, then says so.
        ("intel__car-detection.mp4", 0.6, "ended after", True),
        # moov atom last: cannot be opened at all; retried, never kills anything.
        ("vehiclecounting__input_video.mp4", 0.6, "cannot open video file", False),
    ],
)
def test_truncated_video_gives_a_clear_error(
    shared_data: Path,
    tmp_path: Path,
    clip: str,
    keep: float,
    error: str,
    finished: bool,
) -> None:
    data = (shared_data / VIDEOS / clip).read_bytes()
    broken = tmp_path / clip
    broken.write_bytes(data[: int(len(data) * keep)])
    good = camera(shared_data / VIDEOS / "udacity__test_video.mp4", realtime=False)
    bad = camera(broken, realtime=False).model_copy(update={"camera_id": "broken"})
    with CameraHub([good, bad]) as hub:
        counts = {"cam-file": 0, "broken": 0}
        deadline = time.monotonic() + 20
        while hub.sources[0].status().finished is False or (
            finished and not hub.sources[1].finished
        ):
            assert time.monotonic() < deadline
            for f in hub.next_frames(0.5):
                counts[f.camera_id] += 1
        wait_for(lambda: error in hub.sources[1].status().error)
        broken_status = hub.sources[1].status()
        stats = hub.stats()
    assert counts["cam-file"] == 38
    assert broken_status.finished is finished
    assert (counts["broken"] > 0) is finished
    assert error in stats[1].error and not stats[1].online
    print(f"{clip} cut to {keep:.0%}: {broken_status.error}")


def test_file_that_disappears_goes_offline_and_comes_back(
    shared_data: Path, tmp_path: Path, running: list[CameraSource]
) -> None:
    clip = tmp_path / "loop.mp4"
    shutil.copy(shared_data / VIDEOS / "udacity__test_video.mp4", clip)
    source = start(running, camera(clip, loop=True))
    wait_for(lambda: source.status().online)
    hidden = tmp_path / "hidden.mp4"
    clip.rename(hidden)
    wait_for(lambda: not source.status().online)
    assert "not found" in source.stats().error
    hidden.rename(clip)
    wait_for(lambda: source.status().online)
    assert source.status().reconnects >= 1


def test_unreachable_rtsp_camera_is_offline_without_leaking_its_password(
    running: list[CameraSource],
) -> None:
    cfg = camera("rtsp://admin:s3cret@127.0.0.1:9/Streaming/Channels/101", "rtsp")
    source = start(running, cfg)
    wait_for(lambda: source.status().reconnects >= 2)
    error = source.stats().error
    assert error == "cannot open rtsp rtsp://admin:***@127.0.0.1:9/Streaming/Channels/101"
    assert not source.stats().online


def test_missing_usb_device_is_reported_offline(running: list[CameraSource]) -> None:
    source = start(running, camera("/dev/video97", "usb"))
    wait_for(lambda: "/dev/video97 not found" in source.stats().error)
    assert not source.stats().online


# -- HTTP MJPEG stream ----------------------------------------------------------------------


class MjpegServer:
    """A real MJPEG camera on 127.0.0.1 that can be switched off and on at the same port."""

    def __init__(self, jpegs: list[bytes]) -> None:
        self.jpegs = jpegs
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._live = threading.Event()

    def start(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                try:
                    while outer._live.is_set():
                        jpeg = outer.jpegs[i % len(outer.jpegs)]
                        head = b"--frame\r\nContent-Type: image/jpeg\r\n"
                        head += b"Content-Length: %d\r\n\r\n" % len(jpeg)
                        self.wfile.write(head + jpeg + b"\r\n")
                        i += 1
                        time.sleep(0.04)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._live.set()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._live.clear()  # ends open streams: the camera "dies"
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def test_http_mjpeg_stream_reconnects_after_the_camera_dies(
    shared_data: Path, running: list[CameraSource]
) -> None:
    jpegs = [p.read_bytes() for p in sorted((shared_data / FRAMES).glob("intel__car*"))]
    server = MjpegServer(jpegs)
    server.start()
    try:
        cfg = camera(f"http://127.0.0.1:{server.port}/video.mjpg", "http", read_timeout_s=2)
        source = start(running, cfg)
        first = source.latest(10.0)
        assert first is not None and first.image.shape == (432, 768, 3)
        server.stop()
        wait_for(lambda: not source.status().online)
        assert "http" in source.stats().error
        server.start()
        wait_for(lambda: source.status().online)
        frame = source.latest(5.0)
        assert frame is not None and frame.index > first.index
        status = source.status()
        assert status.reconnects >= 1 and status.fps_in > 0
    finally:
        server.stop()


# -- snapshot folders -----------------------------------------------------------------------


def test_snapshot_folder_picks_up_new_files_once(
    shared_data: Path,
    tmp_path: Path,
    running: list[CameraSource],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="edge_agent.sources")
    jpegs = sorted((shared_data / FRAMES).glob("vehiclecounting*"))
    inbox, done = tmp_path / "inbox", tmp_path / "done"
    inbox.mkdir()
    shutil.copy(jpegs[0], inbox / "old.jpg")  # there before start: skipped
    cfg = camera(
        inbox,
        "snapshots",
        snapshots={"after": "move", "move_to": str(done), "poll_s": 0.05, "settle_s": 1.0},
    )
    source = start(running, cfg)
    wait_for(lambda: source.status().online)
    shutil.copy(jpegs[1], inbox / "a.jpg")
    frame = source.latest(5.0)
    assert frame is not None and frame.source == str(inbox / "a.jpg")
    assert frame.image.shape == (352, 640, 3)

    # Written slowly in two parts: must not be read before the second part lands.
    data = jpegs[2].read_bytes()
    with (inbox / "b.JPG").open("wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(0.5)
        assert source.latest(0.0) is None
        f.write(data[len(data) // 2 :])
    frame = source.latest(5.0)
    assert frame is not None and frame.source.endswith("b.JPG")
    assert frame.image.shape == (352, 640, 3)

    (inbox / "bad.jpg").write_bytes(b"\xff\xd8" + bytes(range(256)) * 40 + b"\xff\xd9")
    (inbox / "cut.jpg").write_bytes(data[: len(data) // 3])
    (inbox / "notes.txt").write_text("not a snapshot")
    wait_for(lambda: source.status().corrupt == 2)
    logged = [r.getMessage() for r in caplog.records]
    assert any(m.endswith("bad.jpg: JPEG decoder failed") for m in logged), logged
    assert any("cut.jpg: truncated JPEG" in m and "no end-of-image marker" in m for m in logged)
    assert source.latest(0.3) is None
    assert sorted(p.name for p in done.iterdir()) == ["a.jpg", "b.JPG", "bad.jpg", "cut.jpg"]
    assert sorted(p.name for p in inbox.iterdir()) == ["notes.txt", "old.jpg"]
    assert source.status().frames_taken == 2


def test_snapshot_folder_removed_goes_offline_and_comes_back(
    shared_data: Path, tmp_path: Path, running: list[CameraSource]
) -> None:
    jpeg = next((shared_data / FRAMES).glob("intel__car*"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cfg = camera(inbox, "snapshots", snapshots={"poll_s": 0.05, "after": "delete"})
    source = start(running, cfg)
    wait_for(lambda: source.status().online)  # files there before the first scan are old
    shutil.copy(jpeg, inbox / "1.jpg")
    assert source.latest(5.0) is not None
    wait_for(lambda: not (inbox / "1.jpg").exists())
    inbox.rmdir()
    wait_for(lambda: not source.status().online)
    assert "is missing" in source.stats().error
    inbox.mkdir()
    shutil.copy(jpeg, inbox / "2.jpg")
    frame = source.latest(5.0)
    assert frame is not None and frame.source.endswith("2.jpg")
    assert source.status().online


# -- hub -----------------------------------------------------------------------------------


def test_hub_batches_across_cameras_and_feeds_the_heartbeat(shared_data: Path) -> None:
    clips = ["intel__car-detection.mp4", "bgslibrary__video02.avi"]
    configs = [
        camera(shared_data / VIDEOS / c, realtime=False).model_copy(update={"camera_id": f"c{i}"})
        for i, c in enumerate(clips)
    ]
    with CameraHub(configs) as hub:
        batches = []
        while not hub.finished:
            batch = hub.next_frames(1.0)
            assert len({f.camera_id for f in batch}) == len(batch)
            batches.append(batch)
        stats = hub.stats()
        status = hub.status()
        infos = hub.cameras()
    assert sum(len(b) for b in batches) == 377 + 748
    assert any(len(b) == 2 for b in batches)
    assert [s.camera_id for s in stats] == ["c0", "c1"]
    assert all(isinstance(s, SourceStatus) and s.finished for s in status)
    beat = wire.Heartbeat(agent_id="agent", sent_at=time.time(), cameras=stats)
    assert msgspec.msgpack.decode(msgspec.msgpack.encode(beat), type=wire.Heartbeat) == beat
    assert infos[0] == wire.CameraInfo(camera_id="c0", source_kind="file")


def test_snapshot_rewritten_under_the_same_name_is_read_again(
    shared_data: Path, tmp_path: Path, running: list[CameraSource]
) -> None:
    first, second = sorted((shared_data / FRAMES).glob("bgslibrary__video02*"))[:2]
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    opts = {"poll_s": 0.05, "rescan_s": 0.5}
    source = start(running, camera(inbox, "snapshots", snapshots=opts))
    wait_for(lambda: source.status().online)
    latest = inbox / "latest.jpg"
    shutil.copy(first, latest)
    assert source.latest(5.0) is not None
    time.sleep(0.05)  # a later mtime, as a camera pushing once a second gives
    shutil.copy(second, latest)
    frame = source.latest(5.0)  # rewrites of read files are noticed on the next rescan
    assert frame is not None and frame.index == 1
    assert source.latest(0.5) is None
