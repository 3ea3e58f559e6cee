"""The wanted lists a national hub publishes: a signed JSON Lines export per list.

The export is exactly what the URL sync of a regional central reads
(``central/watchlist/importer.py``: one object per line with ``id``, ``plate``,
``category``, ``priority``, ``reason``, ``case_ref``, ``valid_from``, ``valid_until``,
``source``, ``vehicle_type``, ``colour``), ordered by entry key so the same list gives the
same bytes. An entry keyed ``id:<x>`` is exported with ``id`` ``<x>``; other keys are derived
from the plate again by the region, to the same key. Each object also carries the hub's
own ``entry_key``, ``kind`` and ``plate_folded``, which the generic reader ignores and a
region reads directly once the signature verified (``central/national/hub_export.py``).

Exports are built with DuckDB's ``COPY ... (FORMAT json)`` into ``<data_dir>/national/`` and
cached per list. While the watchlist service's ``generation`` (it grows with every change
of any list) is the one the cache was checked at, a request reads nothing at all, so a
region's ``If-None-Match`` is answered 304 at once. After a change the list's content
fingerprint (row count and the XOR of every row's hash, one scan) decides whether this
list changed and its export is built again. The ETag is the export's SHA-256, signed with
the hub's key (``signing.py``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Final

import duckdb

from central.national.signing import Signer, key_id
from central.store.db import Database
from shared.errors import NotFound

log = logging.getLogger(__name__)

MEDIA_TYPE: Final = "application/x-ndjson"

_FINGERPRINT: Final = (
    "SELECT count(*), coalesce(bit_xor(hash(entry_key, kind, plate, plate_raw, category, "
    "priority, reason, case_ref, valid_from, valid_until, source, vehicle_type, colour)), 0) "
    "FROM watchlist_entries WHERE list_name = ?"
)
_TIME: Final = "strftime({0}, '%Y-%m-%dT%H:%M:%S.%fZ') AS {0}"
_EXPORT: Final = (
    "SELECT CASE WHEN starts_with(entry_key, 'id:') THEN entry_key[4:] ELSE '' END AS id, "
    "coalesce(nullif(plate_raw, ''), plate) AS plate, category, priority, reason, case_ref, "
    f"{_TIME.format('valid_from')}, {_TIME.format('valid_until')}, source, vehicle_type, "
    "colour, entry_key, kind, plate AS plate_folded "
    "FROM watchlist_entries WHERE list_name = ? ORDER BY entry_key"
)


@dataclass(frozen=True)
class Published:
    """One built, signed export of a list.

    Attributes:
        name: The list.
        path: The export file.
        etag: Quoted strong ETag (from the SHA-256).
        digest: SHA-256 of the file, hex.
        signature: ``X-Varta-Signature`` value.
        entries: Entries in the export.
        built_at: UNIX time it was built.
        key_id: Id of the signing key (``signing.key_id``).
        last_modified: ``built_at`` as an HTTP date (signed; regions refuse older exports).
    """

    name: str
    path: Path
    etag: str
    digest: str
    signature: str
    entries: int
    built_at: float
    key_id: str
    last_modified: str


class ListPublisher:
    """Builds, signs and caches the exports of the published lists.

    Args:
        db: The hub's database.
        signer: The hub's key.
        names: The lists that may be published.
        folder: Where export files are written (old ones are removed).
        generation: The watchlist service's change counter (``WatchlistService.generation``).
    """

    def __init__(
        self,
        db: Database,
        signer: Signer,
        names: list[str],
        folder: Path,
        generation: Callable[[], int],
    ) -> None:
        self._db = db
        self._generation = generation
        self._checked: dict[str, int] = {}  # list -> generation its cache was last checked at
        self._signer = signer
        self._names = frozenset(names)
        self._folder = folder
        self._build = threading.Lock()
        self._cache: dict[str, tuple[tuple[int, int], Published]] = {}
        self._old: dict[str, list[Path]] = {}
        self.builds = 0
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.jsonl*"):  # left by an earlier run
            stale.unlink(missing_ok=True)

    @property
    def names(self) -> list[str]:
        """The published lists, by name."""
        return sorted(self._names)

    def cached(self, name: str) -> Published | None:
        """The export last built for ``name``, if any (no database read)."""
        held = self._cache.get(name)
        return held[1] if held else None

    def current(self, name: str) -> Published:
        """The export of ``name`` as the list is now (built when it changed).

        Raises:
            NotFound: ``name`` is not published, or the hub has no such list.
        """
        if name not in self._names:
            raise NotFound(
                f"expected a published list ({', '.join(self.names) or 'none'}), got {name!r}"
            )
        generation = self._generation()
        cached = self._cache.get(name)
        if cached is not None and self._checked.get(name) == generation:
            return cached[1]
        with self._db.reader() as con:
            fingerprint = _fingerprint(con, name)
        if cached is not None and cached[0] == fingerprint:
            self._checked[name] = generation
            return cached[1]
        with self._build:  # one build at a time; a waiting request reuses the result
            with self._db.reader() as con:
                fingerprint = _fingerprint(con, name)
                cached = self._cache.get(name)
                if cached is not None and cached[0] == fingerprint:
                    return cached[1]
                published = self._export(con, name, fingerprint[0])
            self._cache[name] = (fingerprint, published)
            self._checked[name] = generation
            self._retire(name, published.path)
            return published

    def _export(self, con: duckdb.DuckDBPyConnection, name: str, entries: int) -> Published:
        if con.execute("SELECT 1 FROM watchlist_lists WHERE name = ?", [name]).fetchone() is None:
            raise NotFound(f"list {name!r} is published but does not exist on this hub")
        started = time.perf_counter()
        path = self._folder / f"{uuid.uuid4().hex}.jsonl"
        target = str(path).replace("'", "''")
        con.execute(f"COPY ({_EXPORT}) TO '{target}' (FORMAT json)", [name])
        digest = _sha256(path)
        built_at = time.time()
        os.utime(path, (built_at, built_at))  # the file response's Last-Modified says the same
        last_modified = formatdate(built_at, usegmt=True)
        self.builds += 1
        log.info("national list %s: %d entries exported and signed in %.2fs",
                 name, entries, time.perf_counter() - started)  # fmt: skip
        return Published(
            name=name,
            path=path,
            etag=f'"{digest[:32]}"',
            digest=digest,
            signature=self._signer.sign(name, last_modified, digest),
            entries=entries,
            built_at=built_at,
            last_modified=last_modified,
            key_id=key_id(self._signer.public),
        )

    def _retire(self, name: str, newest: Path) -> None:
        """Keep the newest two files of a list (a response may still be reading the older)."""
        kept = [*self._old.get(name, []), newest]
        for path in kept[:-2]:
            path.unlink(missing_ok=True)
        self._old[name] = kept[-2:]


def _fingerprint(con: duckdb.DuckDBPyConnection, name: str) -> tuple[int, int]:
    row = con.execute(_FINGERPRINT, [name]).fetchone()
    assert row is not None  # an aggregate always gives a row
    return int(row[0]), int(row[1])


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
