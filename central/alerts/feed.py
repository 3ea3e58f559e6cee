"""The change feed's head, waitable from threads and from asyncio, and its opaque cursors.

The alert writer publishes the highest committed change sequence number after each commit.
Long-polling HTTP handlers wait on an asyncio future resolved from the writer thread;
webhook senders wait on a condition. Nobody polls the database in a loop.

A cursor is ``base64url("a1:<seq>")``: opaque to clients, stable across restarts because
the sequence numbers are stored with the changes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import threading
from typing import Final

from shared.errors import InvalidRequest

_PREFIX: Final = "a1:"


def encode_cursor(seq: int) -> str:
    """The opaque cursor that continues after change ``seq``."""
    return base64.urlsafe_b64encode(f"{_PREFIX}{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The change seq a cursor points after (0 for none or empty).

    Raises:
        InvalidRequest: The cursor was not made by ``encode_cursor``.
    """
    if not cursor:
        return 0
    bad = InvalidRequest(
        f"expected 'after' to be a cursor returned as 'next' by this API, got {cursor[:64]!r}"
    )
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as err:
        raise bad from err
    if not text.startswith(_PREFIX) or not text[len(_PREFIX) :].isdigit():
        raise bad
    return int(text[len(_PREFIX) :])


def _resolve(fut: asyncio.Future[int], head: int) -> None:
    if not fut.done():
        fut.set_result(head)


class ChangeFeed:
    """The committed head of the change feed, with waiters.

    Args:
        head: Highest committed change seq at start.
    """

    def __init__(self, head: int = 0) -> None:
        self._head = head
        self._cond = threading.Condition()
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[int]]] = []

    @property
    def head(self) -> int:
        """Highest committed change seq."""
        return self._head

    def publish(self, head: int) -> None:
        """Announce that changes up to ``head`` are committed (writer thread)."""
        with self._cond:
            if head <= self._head:  # nothing new (a commit without alert changes)
                return
            self._head = head
            waiters, self._waiters = self._waiters, []
            self._cond.notify_all()
        for loop, fut in waiters:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(_resolve, fut, head)

    def wait(self, after: int, timeout: float) -> int:
        """Block until the head passes ``after`` or ``timeout`` s pass; return the head."""
        with self._cond:
            self._cond.wait_for(lambda: self._head > after, timeout)
            return self._head

    def kick(self) -> None:
        """Wake thread waiters without a new head (e.g. to let them see a stop flag)."""
        with self._cond:
            self._cond.notify_all()

    async def wait_async(self, after: int, timeout: float) -> int:
        """Await until the head passes ``after`` or ``timeout`` s pass; return the head."""
        loop = asyncio.get_running_loop()
        with self._cond:
            if self._head > after or timeout <= 0:
                return self._head
            fut: asyncio.Future[int] = loop.create_future()
            self._waiters.append((loop, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return self._head
        finally:
            with self._cond:
                if (loop, fut) in self._waiters:
                    self._waiters.remove((loop, fut))
