"""The four network fault scenarios, each on a fresh :class:`~bench.faults.netfault.Link`.

Every scenario runs central and one agent as real processes, sends sightings at a known
rate, makes one fault, ends it (or lets the system end it) and then measures:

* ``sent`` (event ids the agent's spool accepted), ``stored`` (rows in central's DuckDB),
  ``duplicates``, ``missing`` and ``unexpected``: the exactly-once count;
* ``recovery_s``: from the end of the fault to the moment the agent had every sighting
  made before that moment acknowledged (acks come after central's commit). Nobody
  intervenes: the agent reconnects and resends on its own;
* ``health``: what central's ``/api/v1/agents`` showed about the agent during and after.

``varta bench faults --json`` runs the long versions; ``tests/faults`` the short ones.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.faults import clockshift
from bench.faults.netfault import Link, wait_until
from bench.faults.rig import Rig, Tally

HOUR = 3600.0


@dataclass
class Outcome:
    """What one scenario measured."""

    scenario: str
    emulation: str  # how the fault was made (netem, or what replaced it)
    fault_s: float  # how long the fault lasted
    sent: int
    stored: int
    duplicates: int
    missing: int
    unexpected: int
    recovery_s: float | None  # None: never recovered within the wait
    agent_exit: int | None
    health_during: dict[str, Any] = field(default_factory=dict)
    health_after: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)


def _health(rig: Rig) -> dict[str, Any]:
    """The parts of the agent's health entry that tell what happened."""
    a = rig.agent_health()
    keep = ("health", "online", "problems", "spool_depth", "clock_skew_s", "link", "clock")
    return {k: a.get(k) for k in keep}


def _finish(
    rig: Rig,
    name: str,
    emulation: str,
    fault_s: float,
    recovery_s: float | None,
    during: dict[str, Any],
    extra: dict[str, Any],
) -> Outcome:
    """Let the agent finish, read central's view, stop central, count the DuckDB rows."""
    wait_until(lambda: rig.status().get("spool_depth", 1) == 0, 150, 0.1)
    time.sleep(1.0)  # the agent lingers 1.5 s: its heartbeats of the drained spool arrive
    after = _health(rig)
    code = rig.wait_agent()
    rig.stop_central()
    t: Tally = rig.tally()
    extra = {**extra, "captured_at": t.captured_at}
    return Outcome(
        name,
        emulation,
        round(fault_s, 2),
        t.sent,
        t.stored,
        t.duplicates,
        t.missing,
        t.unexpected,
        None if recovery_s is None else round(recovery_s, 2),
        code,
        during,
        after,
        extra,
    )


def _recovered(rig: Rig, since: float, timeout: float = 120.0) -> float | None:
    """Seconds from ``since`` (monotonic) until everything produced by then is acknowledged."""
    produced = rig.status()["produced"]
    done = rig.wait_delivered(produced, timeout)
    return None if done is None else done - since


