"""Network faults between a real agent and a real central, in network namespaces.

Each test runs ``varta central serve`` and an agent process (``bench.loadgen``: a real
``EdgeAgent``) in two namespaces joined by a veth pair, makes one fault on that link
only, and checks that every sighting the agent's spool accepted is stored exactly once
(event ids counted in central's DuckDB), that the agent recovered by itself within a
bound, and that central's view of the agent's health showed the fault. The long versions
are ``varta bench faults``; docs/faults.md has the numbers.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.faults import clockshift, netfault, scenarios
from bench.faults.scenarios import HOUR, Outcome

pytestmark = pytest.mark.slow

_WHY_NOT = netfault.unavailable()
needs_netns = pytest.mark.skipif(bool(_WHY_NOT), reason=_WHY_NOT or "-")
RECOVERY_BOUND_S = 30.0  # generous: a loaded CI box, not a speed claim (speed: the bench)


def _exactly_once(o: Outcome, expected: int) -> None:
    assert o.agent_exit == 0
    assert o.sent == expected
    assert (o.stored, o.duplicates, o.missing, o.unexpected) == (expected, 0, 0, 0)


@needs_netns
def test_partition_10s_every_sighting_once_and_agent_reconnects(tmp_path: Path) -> None:
    o = scenarios.partition(tmp_path, seconds=10.0, rate=150.0)
    _exactly_once(o, 150 * (2 + 10 + 2))
    assert o.recovery_s is not None and o.recovery_s < RECOVERY_BOUND_S
    assert o.extra["dropped_packets"] > 0
    assert o.health_during["online"] is False and "offline" in o.health_during["problems"]
    after = o.health_after
    assert after["health"] == "ok" and after["spool_depth"] == 0
    assert after["link"]["reconnects"] >= 1
    assert after["link"]["spool_peak"] >= 150 * 10 * 0.8  # the backlog of the cut


def _netem() -> bool:
    return not _WHY_NOT and netfault.netem_available()


@needs_netns
@pytest.mark.parametrize(
    "method",
    [
        pytest.param("netem", id="netem"),
        pytest.param("emulated", id="emulated-iptables-statistic-and-jitter-relay"),
    ],
)
def test_loss_20pct_jitter_200ms_every_sighting_once(tmp_path: Path, method: str) -> None:
    """With netem when the kernel has it; else emulated (iptables + jitter relay)."""
    if (method == "netem") != _netem():
        pytest.skip(
            "the kernel has no sch_netem: the emulated variant runs instead"
            if method == "netem"
            else "the kernel has netem: the netem variant runs instead"
        )
    o = scenarios.loss_jitter(tmp_path, seconds=8.0, rate=100.0, loss=0.2, jitter_ms=200)
    assert o.emulation.startswith("netem" if method == "netem" else "iptables statistic")
    _exactly_once(o, 100 * (2 + 8 + 2))
    assert o.recovery_s is not None and o.recovery_s < RECOVERY_BOUND_S
    if method == "emulated":
        assert o.extra["dropped_packets"] > 0
    # The lossy link could not keep up: a backlog of more than half a second built up.
    assert o.health_after["link"]["spool_peak"] >= 50
    assert o.health_after["health"] == "ok" and o.health_after["spool_depth"] == 0


@needs_netns
def test_sigkill_central_mid_batch_every_sighting_once(tmp_path: Path) -> None:
    o = scenarios.sigkill_central(tmp_path, down_s=2.0, rate=800.0, run_s=5.0)
    _exactly_once(o, 800 * 5)
    assert o.health_during["in_flight_at_kill"] >= 1  # batches were unacknowledged
    assert o.recovery_s is not None and o.recovery_s < RECOVERY_BOUND_S
    assert o.health_after["link"]["reconnects"] >= 1
    assert o.health_after["health"] == "ok" and o.health_after["spool_depth"] == 0


@needs_netns
@pytest.mark.skipif(bool(clockshift.unavailable()), reason=clockshift.unavailable() or "-")
def test_clock_jumps_an_hour_forward_and_back(tmp_path: Path) -> None:
    o = scenarios.clock_jump(tmp_path, hold_s=2.0, rate=100.0)
    _exactly_once(o, 100 * (2 + 4 * 2 + 2))
    assert o.extra["dead_letters"] == 0
    real_start, real_end = o.extra["real_time"]
    first, last = o.extra["captured_at"]
    assert real_start - 2 <= first and last <= real_end + 2  # no stamp an hour off
    for phase, step in (("forward", HOUR), ("back", -HOUR)):
        seen = o.health_during[phase]
        assert seen["clock"]["pending"] is True
        assert seen["clock"]["last_step_s"] == pytest.approx(step, abs=5)
        assert seen["clock_skew_s"] == pytest.approx(step, abs=5)
        assert seen["health"] == "degraded"
        assert any(p.startswith("clock stepped") for p in seen["problems"])
    clock = o.health_after["clock"]
    assert (clock["steps"], clock["steps_reverted"], clock["steps_confirmed"]) == (2, 2, 0)
    assert o.health_after["health"] == "ok"


@pytest.mark.skipif(bool(clockshift.unavailable()), reason=clockshift.unavailable() or "-")
def test_clockshift_shim_steps_the_wall_clock_only(tmp_path: Path) -> None:
    shift = clockshift.ClockShift(clockshift.build(tmp_path), tmp_path / "offset")
    shift.set(-HOUR)
    probe = (
        "import time; w, m = time.time(), time.monotonic(); "
        "open(__import__('sys').argv[1], 'w').write('7200'); time.sleep(0.1); "
        "print(time.time() - w, time.monotonic() - m, time.time())"
    )
    env = {"PATH": "/usr/bin:/bin", **shift.env()}
    out = subprocess.run(
        [sys.executable, "-c", probe, str(shift.offset_file)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    wall_moved, mono_moved = float(out[0]), float(out[1])
    assert wall_moved - mono_moved == pytest.approx(3 * HOUR, abs=0.05)  # -1 h to +2 h
    assert 0.1 <= mono_moved < 5.0  # the monotonic clock did not jump
