"""Tracker and plate voting on synthetic box sequences and plate reads."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from edge_agent.plate_vote import align, vote_plate
from edge_agent.track import Track, Tracker, TrackerConfig
from shared.wire import Plate, PlateCandidate

DT = 0.04  # 25 fps

Det = tuple[float, float, float, float, float]  # x1, y1, x2, y2, confidence


@dataclass(frozen=True)
class Step:
    """One detection run: its time and boxes (class 0 unless given)."""

    t: float
    dets: Sequence[Det]
    cls: Sequence[int] = ()


def moving(
    x0: float, dx: float, n: int, *, y: float = 100, t0: float = 0.0, conf: float = 0.8
) -> list[tuple[float, Det]]:
    """``n`` boxes 120x80 moving ``dx`` px per frame from ``x0``."""
    return [(t0 + i * DT, (x0 + i * dx, y, x0 + i * dx + 120, y + 80, conf)) for i in range(n)]


def merge(*paths: Sequence[tuple[float, Det | None]]) -> list[Step]:
    """Detection runs from several paths, grouped by time (None: a run with no box)."""
    by_time: dict[float, list[Det]] = {}
    for path in paths:
        for t, det in path:
            dets = by_time.setdefault(round(t, 6), [])
            if det is not None:
                dets.append(det)
    return [Step(t, dets) for t, dets in sorted(by_time.items())]


def run(steps: Sequence[Step], config: TrackerConfig | None = None) -> list[Track]:
    """Feed the steps to a tracker, collecting emitted tracks, then flush."""
    tracker = Tracker(config)
    emitted: list[Track] = []
    for step in steps:
        arr = np.array([d[:4] for d in step.dets], dtype=np.float32).reshape(-1, 4)
        conf = np.array([d[4] for d in step.dets], dtype=np.float32)
        cls = np.array(step.cls or [0] * len(step.dets), dtype=np.int32)
        tracker.update(arr, conf, cls, step.t)
        emitted += tracker.due(step.t)
    return emitted + tracker.flush()


def weak_middle(path: list[tuple[float, Det]], start: int, stop: int, conf: float):
    """The path with detections ``start:stop`` at a low confidence."""
    return [(t, (*d[:4], conf) if start <= i < stop else d) for i, (t, d) in enumerate(path)]


# Detection runs that found nothing, 0.5 s to 2.9 s.
EMPTY_RUNS: list[tuple[float, Det | None]] = [(0.5 + 0.2 * k, None) for k in range(13)]

STOPPED = (
    moving(0, 10, 10)  # drives in
    + [(0.4 + k * 5.0, (90, 100, 210, 180, 0.8)) for k in range(1, 6)]  # stopped; keep-alive runs
    + moving(100, 10, 10, t0=25.5)  # drives off
)


@pytest.mark.parametrize(
    ("steps", "config", "expected"),
    [
        pytest.param(merge(moving(0, 8, 30)), None, 1, id="one-pass-one-sighting"),
        pytest.param(merge(moving(0, 12, 40), moving(470, -12, 40)), None, 2, id="crossing-tracks"),
        pytest.param(merge(STOPPED), None, 1, id="vehicle-that-stops"),
        pytest.param(
            merge(weak_middle(moving(0, 8, 30), 10, 16, 0.15)), None, 1, id="weak-boxes-extend"
        ),
        pytest.param(
            merge(weak_middle(moving(0, 8, 30), 10, 16, 0.15)),
            TrackerConfig(low_threshold=0.2, max_age_s=0.1),
            2,
            id="without-low-pass-splits",
        ),
        pytest.param(merge(moving(0, 8, 1)), None, 0, id="single-frame-false-positive"),
        pytest.param(
            merge(moving(0, 8, 10), moving(80, 8, 10, t0=3.0), EMPTY_RUNS),
            None,
            2,
            id="missed-beyond-max-age",
        ),
        pytest.param(
            merge(moving(0, 8, 10), moving(80, 8, 10, t0=3.0)), None, 1, id="no-runs-no-ageing"
        ),
        pytest.param(
            merge(moving(0, 8, 10), moving(80, 8, 10, t0=0.9)), None, 1, id="gap-within-max-age"
        ),
        pytest.param(
            merge(moving(0, 8, 20), moving(0, 8, 20, y=400)), None, 2, id="two-lanes-side-by-side"
        ),
    ],
)
def test_tracks_per_pass(steps: list[Step], config: TrackerConfig | None, expected: int) -> None:
    assert len(run(steps, config)) == expected


def test_crossing_tracks_keep_their_identity() -> None:
    tracks = run(merge(moving(0, 12, 40), moving(470, -12, 40)))
    directions = sorted(np.sign(t.box[0] - t.first_box[0]) for t in tracks)
    assert directions == [-1.0, 1.0]
    assert all(t.hits == 40 for t in tracks)


def test_a_stopped_vehicle_is_one_track_through_long_gaps() -> None:
    (track,) = run(merge(STOPPED))
    assert track.hits == len(STOPPED)
    assert track.last_seen - track.first_seen > 25


def test_classes_and_attributes_are_voted() -> None:
    tracker = Tracker()
    for i, cls in enumerate([1, 1, 0, 1]):
        (track,) = tracker.update(np.array([[0, 0, 50, 90]]), np.array([0.5]), np.array([cls]), i)
    assert track is not None and track.class_id == 1
    track.add_attributes({"car": 0.6, "van": 0.4}, {"red": 0.9, "white": 0.1})
    track.add_attributes({"car": 0.9, "van": 0.1}, {"red": 0.7, "white": 0.3})
    track.add_attributes({"van": 0.8, "car": 0.2}, {})
    assert track.vehicle_type() == ("car", round(1.7 / 3, 4))
    assert track.colour() == ("red", 0.8)


def read(text: str, conf: float, chars: Sequence[float] | None = None) -> Plate:
    """A plate read as the reader makes it (raw = text, per-character confidences)."""
    return Plate(
        text=text,
        raw=text,
        confidence=conf,
        candidates=[PlateCandidate(text, conf)],
        char_confidences=list(chars) if chars is not None else [0.99] * len(text),
    )


@pytest.mark.parametrize(
    ("reads", "expected"),
    [
        pytest.param(
            [read("AT0123BC", 0.7), read("ATO123BC", 0.6), read("AT0I23BC", 0.5),
             read("AT0123BC", 0.65), read("AT01Z3BC", 0.55)],
            "AT0123BC",
            id="o-0-and-i-1-noise",
        ),
        pytest.param(
            [read("AT0123BO", 0.9), read("AT0123BC", 0.6), read("AT0123BC", 0.6),
             read("AT0I23BC", 0.5)],
            "AT0123BC",
            id="beats-the-single-most-confident-read",
        ),
        pytest.param(
            [read("AA1284BC", 0.8, [0.99] * 4 + [0.3] + [0.99] * 3), read("AA1234BC", 0.7)],
            "AA1234BC",
            id="per-character-confidence-decides",
        ),
        pytest.param(
            [read("AT1234BC", 0.6), read("AT1234BC", 0.5), read("AT124BC", 0.7),
             read("XAT1234BC", 0.7)],
            "AT1234BC",
            id="other-lengths-align",
        ),
        pytest.param(
            [read("AT1Z34BC", 0.6), read("AT134BC", 0.6), read("AT1Z34BC", 0.2),
             read("AT1234BCX", 0.3), read("AT1234BC", 0.5)],
            "AT1Z34BC",
            id="most-common-length-wins",
        ),
        pytest.param([read("KA7681TE", 0.9)], "KA7681TE", id="single-read"),
        pytest.param([], None, id="no-reads"),
    ],
)  # fmt: skip
def test_vote_plate(reads: list[Plate], expected: str | None) -> None:
    voted = vote_plate(reads)
    assert (voted.text if voted else None) == expected


def test_voted_plate_carries_candidates_format_and_confidence() -> None:
    reads = [read("AT0123BC", 0.7), read("ATO123BC", 0.6), read("AT0123BC", 0.65)]
    voted = vote_plate(reads, top_n=4)
    assert voted is not None
    assert voted.format == "ua_current" and voted.region == "UA-AT"
    assert voted.candidates[0].text == "AT0123BC"
    assert "ATO123BC" in [c.text for c in voted.candidates]
    assert len(voted.candidates) <= 4
    confidences = [c.confidence for c in voted.candidates]
    assert confidences == sorted(confidences, reverse=True)
    assert voted.confidence > 0.7  # agreeing reads raise it above the best single read
    assert len(voted.char_confidences) == 8


def test_dissent_lowers_confidence() -> None:
    agree = vote_plate([read("AT0123BC", 0.7)] * 3)
    split = vote_plate([read("AT0123BC", 0.7)] * 2 + [read("AT0128BC", 0.7)])
    assert agree is not None and split is not None
    assert split.confidence < agree.confidence


@pytest.mark.parametrize(
    ("a", "b", "pairs"),
    [
        ("ABC", "ABC", [(0, 0), (1, 1), (2, 2)]),
        ("AC", "ABC", [(0, 0), (1, 2)]),
        ("XABC", "ABC", [(1, 0), (2, 1), (3, 2)]),
        ("", "ABC", []),
    ],
)
def test_align(a: str, b: str, pairs: list[tuple[int, int]]) -> None:
    assert align(a, b) == pairs


def _pass_with_reads(
    reads: Sequence[Plate | None], frames: int, config: TrackerConfig | None = None
) -> tuple[list[tuple[float, str | None]], Tracker]:
    """A slow vehicle (moves 2 px a frame); plate reads on the first frames."""
    tracker = Tracker(config)
    out: list[tuple[float, str | None]] = []
    for i in range(frames):
        t = i * DT
        box = np.array([[i * 2.0, 100, i * 2.0 + 300, 300]])
        (track,) = tracker.update(box, np.array([0.9]), np.array([0]), t)
        if track is not None and i < len(reads) and (plate := reads[i]) is not None:
            track.add_plate(plate, t, None, tracker.config)
        out += [(t, e.plate.text if e.plate else None) for e in tracker.due(t)]
    out += [(frames * DT, e.plate.text if e.plate else None) for e in tracker.flush()]
    return out, tracker


@pytest.mark.parametrize(
    ("reads", "emit_at", "text"),
    [
        pytest.param([read("AT1234BC", 0.6)] * 3, 2 * DT + 1.0, "AT1234BC", id="k-agreeing-reads"),
        pytest.param([read("AT1234BC", 0.95)], 1.0, "AT1234BC", id="one-confident-read"),
        pytest.param(
            [read("AT1234BC", 0.5), read("AT1284BC", 0.5)] * 3, 200 * DT, None, id="never-stable"
        ),
        pytest.param([], 200 * DT, None, id="no-plate-emits-at-end"),
    ],
)
def test_emission_time(reads: list[Plate], emit_at: float, text: str | None) -> None:
    emitted, _ = _pass_with_reads(reads, 200)
    assert len(emitted) == 1
    t, voted = emitted[0]
    assert t == pytest.approx(emit_at, abs=DT + 1e-9)
    if text is not None:
        assert voted == text


def test_emission_delay_is_configurable() -> None:
    emitted, _ = _pass_with_reads([read("AT1234BC", 0.95)], 100, TrackerConfig(emit_delay_s=0))
    assert emitted[0][0] == pytest.approx(DT)  # confirmed by its second detection
