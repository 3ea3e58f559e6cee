"""The watchlist service: the current matcher, and every change of the lists while central runs.

The composition root builds one ``WatchlistService`` and hands it to the alert engine
(``matcher``/``match``, on the ingest thread) and to the REST API (the changes). A change
writes DuckDB first (through the one writer), then builds a new ``Matcher`` on the calling
thread - a request's worker thread or a sync's, never the ingest thread - and swaps it in
with one reference assignment: ingest matches against the old matcher meanwhile and never
sees a half-loaded list. Then the listeners (past-read matching) get the keys of the
entries added or changed.

Every change made by a person (``configure``, ``upload``, the entry changes,
``delete_list``) needs a reason and is written to the audit log with the actor.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import msgspec

from central.audit.sink import AuditSink
from central.watchlist import sync
from central.watchlist.edits import (
    audit_facts,
    merge_settings,
    one_entry,
    record_of,
    require_reason,
    with_file_settings,
)
from central.watchlist.importer import Batch, Format, Progress, ReadFile
from central.watchlist.matcher import Matcher
from central.watchlist.model import (
    VALIDITIES,
    ImportReport,
    ListChange,
    ListSettings,
    Match,
    Validity,
)
from central.watchlist.reading import ExportReader
from central.watchlist.repository import WatchlistRepository
from shared.errors import Conflict, InvalidRequest, NotFound
from shared.wire import Sighting

log = logging.getLogger(__name__)

ChangeListener = Callable[[str, Sequence[str]], None]
"""Called with a list's name and the keys of its entries just added or changed."""

MAX_PAGE: Final = 1000


