"""Per-user console preferences: the language and whether the new-alert sound is muted.

Stored in ``user_prefs`` (migration 6 in ``central/store/db.py``); written through the
database writer like every other change, read through reader cursors. A user without a row
has the defaults: Ukrainian, sound on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

import duckdb

from central.store.db import Database
from shared.errors import InvalidRequest

LOCALES: Final[tuple[str, ...]] = ("uk", "en")
"""Languages the console speaks; the first is the default."""


@dataclass(frozen=True, slots=True)
class UserPrefs:
    """What one user chose.

    Attributes:
        locale: ``uk`` or ``en``.
        muted: The new-alert sound is off.
    """

    locale: str = LOCALES[0]
    muted: bool = False


class PrefsRepository:
    """SQL of ``user_prefs``; each method takes the connection."""

    def get(self, con: duckdb.DuckDBPyConnection, username: str) -> UserPrefs | None:
        """A user's stored preferences, or None."""
        row = con.execute(
            "SELECT locale, muted FROM user_prefs WHERE username = ?", [username]
        ).fetchone()
        return UserPrefs(str(row[0]), bool(row[1])) if row else None

    def put(
        self, con: duckdb.DuckDBPyConnection, username: str, prefs: UserPrefs, now: float
    ) -> None:
        """Insert or replace a user's preferences."""
        con.execute(
            "INSERT OR REPLACE INTO user_prefs VALUES (?, ?, ?, to_timestamp(?))",
            [username, prefs.locale, prefs.muted, now],
        )


class PrefsService:
    """Read and change console preferences.

    Args:
        db: Central's database.
        clock: UNIX time source (tests inject one).
    """

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._repo = PrefsRepository()
        self._clock = clock

    def get(self, username: str) -> UserPrefs:
        """The user's preferences (defaults when never set)."""
        with self._db.reader() as con:
            return self._repo.get(con, username) or UserPrefs()

    def update(
        self, username: str, locale: str | None = None, muted: bool | None = None
    ) -> UserPrefs:
        """Change what is given, keep the rest; returns the result.

        Raises:
            InvalidRequest: ``locale`` is not one the console speaks.
        """
        if locale is not None and locale not in LOCALES:
            raise InvalidRequest(f"expected a language in {list(LOCALES)}, got {locale!r}")
        current = self.get(username)
        changed = replace(
            current,
            locale=current.locale if locale is None else locale,
            muted=current.muted if muted is None else muted,
        )
        now = self._clock()
        self._db.writer.call(lambda con: self._repo.put(con, username, changed, now))
        return changed
