"""The agent's time stamps: the wall clock, guarded against steps by the monotonic clock.

A sighting's ``captured_at`` and its event id come from :meth:`AgentClock.now`. When the
wall clock runs normally (slewed by NTP, drifting a little) ``now`` is the wall clock. When
it *steps* (someone sets the date, a bad NTP server, a virtual machine resumed), the wall
clock and the monotonic clock disagree suddenly by ``step_threshold_s`` or more. Such a step
is not trusted at once: until it has persisted for ``step_confirm_s`` seconds, time stamps
continue from the monotonic clock as if no step had happened. A step that reverts within
that time (the clock jumped an hour forward and back) never reaches a sighting; a step that
persists (a real correction) is confirmed, and stamps follow the wall clock from then on.

Without this, an agent whose clock jumped an hour ahead stamped its sightings an hour in the
future, and central refused every one of them for good ("captured_at outside the accepted
window"): sightings lost. A jump back stamped them an hour in the past and, in the
pipeline, held every open track and the detection rate limit for an hour.

The counters go out in every heartbeat (``wire.ClockHealth``), so central shows a step while
it is pending and how many were seen, confirmed and reverted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class ClockStats:
    """What the clock guard has seen since the agent started."""

    offset_s: float = 0.0  # wall clock minus the stamps' clock, as last read
    steps: int = 0  # steps detected
    steps_confirmed: int = 0  # steps that persisted and were taken over
    steps_reverted: int = 0  # steps the wall clock undid before they were confirmed
    last_step_s: float = 0.0  # size of the last step detected, signed (+: forward)
    pending: bool = False  # a detected step is waiting for confirmation


class AgentClock:
    """Wall-clock time stamps that ignore unconfirmed steps of the wall clock (thread-safe)."""

    def __init__(
        self,
        step_threshold_s: float = 2.0,
        step_confirm_s: float = 60.0,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """Anchor on the wall clock now.

        Args:
            step_threshold_s: A disagreement of wall and monotonic time this large is a step.
            step_confirm_s: A step is taken over once it has persisted this long.
            wall: The wall clock (injectable for tests).
            monotonic: The monotonic clock (injectable for tests).
        """
        if step_threshold_s <= 0 or step_confirm_s < 0:
            raise ValueError(
                f"expected step_threshold_s > 0 and step_confirm_s >= 0, got "
                f"{step_threshold_s} and {step_confirm_s}"
            )
        self._threshold = step_threshold_s
        self._confirm = step_confirm_s
        self._wall = wall
        self._mono = monotonic
        self._lock = threading.Lock()
        self._base = wall() - monotonic()  # stamp = monotonic + base
        self._pending_since = 0.0
        self.stats = ClockStats()

    def now(self) -> float:
        """The time stamp for something happening now (UNIX seconds)."""
        with self._lock:
            wall, mono = self._wall(), self._mono()
            stamp = mono + self._base
            offset = wall - stamp
            self.stats.offset_s = offset
            if abs(offset) < self._threshold:
                self._settled(offset)
                self._base = wall - mono  # follow the wall clock's slew and drift
                self.stats.offset_s = 0.0
                return wall
            if not self.stats.pending or abs(offset - self.stats.last_step_s) >= self._threshold:
                self._detected(offset, mono)
            elif mono - self._pending_since >= self._confirm:
                self._confirmed(offset)
                self._base = wall - mono
                self.stats.offset_s = 0.0
                return wall
            return stamp

    def _settled(self, offset: float) -> None:
        if self.stats.pending:
            self.stats.pending = False
            self.stats.steps_reverted += 1
            log.warning(
                "wall clock is back (%+.3f s from the stamps' clock): the step of %+.1f s "
                "was never used",
                offset,
                self.stats.last_step_s,
            )

    def _detected(self, offset: float, mono: float) -> None:
        self.stats.steps += 1
        self.stats.last_step_s = offset
        self.stats.pending = True
        self._pending_since = mono
        log.warning(
            "wall clock stepped %+.1f s: stamping by the monotonic clock until the step "
            "has persisted %.0f s",
            offset,
            self._confirm,
        )

    def _confirmed(self, offset: float) -> None:
        self.stats.pending = False
        self.stats.steps_confirmed += 1
        log.warning(
            "wall clock step of %+.1f s persisted %.0f s: taken over, stamps follow it now",
            offset,
            self._confirm,
        )
