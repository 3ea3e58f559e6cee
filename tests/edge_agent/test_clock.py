"""The agent clock: wall clock steps are ignored until confirmed, drift is followed."""

from __future__ import annotations

import pytest

from edge_agent.clock import AgentClock

T0 = 1_790_000_000.0  # a wall clock time (2026)


class FakeClocks:
    """A wall and a monotonic clock moved by the test: ``tick`` moves both, ``step`` the wall."""

    def __init__(self) -> None:
        self.mono = 100.0
        self.wall_offset = T0 - self.mono

    def wall(self) -> float:
        return self.mono + self.wall_offset

    def monotonic(self) -> float:
        return self.mono

    def tick(self, seconds: float) -> None:
        self.mono += seconds

    def step(self, seconds: float) -> None:
        self.wall_offset += seconds


def _clock(clocks: FakeClocks, confirm: float = 60.0) -> AgentClock:
    return AgentClock(2.0, confirm, wall=clocks.wall, monotonic=clocks.monotonic)


# (script of ("tick"|"step", seconds), expected stamp minus true time, steps, confirmed,
#  reverted, pending)
CASES = [
    ("no step", [("tick", 10.0)], 0.0, 0, 0, 0, False),
    ("drift below threshold followed", [("tick", 5.0), ("step", 1.5)], 1.5, 0, 0, 0, False),
    ("hour forward, pending", [("step", 3600.0), ("tick", 30.0)], 0.0, 1, 0, 0, True),
    ("hour back, pending", [("step", -3600.0), ("tick", 30.0)], 0.0, 1, 0, 0, True),
    (
        "hour forward and back",
        [("step", 3600.0), ("tick", 30.0), ("step", -3600.0), ("tick", 1.0)],
        0.0,
        1,
        0,
        1,
        False,
    ),
    (
        "hour back and forward",
        [("step", -3600.0), ("tick", 59.0), ("step", 3600.0), ("tick", 1.0)],
        0.0,
        1,
        0,
        1,
        False,
    ),
    ("persisting step confirmed", [("step", 600.0), ("tick", 61.0)], 600.0, 1, 1, 0, False),
    (
        "second step while pending restarts confirmation",
        [("step", 600.0), ("tick", 50.0), ("step", 600.0), ("tick", 50.0)],
        0.0,
        2,
        0,
        0,
        True,
    ),
]


@pytest.mark.parametrize(
    ("script", "error", "steps", "confirmed", "reverted", "pending"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_steps(
    script: list[tuple[str, float]],
    error: float,
    steps: int,
    confirmed: int,
    reverted: int,
    pending: bool,
) -> None:
    clocks = FakeClocks()
    clock = _clock(clocks)
    for action, seconds in script:
        getattr(clocks, action)(seconds)
        clock.now()  # the stamp of each moment, as a camera's frames would take it
    true_time = T0 + (clocks.mono - 100.0)
    assert clock.now() - true_time == pytest.approx(error, abs=1e-6)
    s = clock.stats
    assert (s.steps, s.steps_confirmed, s.steps_reverted, s.pending) == (
        steps,
        confirmed,
        reverted,
        pending,
    )


def test_pending_step_reports_its_offset_and_size() -> None:
    clocks = FakeClocks()
    clock = _clock(clocks)
    clocks.step(3600.0)
    clocks.tick(2.0)
    clock.now()
    assert clock.stats.offset_s == pytest.approx(3600.0)
    assert clock.stats.last_step_s == pytest.approx(3600.0)
    clocks.step(-3600.0)
    clock.now()
    assert clock.stats.offset_s == 0.0 and clock.stats.last_step_s == pytest.approx(3600.0)


def test_stamps_continue_monotonically_through_a_step_back() -> None:
    clocks = FakeClocks()
    clock = _clock(clocks)
    stamps = []
    for i in range(20):
        if i == 5:
            clocks.step(-3600.0)
        clocks.tick(0.5)
        stamps.append(clock.now())
    assert stamps == sorted(stamps)
    assert stamps[-1] - stamps[0] == pytest.approx(19 * 0.5)


@pytest.mark.parametrize(
    ("threshold", "confirm", "error"),
    [(0.0, 60.0, ValueError), (-1.0, 60.0, ValueError), (2.0, -1.0, ValueError), (2.0, 0, None)],
)
def test_settings_checked(threshold: float, confirm: float, error: type[Exception] | None) -> None:
    if error is None:
        AgentClock(threshold, confirm)
    else:
        with pytest.raises(error, match="expected step_threshold_s > 0"):
            AgentClock(threshold, confirm)