class WatchlistService:
    """Owns the current ``Matcher`` of a repository and the changes of its lists.

    Args:
        repo: The repository.
        audit: Where changes are recorded; None records nothing (offline tools).
        reader: Reads exports; by default on the caller's thread (central passes one
            that reads in a worker process).
    """

    def __init__(
        self,
        repo: WatchlistRepository,
        audit: AuditSink | None = None,
        reader: ExportReader | None = None,
    ) -> None:
        self._repo = repo
        self._audit = audit
        self._reader = reader or ExportReader(isolated=False)
        self._rebuild = threading.Lock()
        self._listeners: list[ChangeListener] = []
        self._generation = 0
        for name in repo.finish_interrupted_imports():
            log.warning("list %s: entries of the interrupted import are not matched against "
                        "past sightings", name)  # fmt: skip
        self._matcher = Matcher.from_repository(repo)

    @property
    def matcher(self) -> Matcher:
        """The matcher in use now (read-only; safe to share between threads)."""
        return self._matcher

    @property
    def repository(self) -> WatchlistRepository:
        """The repository (reads)."""
        return self._repo

    def match(self, sighting: Sighting) -> list[Match]:
        """Entries a sighting matches, strongest first (see ``Matcher.match``)."""
        return self._matcher.match(sighting)

    @property
    def generation(self) -> int:
        """Grows with every matcher rebuild, which every change of a list is followed by
        (a cache of list contents built at one generation is current while it holds)."""
        return self._generation

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener`` after entries were added or changed (and the matcher swapped)."""
        self._listeners.append(listener)

    def reload(self, now: datetime | None = None) -> Matcher:
        """Rebuild the matcher from the repository and swap it in.

        The lock orders concurrent rebuilds; each reads the repository inside it, so the
        last swap always holds the latest committed lists.
        """
        with self._rebuild:
            self._generation += 1
            started = time.perf_counter()
            matcher = Matcher.from_repository(self._repo, now or datetime.now(UTC))
            self._matcher = matcher  # one reference assignment: the swap
        log.info(
            "watchlist matcher reloaded: %s entries in %.2fs",
            len(matcher),
            time.perf_counter() - started,
        )
        return matcher

    def close(self) -> None:
        """Stop the export reader's worker process, if any."""
        self._reader.close()

    def retention_days(self) -> dict[str, int]:
        """How long each list keeps hit evidence after its alert closed, by list name."""
        return {s.name: s.retention_days for s in self._repo.lists()}

    # -- lists -----------------------------------------------------------------------

    def lists(self) -> list[ListSettings]:
        """Every list's settings, by name."""
        return self._repo.lists()

    def get_list(self, name: str) -> ListSettings:
        """One list's settings (``NotFound`` when none has that name)."""
        return self._repo.get_list(name)

    def save_list(self, settings: ListSettings) -> None:
        """Create or change a list (offline tools); strictness changes take effect at once."""
        self._repo.save_list(settings)
        self.reload()

    def configure(self, name: str, change: ListChange, actor: str, reason: str) -> ListSettings:
        """Create a list or change the settings given in ``change`` (others are kept).

        Raises:
            InvalidRequest: A bad name, setting or reason.
        """
        why = require_reason(reason)
        settings, before = self._merged(name, change)
        self._repo.save_list(settings)
        if before is not None and before.strict != settings.strict:
            self.reload()
        self._record(
            actor,
            "watchlist.create" if before is None else "watchlist.settings",
            name,
            why,
            {"settings": msgspec.to_builtins(settings)},
        )
        return settings

    def _merged(self, name: str, change: ListChange) -> tuple[ListSettings, ListSettings | None]:
        try:
            before: ListSettings | None = self._repo.get_list(name)
        except NotFound:
            before = None
        return merge_settings(name, before, change), before

    def delete_list(self, name: str, actor: str, reason: str) -> int:
        """Remove a list and its entries; how many entries went."""
        why = require_reason(reason)
        gone = self._repo.delete_list(name)
        self.reload()
        self._record(actor, "watchlist.delete", name, why, {"entries": gone})
        return gone

    # -- imports ---------------------------------------------------------------------

    def upload(
        self,
        name: str,
        data: bytes,
        fmt: Format,
        *,
        full: bool,
        change: ListChange,
        actor: str,
        reason: str,
        max_remove_share: float = 1.0,
    ) -> ImportReport:
        """Load a registry export into a list (created when new; settings kept unless
        given in ``change``, or in a JSON export's ``list`` object).

        Returns:
            Counts and the rejected rows with line numbers and reasons.

        Raises:
            InvalidRequest: Bad reason or settings, an unreadable file as a whole, or a
                full export that would remove more than ``max_remove_share`` of the list.
        """
        why = require_reason(reason)
        started = time.perf_counter()
        settings, before = self._merged(name, change)
        batch = self._reader.read_bytes(data, fmt, settings.default_priority)
        if batch.settings:
            change = with_file_settings(change, batch.settings)
            settings, before = self._merged(name, change)
        if before is None or change != ListChange():
            self._repo.save_list(settings)
        strictness = before is not None and before.strict != settings.strict
        report = sync.load_batch(
            self._repo,
            name,
            change.source or f"upload:{fmt}",
            batch,
            full=full,
            started=started,
            max_remove_share=max_remove_share,
        )
        if self._after(report) is None and strictness:
            self.reload()
        self._record(
            actor,
            "watchlist.import",
            name,
            why,
            {
                "format": fmt,
                "full": full,
                "bytes": len(data),
                **{k: getattr(report, k) for k in ("rows", "added", "updated", "removed")},
                "rejected": report.rejected,
                "settings": msgspec.to_builtins(settings),
            },
        )
        return report

    def import_file(
        self, list_name: str, path: Path, *, full: bool = False, progress: Progress | None = None
    ) -> ImportReport:
        """Import an export file (see ``sync.import_file``) and refresh the matcher."""
        report = sync.import_file(
            self._repo, list_name, path, full=full, progress=progress, read=self._reader.read_file
        )
        self._after(report)
        return report

    def sync_folder(
        self, list_name: str, folder: Path, *, max_remove_share: float = 0.5, actor: str = ""
    ) -> ImportReport | None:
        """Apply the newest full export in a drop folder (see ``sync.sync_folder``); a sync
        that changed the list is audited when ``actor`` is given."""
        report = sync.sync_folder(
            self._repo,
            list_name,
            folder,
            max_remove_share=max_remove_share,
            read=self._reader.read_file,
        )
        self._synced(self._after(report), actor)
        return report

    def sync_url(
        self,
        list_name: str,
        url: str,
        *,
        max_remove_share: float = 0.5,
        actor: str = "",
        verify: sync.Verify | None = None,
        token: str = "",
        read: ReadFile | None = None,
    ) -> ImportReport:
        """Sync a list to a full export at a URL (see ``sync.sync_url``: ``verify`` checks a
        signed export, ``token`` is sent as a bearer token, ``read`` replaces the export
        reader); audited as above."""
        report = sync.sync_url(
            self._repo,
            list_name,
            url,
            max_remove_share=max_remove_share,
            read=read or self._reader.read_file,
            verify=verify,
            token=token,
        )
        self._synced(self._after(report), actor)
        return report

    def _synced(self, report: ImportReport | None, actor: str) -> None:
        if report is None or not actor:
            return
        counts = {k: getattr(report, k) for k in ("rows", "added", "updated", "removed")}
        self._record(
            actor,
            "watchlist.sync",
            report.list_name,
            f"scheduled sync from {report.source}",
            {**counts, "rejected": report.rejected, "source": report.source},
        )

    def _after(self, report: ImportReport | None) -> ImportReport | None:
        """Reload and tell the listeners when entries changed; the report then, else None."""
        if report is not None and (report.added or report.updated or report.removed):
            self.reload()
            self._changed(report.list_name, report.changed)
            return report
        return None

    def _changed(self, name: str, keys: Sequence[str]) -> None:
        if not keys:
            return
        for listener in self._listeners:
            listener(name, keys)

    # -- single entries --------------------------------------------------------------

    def entries(
        self,
        name: str,
        *,
        plate: str | None = None,
        category: str | None = None,
        after: str = "",
        limit: int = 100,
        validity: Validity | None = None,
    ) -> list[dict[str, Any]]:
        """A page of a list's entries by key (``after``: the last key of the page before;
        ``validity``: only the entries active, pending or expired now)."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidRequest(f"limit: expected 1..{MAX_PAGE}, got {limit}")
        if validity is not None and validity not in VALIDITIES:
            raise InvalidRequest(f"validity: expected one of {list(VALIDITIES)}, got {validity!r}")
        self._repo.get_list(name)
        return self._repo.entries(
            name, plate=plate, category=category, after=after, limit=limit, validity=validity
        )

    def entry(self, name: str, key: str) -> dict[str, Any]:
        """One entry (``NotFound`` when the list or the key is unknown)."""
        return self._repo.entry(name, key)

    def add_entry(
        self, name: str, fields: Mapping[str, Any], actor: str, reason: str
    ) -> dict[str, Any]:
        """Add one entry (fields as an export row: plate, category, priority, ...).

        Raises:
            InvalidRequest: A malformed field (the message says which) or reason.
            Conflict: The list already holds an entry with the same key.
        """
        why = require_reason(reason)
        settings = self._repo.get_list(name)
        batch = one_entry(fields, settings.default_priority)
        key = str(batch.table.column("entry_key")[0])
        try:
            self._repo.entry(name, key)
        except NotFound:
            pass
        else:
            raise Conflict(f"list {name!r} already holds entry {key!r}; edit it instead")
        return self._store(name, key, batch, actor, "watchlist.entry.add", why)

    def edit_entry(
        self, name: str, key: str, changes: Mapping[str, Any], actor: str, reason: str
    ) -> dict[str, Any]:
        """Change fields of one entry; the others keep their values.

        An entry's key is its registry id (``id:...``) or, without one, made from its
        plate (or pattern and vehicle): such a plate cannot change - remove the entry and
        add the new one.
        """
        why = require_reason(reason)
        settings = self._repo.get_list(name)
        record = record_of(self._repo.entry(name, key))
        record.update({k: v for k, v in changes.items() if v is not None})
        batch = one_entry(record, settings.default_priority)
        made = str(batch.table.column("entry_key")[0])
        if made != key:
            raise InvalidRequest(
                f"entry {key!r} is keyed by its plate and vehicle; the change would make it "
                f"{made!r}: remove it and add a new entry instead"
            )
        return self._store(name, key, batch, actor, "watchlist.entry.edit", why)

    def remove_entry(self, name: str, key: str, actor: str, reason: str) -> None:
        """Remove one entry.

        Raises:
            NotFound: No such list or entry.
        """
        why = require_reason(reason)
        entry = self._repo.entry(name, key)
        self._repo.remove_entries(name, [key])
        self.reload()
        self._record(actor, "watchlist.entry.remove", f"{name}/{key}", why, audit_facts(entry))

    def _store(
        self, name: str, key: str, batch: Batch, actor: str, action: str, why: str
    ) -> dict[str, Any]:
        counts = self._repo.load(name, batch.table, full=False)
        self.reload()
        entry = self._repo.entry(name, key)
        self._record(actor, action, f"{name}/{key}", why, audit_facts(entry))
        self._changed(name, counts.changed)
        return entry

    def _record(
        self, actor: str, action: str, target: str, reason: str, details: dict[str, Any]
    ) -> None:
        if self._audit is not None:
            self._audit.record(actor, action, f"watchlist:{target}", reason, details)
