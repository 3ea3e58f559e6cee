"""Password checks that resist guessing and do not let logins exhaust the machine.

* argon2id verification costs ~64 MiB and tens of milliseconds; at most ``concurrency``
  run at once, so a burst of logins cannot take every core or gigabytes of memory, and a
  login that cannot start within ``wait_s`` is refused (``LoginBusy``) rather than holding
  one of the server's worker threads.
* An unknown user name costs the same time as a known one (a dummy hash is verified).
* A client address that keeps failing is refused for a while without any hashing, which
  also stops spraying one password over many user names (per-user lockout cannot).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from central.accounts.secrets import check_password, default_hasher
from shared.errors import Unauthorized


class LoginBusy(Unauthorized):
    """Too many password checks at once; the caller should try again shortly."""


class Passwords:
    """argon2 hashing and verification with bounded concurrency.

    Args:
        hasher: The argon2 hasher (tests pass cheap parameters).
        concurrency: Hash operations allowed at the same time.
        wait_s: How long a check waits for a free slot before ``LoginBusy``.
    """

    def __init__(
        self, hasher: PasswordHasher | None = None, concurrency: int = 2, wait_s: float = 2.0
    ) -> None:
        self._hasher = hasher or default_hasher()
        self._slots = threading.BoundedSemaphore(concurrency)
        self._wait = wait_s
        self._dummy = ""  # made at the first check of an unknown user, not at start-up

    def hash(self, password: str) -> str:
        """The argon2id hash of an acceptable password.

        Raises:
            InvalidRequest: The password is too short or too long.
        """
        check_password(password)
        with self._slots:
            return self._hasher.hash(password)

    def verify(self, hashed: str | None, password: str) -> bool:
        """Whether ``password`` matches ``hashed``.

        ``None`` (unknown user) or a non-argon2 value (user without a password) is always
        False, after the same work as a real check.

        Raises:
            LoginBusy: No slot became free within ``wait_s``.
        """
        usable = hashed if hashed is not None and hashed.startswith("$argon2") else None
        if not self._slots.acquire(timeout=self._wait):
            raise LoginBusy("too many logins at once; try again in a few seconds")
        try:
            if usable is None and not self._dummy:
                self._dummy = self._hasher.hash("equal time for unknown user names")
            return self._hasher.verify(usable or self._dummy, password) and usable is not None
        except (VerificationError, InvalidHashError):
            return False
        finally:
            self._slots.release()


class ClientThrottle:
    """Failed logins per client address within a sliding window.

    Args:
        limit: Failures within ``window_s`` after which the client is refused.
        window_s: The window.
        clock: Seconds (injectable).
        max_clients: Addresses tracked at most (the oldest are forgotten first).
    """

    def __init__(
        self,
        limit: int = 20,
        window_s: float = 300.0,
        clock: Callable[[], float] = time.time,
        max_clients: int = 10_000,
    ) -> None:
        self._limit, self._window, self._clock = limit, window_s, clock
        self._max = max_clients
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str) -> bool:
        """Whether ``client`` failed ``limit`` times within the window."""
        with self._lock:
            times = self._recent(client)
            return times is not None and len(times) >= self._limit

    def failed(self, client: str) -> None:
        """Count one failure of ``client``."""
        with self._lock:
            times = self._recent(client)
            if times is None:
                if len(self._failures) >= self._max:
                    del self._failures[next(iter(self._failures))]
                times = self._failures[client] = deque(maxlen=self._limit)
            times.append(self._clock())

    def _recent(self, client: str) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        cutoff = self._clock() - self._window
        while times and times[0] < cutoff:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times
