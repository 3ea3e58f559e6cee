"""Wanted-vehicle lists: import, sync, storage and in-memory matching of sightings.

Modules: ``model`` (types), ``importer`` (CSV/JSON exports -> Arrow), ``repository``
(DuckDB), ``sync`` (files, drop folder, HTTP), ``index`` and ``matcher`` (matching),
``service`` (the matcher kept current across syncs).

Composition (central/app.py)::

    repo = WatchlistRepository(db.writer)
    repo.ensure_schema()
    watchlists = WatchlistService(repo)          # builds the Matcher
    matches = watchlists.match(sighting)         # list[Match], strongest first
    watchlists.sync_folder("national", Path("/var/lib/varta/drop/national"))
"""

from __future__ import annotations

from central.watchlist.matcher import Matcher
from central.watchlist.model import (
    ImportReport,
    ListSettings,
    Match,
    RowProblem,
    Substitution,
    WatchEntry,
)
from central.watchlist.repository import WatchlistRepository
from central.watchlist.service import WatchlistService
from central.watchlist.sync import import_file, sync_folder, sync_url

__all__ = [
    "ImportReport",
    "ListSettings",
    "Match",
    "Matcher",
    "RowProblem",
    "Substitution",
    "WatchEntry",
    "WatchlistRepository",
    "WatchlistService",
    "import_file",
    "sync_folder",
    "sync_url",
]
