"""Wanted-vehicle lists: import, sync, storage and in-memory matching of sightings.

Modules: ``model`` (types), ``importer`` (CSV/JSON exports -> Arrow), ``repository``
(DuckDB), ``sync`` (files, drop folder, HTTP), ``index`` and ``matcher`` (matching),
``edits`` (checks of changes), ``service`` (the matcher kept current across changes, the
changes audited), ``scheduler`` (syncs inside central), ``client`` (the command line's
client of a running central).

Composition (central/app.py)::

    watchlists = WatchlistService(WatchlistRepository(db), audit)   # builds the Matcher
    matches = watchlists.match(sighting)         # list[Match], strongest first
    watchlists.add_entry("national", {"plate": "АА1234ВВ"}, actor, reason)  # swaps it
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
