"""The watchlist service: the current matcher plus imports and syncs that refresh it.

The composition root builds one ``WatchlistService`` on central's writer connection and
hands it to ingest (``match``) and to whatever schedules syncs. A sync writes DuckDB first,
then builds a new ``Matcher`` and swaps the reference; matching goes on against the old
one meanwhile, so a sighting never waits for a rebuild.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from central.watchlist import sync
from central.watchlist.importer import Progress
from central.watchlist.matcher import Matcher
from central.watchlist.model import ImportReport, ListSettings, Match
from central.watchlist.repository import WatchlistRepository
from shared.wire import Sighting

log = logging.getLogger(__name__)


class WatchlistService:
    """Owns the current ``Matcher`` of a repository.

    Args:
        repo: The repository (on central's writer connection; ``ensure_schema`` done).
    """

    def __init__(self, repo: WatchlistRepository) -> None:
        self._repo = repo
        self._rebuild = threading.Lock()
        self._matcher = Matcher.from_repository(repo)

    @property
    def matcher(self) -> Matcher:
        """The matcher in use now (read-only; safe to share between threads)."""
        return self._matcher

    def match(self, sighting: Sighting) -> list[Match]:
        """Entries a sighting matches, strongest first (see ``Matcher.match``)."""
        return self._matcher.match(sighting)

    def reload(self, now: datetime | None = None) -> Matcher:
        """Rebuild the matcher from the repository and swap it in."""
        with self._rebuild:
            matcher = Matcher.from_repository(self._repo, now or datetime.now(UTC))
            self._matcher = matcher
        log.info("watchlist matcher reloaded: %s entries", len(matcher))
        return matcher

    def retention_days(self) -> dict[str, int]:
        """How long each list keeps hit evidence after its alert closed, by list name."""
        return {s.name: s.retention_days for s in self._repo.lists()}

    def save_list(self, settings: ListSettings) -> None:
        """Create or change a list; strictness changes take effect at once."""
        self._repo.save_list(settings)
        self.reload()

    def _after(self, report: ImportReport | None) -> ImportReport | None:
        if report is not None and (report.added or report.updated or report.removed):
            self.reload()
        return report

    def import_file(
        self, list_name: str, path: Path, *, full: bool = False, progress: Progress | None = None
    ) -> ImportReport:
        """Import an export file (see ``sync.import_file``) and refresh the matcher."""
        report = sync.import_file(self._repo, list_name, path, full=full, progress=progress)
        self._after(report)
        return report

    def sync_folder(self, list_name: str, folder: Path) -> ImportReport | None:
        """Apply the newest full export in a drop folder (see ``sync.sync_folder``)."""
        return self._after(sync.sync_folder(self._repo, list_name, folder))

    def sync_url(self, list_name: str, url: str) -> ImportReport:
        """Sync a list to a full export at a URL (see ``sync.sync_url``)."""
        report = sync.sync_url(self._repo, list_name, url)
        self._after(report)
        return report