def _watch(rig: Rig, seconds: float, wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Poll central's view of the agent for ``seconds``; the first entry ``wanted`` accepts
    (else the last one seen)."""
    deadline = time.monotonic() + seconds
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = _health(rig)
        if seen.get("health") is not None and wanted(seen):
            time.sleep(max(deadline - time.monotonic(), 0.0))
            return seen
        time.sleep(0.25)
    return seen


def partition(work: Path, seconds: float = 60.0, rate: float = 150.0) -> Outcome:
    """No packet passes between agent and central for ``seconds``, then the link heals."""
    pre, post = 2.0, 2.0
    with Link() as link:
        rig = Rig(work, link)
        try:
            rig.start_central()
            rig.start_agent(count=int(rate * (pre + seconds + post)), rate=rate)
            time.sleep(pre)
            link.partition()
            began = time.monotonic()
            during = _watch(rig, seconds, lambda h: not h["online"])
            dropped = link.dropped_packets()
            link.heal()
            healed = time.monotonic()
            recovery = _recovered(rig, healed)
            extra = {"rate": rate, "dropped_packets": dropped}
            return _finish(
                rig, "partition", "iptables DROP", healed - began, recovery, during, extra
            )
        finally:
            rig.close()


def loss_jitter(
    work: Path,
    seconds: float = 60.0,
    rate: float = 100.0,
    loss: float = 0.2,
    jitter_ms: float = 200,
) -> Outcome:
    """``loss`` of the packets each way and 0..``jitter_ms`` delay for ``seconds``."""
    pre = 2.0
    with Link() as link:
        rig = Rig(work, link)
        try:
            rig.start_central()
            endpoint = None if link.netem else rig.start_relay(jitter_ms / 1000)
            rig.start_agent(count=int(rate * (pre + seconds + 2.0)), rate=rate, endpoint=endpoint)
            time.sleep(pre)
            link.lossy(loss, jitter_ms)
            began = time.monotonic()
            during = _watch(rig, seconds, lambda h: False)
            dropped = link.dropped_packets()
            link.clear_loss(loss)
            cleared = time.monotonic()
            recovery = _recovered(rig, cleared)
            extra = {"rate": rate, "loss": loss, "jitter_ms": jitter_ms, "dropped_packets": dropped}
            emulation = link.loss_method
            return _finish(rig, "loss_jitter", emulation, cleared - began, recovery, during, extra)
        finally:
            rig.close()


def sigkill_central(
    work: Path, down_s: float = 2.0, rate: float = 800.0, run_s: float = 8.0
) -> Outcome:
    """SIGKILL central while batches are in flight; start it again ``down_s`` later."""
    with Link() as link:
        rig = Rig(work, link)
        try:
            rig.start_central()
            rig.start_agent(count=int(rate * run_s), rate=rate)
            if not rig.wait_delivered(int(rate), 30):
                raise RuntimeError("no steady flow before the kill")
            while rig.status().get("in_flight", 0) == 0:  # mid-batch: something unacknowledged
                time.sleep(0.005)
            at_kill = rig.status()
            rig.kill_central()
            killed = time.monotonic()
            time.sleep(down_s)
            restart_s = rig.start_central()
            back = time.monotonic()
            during = {"in_flight_at_kill": at_kill["in_flight"], "delivered": at_kill["delivered"]}
            recovery = _recovered(rig, back)  # from central answering again
            extra = {
                "rate": rate,
                "restart_s": round(restart_s, 2),
                "kill_to_caught_up_s": None
                if recovery is None
                else round(back - killed + recovery, 2),
            }
            name = "sigkill_central"
            fault_s = down_s + restart_s
            return _finish(rig, name, "SIGKILL", fault_s, recovery, during, extra)
        finally:
            rig.close()


def clock_jump(
    work: Path, hold_s: float = 20.0, rate: float = 100.0, step_confirm_s: float = 60.0
) -> Outcome:
    """The agent's wall clock jumps an hour forward, back, an hour back, and forward again.

    ``step_confirm_s=0`` takes every step at once: the behaviour before the clock guard.
    """
    pre, post = 2.0, 2.0
    with Link() as link:
        rig = Rig(work, link)
        try:
            shift = clockshift.ClockShift(clockshift.build(work / "shim"), work / "clock-offset")
            rig.start_central()
            wall_start = time.time()
            total = pre + 4 * hold_s + post
            rig.start_agent(
                count=int(rate * total), rate=rate, env=shift.env(), step_confirm_s=step_confirm_s
            )
            time.sleep(pre)
            began = time.monotonic()
            shift.set(HOUR)
            during = _watch(rig, hold_s, lambda h: (h["clock"] or {}).get("pending", False))
            shift.set(0.0)
            time.sleep(hold_s)
            shift.set(-HOUR)
            during_back = _watch(rig, hold_s, lambda h: (h["clock"] or {}).get("pending", False))
            shift.set(0.0)
            settled = time.monotonic()
            recovery = _recovered(rig, settled)
            rig.wait_agent()
            wall_end = time.time()
            extra = {
                "rate": rate,
                "step_confirm_s": step_confirm_s,
                "real_time": (wall_start, wall_end),
                "dead_letters": len(list((work / "spool" / "dead").glob("*.rec"))),
            }
            both = {"forward": during, "back": during_back}
            return _finish(rig, "clock_jump", "LD_PRELOAD clockshift shim", settled - began,
                           recovery, both, extra)  # fmt: skip
        finally:
            rig.close()


SCENARIOS: dict[str, Callable[..., Outcome]] = {
    "partition": partition,
    "loss_jitter": loss_jitter,
    "sigkill_central": sigkill_central,
    "clock_jump": clock_jump,
}


def run(
    names: list[str] | None, work: Path, partition_s: float, loss_s: float, hold_s: float
) -> dict[str, Any]:
    """The named scenarios (default all) with the given lengths; one JSON-able result.

    Raises:
        ValueError: an unknown scenario name.
    """
    unknown = sorted(set(names or ()) - set(SCENARIOS))
    if unknown:
        raise ValueError(f"unknown scenario(s) {unknown}; expected some of {sorted(SCENARIOS)}")
    lengths: dict[str, dict[str, float]] = {
        "partition": {"seconds": partition_s},
        "loss_jitter": {"seconds": loss_s},
        "sigkill_central": {},
        "clock_jump": {"hold_s": hold_s},
    }
    out: dict[str, Any] = {"scenarios": {}}
    for name in names or list(SCENARIOS):
        o = SCENARIOS[name](work / name, **lengths[name])
        out["scenarios"][name] = {
            "emulation": o.emulation,
            "fault_s": o.fault_s,
            "sent": o.sent,
            "stored": o.stored,
            "duplicates": o.duplicates,
            "missing": o.missing,
            "recovery_s": o.recovery_s,
            "detail": o.as_json(),
        }
    out["exactly_once"] = all(
        s["stored"] == s["sent"] and not s["duplicates"] and not s["missing"]
        for s in out["scenarios"].values()
    )
    return out
