"""Password checks on threads of their own, so a login flood cannot starve other requests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from central.accounts.login import LoginBusy, LoginThrottled
from shared.errors import Unauthorized

T = TypeVar("T")


class LoginGate:
    """Runs logins and password changes on a capacity limiter of their own.

    Litestar runs sync handlers on anyio's default limiter (40 threads), shared by every
    route; a login spends tens of milliseconds in argon2 and more waiting for a hashing
    slot, so a burst of logins there would hold the threads everyone else needs. Through
    the gate at most ``concurrency`` logins run on threads, ``queue`` more wait as
    coroutines (no thread), and any further one is answered 429 at once.

    A throttled refusal costs no hash; the gate pads it to the time a refused check has
    been taking, so every refusal takes about the same time.

    Args:
        concurrency: Logins running at once (as many as the service's hashing slots).
        queue: Logins waiting for a turn, at most.
    """

    def __init__(self, concurrency: int = 2, queue: int = 8) -> None:
        self._concurrency, self._queue = concurrency, queue
        self._pending = 0  # changed on the event loop's thread only
        self._typical_s = 0.0
        self._limiter: tuple[asyncio.AbstractEventLoop, anyio.CapacityLimiter] | None = None

    async def run(self, fn: Callable[[], T]) -> T:
        """``fn()`` on the gate's threads.

        Raises:
            LoginBusy: Every turn is taken (429).
            LoginThrottled: From ``fn``, after the padding.
        """
        if self._pending >= self._concurrency + self._queue:
            raise LoginBusy("too many logins at once; try again in a second", 1.0)
        started = time.monotonic()
        try:
            return await self._on_thread(fn, started)
        except LoginThrottled:
            await anyio.sleep(max(0.0, self._typical_s - (time.monotonic() - started)))
            raise

    async def _on_thread(self, fn: Callable[[], T], started: float) -> T:
        self._pending += 1
        try:
            return await anyio.to_thread.run_sync(fn, limiter=self._own_limiter())
        except Unauthorized:  # a refused check: learn how long one takes
            self._typical_s += 0.2 * (time.monotonic() - started - self._typical_s)
            raise
        finally:
            self._pending -= 1

    def _own_limiter(self) -> anyio.CapacityLimiter:
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._limiter[0] is not loop:
            self._limiter = (loop, anyio.CapacityLimiter(self._concurrency))
        return self._limiter[1]
