"""Password checks that resist guessing without letting anyone lock a real user out.

* argon2id verification costs ~64 MiB and tens of milliseconds; at most ``concurrency``
  run at once, so a burst of logins cannot take every core or gigabytes of memory.
  (The HTTP layer also runs logins on their own few threads and answers 429 when they are
  all taken, so a login flood never holds the threads other requests need.)
* Every attempt that is not throttled costs one argon2 verification: an unknown user name
  or a user without a password is checked against a dummy hash, so the answer takes the
  same time whether the account exists, is disabled or the password is wrong.
* Throttling is keyed by what the caller controls, never by the account alone
  (``LoginThrottle``): failures of one user name from one source address, failures from
  one source over any names (password spraying), and, once an account draws many failures
  from everywhere, a wait for the sources that failed on it. A source that has not been
  failing is never held back, so nobody can keep a real user out by failing on purpose.
  Throttle state never depends on whether an account exists.
* Refused logins are audited as one row for the first refusal of a user name from a source
  in each window and one summary row with the count of the rest (``RefusalDigest``), so a
  flood cannot grow the audit log without bound.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from central.accounts.secrets import check_password, default_hasher
from central.audit.sink import AuditSink
from shared.errors import TooManyRequests

ANY_USER: Final = "*"  # the user name of refusals folded together from one source


class LoginBusy(TooManyRequests):
    """Too many password checks at once; the caller should try again shortly."""


class LoginThrottled(TooManyRequests):
    """This source must wait before it tries this user name again."""


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
            raise LoginBusy("too many logins at once; try again in a few seconds", 1.0)
        try:
            if usable is None and not self._dummy:
                self._dummy = self._hasher.hash("equal time for unknown user names")
            return self._hasher.verify(usable or self._dummy, password) and usable is not None
        except (VerificationError, InvalidHashError):
            return False
        finally:
            self._slots.release()


def source_of(client: str) -> str:
    """The throttling key of a client address: itself, or its /64 for IPv6.

    One IPv6 host usually holds a whole /64, so single addresses would be free to rotate.
    """
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


@dataclass(frozen=True)
class ThrottlePolicy:
    """When failed logins start to cost waiting time, and how much.

    Every failure beyond a key's free ones doubles the wait before that key may try again,
    from ``delay_initial_s`` up to ``delay_max_s``; a key with no failure for ``forget_s``
    starts afresh.

    Attributes:
        free_failures: Failures of one user name from one source without a wait.
        source_free_failures: Failures from one source over all user names without a wait.
        account_free_failures: Failures of one user name from all sources after which every
            source that failed on it waits too (sources that did not fail never do).
        delay_initial_s: The first wait.
        delay_max_s: The longest wait.
        forget_s: Failures older than this (counted from a key's last one) are forgotten.
        max_keys: Keys remembered per kind at most (the oldest are forgotten first).
    """

    free_failures: int = 3
    source_free_failures: int = 20
    account_free_failures: int = 50
    delay_initial_s: float = 1.0
    delay_max_s: float = 900.0
    forget_s: float = 3600.0
    max_keys: int = 100_000


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    until: float = 0.0


class _Counter:
    """Failures per key, with the exponential wait; bounded, oldest forgotten first."""

    def __init__(self, free: int, policy: ThrottlePolicy) -> None:
        self._free, self._policy = free, policy
        self._keys: dict[Any, _Failures] = {}

    def get(self, key: Any, now: float) -> _Failures | None:
        entry = self._keys.get(key)
        if entry is None:
            return None
        if now >= max(entry.last + self._policy.forget_s, entry.until):
            del self._keys[key]
            return None
        return entry

    def fail(self, key: Any, now: float) -> None:
        entry = self.get(key, now) or _Failures()
        self._keys.pop(key, None)  # re-insert: the dict's order is the age order
        while len(self._keys) >= self._policy.max_keys:
            del self._keys[next(iter(self._keys))]
        entry.count += 1
        entry.last = now
        beyond = entry.count - self._free
        if beyond > 0:
            p = self._policy
            wait = min(p.delay_max_s, p.delay_initial_s * 2.0 ** min(beyond - 1, 60))
            entry.until = max(entry.until, now + wait)
        self._keys[key] = entry

    def forget(self, key: Any) -> None:
        self._keys.pop(key, None)


class LoginThrottle:
    """Growing waits for failing (user name, source) pairs, sources and attacked accounts.

    Args:
        policy: Free failures and waits.
        clock: Seconds (injectable).
    """

    def __init__(self, policy: ThrottlePolicy, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._pairs = _Counter(policy.free_failures, policy)
        self._sources = _Counter(policy.source_free_failures, policy)
        self._accounts = _Counter(policy.account_free_failures, policy)
        self._lock = threading.Lock()

    def wait_s(self, username: str, client: str) -> float:
        """Seconds ``client`` must still wait before trying ``username`` (0: go ahead)."""
        now, source = self._clock(), source_of(client)
        with self._lock:
            pair = self._pairs.get((username, source), now)
            until = max(pair.until if pair else 0.0, self._until(self._sources, source, now))
            if pair is not None:  # only sources that failed on the account wait for it
                until = max(until, self._until(self._accounts, username, now))
        return max(0.0, until - now)

    def failed(self, username: str, client: str) -> None:
        """Count one failure of ``client`` on ``username``."""
        now, source = self._clock(), source_of(client)
        with self._lock:
            self._pairs.fail((username, source), now)
            self._sources.fail(source, now)
            self._accounts.fail(username, now)

    def succeeded(self, username: str, client: str) -> None:
        """A right password: the pair starts afresh (the source and account counts stay)."""
        with self._lock:
            self._pairs.forget((username, source_of(client)))

    @staticmethod
    def _until(counter: _Counter, key: str, now: float) -> float:
        entry = counter.get(key, now)
        return entry.until if entry else 0.0


@dataclass
class _Refusals:
    first: float
    last: float = 0.0
    count: int = 0  # after the first, which has its own row
    reasons: dict[str, int] = field(default_factory=dict)


class RefusalDigest:
    """Refused logins in the audit log, bounded per user name, source and window.

    The first refusal of a user name from a source in each window of ``window_s`` is one
    ``login.failed`` row at once (``details.count`` 1); the rest of that window are one
    more row when the window has ended (``details.count`` n, ``details.reasons`` by why).
    A source that tries more than ``names_per_source`` user names in a window has the rest
    folded under the user name ``*``; beyond ``max_keys`` pairs, every source is.
    Summaries are written by the next refusal or ``flush`` after their window.

    Args:
        audit: Where the rows go.
        window_s: The aggregation window.
        clock: Seconds (injectable).
        names_per_source: User names per source and window with rows of their own.
        max_keys: Pairs tracked at most.
    """

    def __init__(
        self,
        audit: AuditSink,
        window_s: float = 600.0,
        clock: Callable[[], float] = time.time,
        names_per_source: int = 20,
        max_keys: int = 10_000,
    ) -> None:
        self._audit, self._window, self._clock = audit, window_s, clock
        self._names, self._max = names_per_source, max_keys
        self._current = math.floor(clock() / window_s)
        self._open: dict[tuple[str, str], _Refusals] = {}  # all of window ``_current``
        self._names_of: dict[str, int] = {}
        self._lock = threading.Lock()

    def refused(self, username: str, client: str, why: str) -> None:
        """Record one refused login (written now if it is the first of its window)."""
        now = self._clock()
        self.flush(now)
        with self._lock:
            key = self._key(username[:64], client)
            entry = self._open.get(key)
            if entry is not None:
                entry.count += 1
                entry.last = now
                entry.reasons[why] = entry.reasons.get(why, 0) + 1
                return
            self._open[key] = _Refusals(now)
        details = {"why": why, "client": client, "count": 1, "window_s": self._window}
        self._audit.record("anonymous", "login.failed", f"user:{key[0]}", details=details)

    def flush(self, now: float | None = None, everything: bool = False) -> None:
        """Write the summary rows once their window has ended (at once with ``everything``)."""
        window = math.floor((self._clock() if now is None else now) / self._window)
        with self._lock:
            if window == self._current and not everything:
                return
            ended, self._open, self._names_of = self._open, {}, {}
            self._current = window
        for (username, client), entry in ended.items():
            if entry.count == 0:
                continue
            details = {
                "client": client,
                "count": entry.count,
                "reasons": entry.reasons,
                "from": _iso(entry.first),
                "to": _iso(entry.last),
                "window_s": self._window,
            }
            self._audit.record("anonymous", "login.failed", f"user:{username}", details=details)

    def _key(self, username: str, client: str) -> tuple[str, str]:
        if (username, client) in self._open:
            return (username, client)
        if len(self._open) >= self._max:
            return (ANY_USER, ANY_USER)
        names = self._names_of.get(client, 0)
        if names >= self._names:
            return (ANY_USER, client)
        self._names_of[client] = names + 1
        return (username, client)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).isoformat(timespec="microseconds")
