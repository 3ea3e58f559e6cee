"""Scheduled syncs of wanted lists from registry drop folders and URLs, inside central.

One thread walks the configured sources (``watchlists.sync`` in central.yaml), each on its
own interval, and applies new full exports through the ``WatchlistService``: the list is
written, the matcher rebuilt and swapped on this thread (never on ingest's), new and changed
entries are matched against past sightings, and a sync that changed the list is audited
with the actor ``system:sync``. A source that fails (unreadable, refused as a mass removal)
is logged as an error and tried again at its next interval; the others go on. A source
with ``verify`` (a national hub's list) is checked before it is read: an export whose
signature does not verify is refused, counted in ``SyncStats.rejected_signature`` and
the list in force stays.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from central.watchlist.importer import ReadFile
from central.watchlist.model import ListSettings
from central.watchlist.service import WatchlistService
from central.watchlist.sync import Verify
from shared.errors import ConfigError, NotFound, SignatureInvalid, VartaError

log = logging.getLogger(__name__)

ACTOR: Final = "system:sync"


@dataclass(frozen=True)
class SyncSource:
    """Where one list's full export comes from, and how often to look.

    Attributes:
        list_name: The list (created with default settings when missing).
        folder: Drop folder, or None for ``url``.
        url: HTTP(S) URL of the export, or '' for ``folder``.
        interval_s: Seconds between checks.
        allow_mass_removal: Accept an export that removes over half of the list.
        verify: Checks a fetched export before it is read (a hub's signature), or None.
        token: Bearer token sent to ``url`` ('' for none).
        read: Reads the fetched export instead of the service's reader (a verified hub
            export's columnar reader), or None.
    """

    list_name: str
    folder: Path | None = None
    url: str = ""
    interval_s: float = 300.0
    allow_mass_removal: bool = False
    verify: Verify | None = field(default=None, repr=False)
    token: str = field(default="", repr=False)
    read: ReadFile | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.folder is None) == (not self.url):
            raise ConfigError(
                f"watchlists.sync[{self.list_name}]: expected exactly one of folder or url"
            )


@dataclass
class SyncStats:
    """Counters of one source since start (the metrics read them).

    Attributes:
        syncs: Checks that ended well (applied, unchanged or not modified).
        failures: Checks that failed (any reason, signature refusals included).
        rejected_signature: Exports refused because their signature did not verify.
        last_ok_at: UNIX time of the last check that ended well (0: none yet).
        last_error: Why the last failed check failed.
    """

    syncs: int = 0
    failures: int = 0
    rejected_signature: int = 0
    last_ok_at: float = 0.0
    last_error: str = ""


class SyncScheduler:
    """Runs every source's sync on its interval, on one background thread.

    Args:
        service: The watchlist service.
        sources: What to sync.
        clock: Monotonic time source (tests inject one).
    """

    def __init__(
        self,
        service: WatchlistService,
        sources: Sequence[SyncSource],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        names = [s.list_name for s in sources]
        if len(set(names)) != len(names):
            raise ConfigError(f"watchlists.sync: expected one source per list, got {names}")
        self._service = service
        self._sources = list(sources)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0
        self.stats = {s.list_name: SyncStats() for s in sources}

    def start(self) -> None:
        """Start the thread (nothing to do without sources)."""
        if self._sources and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="watchlist-sync", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the sync in hand."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def alive(self) -> bool:
        """Whether the thread runs (true when there is nothing to sync)."""
        return not self._sources or (self._thread is not None and self._thread.is_alive())

    def _loop(self) -> None:
        due = dict.fromkeys(range(len(self._sources)), self._clock())
        while not self._stop.is_set():
            for at, source in enumerate(self._sources):
                if self._stop.is_set():
                    return
                if due[at] <= self._clock():
                    self.run(source)
                    due[at] = self._clock() + source.interval_s
            self._stop.wait(max(0.05, min(due.values()) - self._clock()))

    def run(self, source: SyncSource) -> None:
        """One sync of ``source`` (errors are logged and counted, not raised)."""
        name = source.list_name
        stats = self.stats.setdefault(name, SyncStats())
        try:
            self._sync(source)
        except SignatureInvalid as err:
            self._failed(stats, str(err))
            stats.rejected_signature += 1
            log.error("list %s: export refused, the list in force stays: %s", name, err)
        except VartaError as err:
            self._failed(stats, str(err))
            log.error("list %s: scheduled sync failed: %s", name, err)
        except Exception as err:  # a bug in one sync must not end the others' schedule
            self._failed(stats, f"{type(err).__name__}: {err}")
            log.exception("list %s: scheduled sync failed", name)
        else:
            stats.syncs += 1
            stats.last_ok_at = time.time()

    def _failed(self, stats: SyncStats, error: str) -> None:
        self.failures += 1
        stats.failures += 1
        stats.last_error = error

    def _sync(self, source: SyncSource) -> None:
        share = 1.0 if source.allow_mass_removal else 0.5
        name = source.list_name
        try:
            self._service.get_list(name)
        except NotFound:
            origin = source.url or str(source.folder)
            self._service.save_list(ListSettings(name=name, source=origin))
        if source.folder is not None:
            self._service.sync_folder(name, source.folder, max_remove_share=share, actor=ACTOR)
        else:
            self._service.sync_url(
                name,
                source.url,
                max_remove_share=share,
                actor=ACTOR,
                verify=source.verify,
                token=source.token,
                read=source.read,
            )
