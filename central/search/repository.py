"""SQL of sighting search. Every value from a request goes in as a ``?`` parameter; the
only text put into SQL is fixed fragments of this module and ``?`` placeholders."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import duckdb

from central.search.index import INDEX_COLUMNS, key_rows_sql, watermark
from central.search.query import JourneyQuery, PlateQuery, SearchQuery
from central.store.sightings import SIGHTING_COLUMNS

Where = tuple[list[str], list[object]]
_COLUMNS: Final = f"{SIGHTING_COLUMNS}, epoch_us(captured_at) AS captured_us"
_WINDOW_DAYS: Final = (1.0, 4.0, 13.0)
_NARROW_PREFIX: Final = 3  # a wildcard with this many literal leading characters is narrow
_CLUSTER_GAP: Final = timedelta(minutes=5)
_NEWEST: Final = "ORDER BY captured_at DESC, event_id DESC"
_OLDEST: Final = "ORDER BY captured_at, event_id"


def _next_ascii(prefix: str) -> str:
    """The smallest string above every string starting with ``prefix`` (ASCII keys)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def plate_conditions(plate: PlateQuery) -> list[Where]:
    """Index conditions for a plate; the result is the union of the alternatives."""
    if plate.mode == "exact":
        return [(["NOT rev", "k = ?", "text = ?"], [plate.key, plate.text])]
    if plate.mode == "wildcard":
        where = ["NOT rev", "text LIKE ? ESCAPE '\\'"]
        params: list[object] = [plate.like]
        prefix = plate.key
        if prefix:
            where += ["k >= ?", "k < ?"]
            params += [prefix, _next_ascii(prefix)]
        return [(where, params)]
    key = plate.key
    half = (len(key) + 1) // 2
    tail = key[::-1][: len(key) - half]
    fuzzy = "levenshtein(k, ?) <= 1"
    return [
        (["NOT rev", "k >= ?", "k < ?", fuzzy], [key[:half], _next_ascii(key[:half]), key]),
        (["rev", "k >= ?", "k < ?", fuzzy], [tail, _next_ascii(tail), key[::-1]]),
    ]


def filter_conditions(query: SearchQuery) -> Where:
    """Conditions on the columns ``sightings`` and ``plate_index`` share."""
    where: list[str] = []
    params: list[object] = []
    if query.start is not None:
        where.append("captured_at >= ?")
        params.append(query.start)
    if query.end is not None:
        where.append("captured_at < ?")
        params.append(query.end)
    if query.camera_ids:
        where.append("camera_id IN (" + ", ".join("?" * len(query.camera_ids)) + ")")
        params.extend(query.camera_ids)
    for column, value in (
        ("agent_id", query.agent_id),
        ("vehicle_type", query.vehicle_type),
        ("colour", query.colour),
    ):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if query.cursor is not None:
        at = query.cursor.captured_at
        where.append("captured_at <= ? AND (captured_at < ? OR event_id < ?::UUID)")
        params += [at, at, query.cursor.event_id]
    return where, params


def _matching_ids(
    con: duckdb.DuckDBPyConnection, plate: PlateQuery, filters: Where, order: str, limit: int
) -> list[tuple[datetime, str]]:
    """``(captured_at, event_id)`` of the first ``limit`` sightings whose plate matches."""
    mark = watermark(con)
    tail = key_rows_sql("sightings", "received_at >= ?")
    parts: list[str] = []
    params: list[object] = []
    for where, values in plate_conditions(plate):
        conds = " AND ".join([*where, *filters[0]])
        parts.append(f"SELECT captured_at, event_id FROM plate_index WHERE {conds}")
        parts.append(f"SELECT captured_at, event_id FROM ({tail}) WHERE {conds}")
        params += [*values, *filters[1], mark, *values, *filters[1]]
    union = " UNION ".join(parts)
    sql = f"SELECT captured_at, event_id::VARCHAR FROM ({union}) {order} LIMIT ?"
    return [(r[0], r[1]) for r in con.execute(sql, [*params, limit]).fetchall()]


def _clusters(keys: list[tuple[datetime, str]]) -> list[list[tuple[datetime, str]]]:
    """Keys in time order, split wherever two neighbours are more than a few minutes apart."""
    ordered = sorted(keys)
    groups: list[list[tuple[datetime, str]]] = [[ordered[0]]]
    for key in ordered[1:]:
        if key[0] - groups[-1][-1][0] > _CLUSTER_GAP:
            groups.append([])
        groups[-1].append(key)
    return groups


def fetch_rows(
    con: duckdb.DuckDBPyConnection,
    keys: list[tuple[datetime, str]],
    order: str,
    clustered: bool = True,
) -> list[dict[str, Any]]:
    """Full sighting rows of ``(captured_at, event_id)`` keys, in ``order``.

    ``clustered``: one lookup per cluster of keys close in time, bounded by their capture
    times: the zone maps of the time-ordered table then leave about one row group per
    cluster to read. (One IN list over all keys would read every row group between the
    oldest and the newest key.) Without: one lookup of all keys, for sources that every
    lookup reads whole (the archive's files).
    """
    if not keys:
        return []
    parts: list[str] = []
    params: list[object] = []
    for group in _clusters(keys) if clustered else [sorted(keys)]:
        ids = ", ".join(["?::UUID"] * len(group))
        parts.append(
            f"SELECT {_COLUMNS} FROM sightings "
            f"WHERE captured_at BETWEEN ? AND ? AND event_id IN ({ids})"
        )
        params += [group[0][0], group[-1][0], *(k[1] for k in group)]
    sql = " UNION ALL ".join(parts)
    cur = con.execute(f"SELECT * FROM ({sql}) {order}", params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def lower_bounds(query: SearchQuery, now: datetime) -> list[datetime | None]:
    """Growing look-back windows for a newest-first query that no index narrows.

    Running ``captured_at >= low ... ORDER BY captured_at DESC LIMIT n`` for each bound in
    turn and stopping at the first that fills the page returns exactly the newest ``n``
    (every row below ``low`` is older than all of them), while the zone maps keep a search
    for a common pattern to the last day instead of the whole store. ``None``: no bound.
    """
    ref = query.end or now
    if query.cursor is not None and query.cursor.captured_at < ref:
        ref = query.cursor.captured_at
    lows: list[datetime | None] = []
    for days in _WINDOW_DAYS:
        low = ref - timedelta(days=days)
        if query.start is not None and low <= query.start:
            break
        lows.append(low)
    return [*lows, None]


class SearchRepository:
    """Reads for search and journeys; every method takes a reader cursor.

    Args:
        clock: UNIX time source; only picks the first look-back window (a speed matter).
        clustered: Fetch rows cluster by cluster of capture time (see ``fetch_rows``).
    """

    def __init__(self, clock: Callable[[], float] = time.time, clustered: bool = True) -> None:
        self._clock = clock
        self._clustered = clustered

    def search(self, con: duckdb.DuckDBPyConnection, query: SearchQuery) -> list[dict[str, Any]]:
        """One page of sightings matching ``query``, newest first."""
        base = filter_conditions(query)
        narrow = query.plate is not None and (
            query.plate.mode != "wildcard" or len(query.plate.key) >= _NARROW_PREFIX
        )
        bounds = (
            [None] if narrow else lower_bounds(query, datetime.fromtimestamp(self._clock(), UTC))
        )
        rows: list[dict[str, Any]] = []
        for low in bounds:
            where, params = list(base[0]), list(base[1])
            if low is not None:
                where.append("captured_at >= ?")
                params.append(low)
            rows = self._page(con, query, (where, params))
            if len(rows) == query.limit:
                break
        return rows

    def _page(
        self, con: duckdb.DuckDBPyConnection, query: SearchQuery, filters: Where
    ) -> list[dict[str, Any]]:
        if query.plate is not None:
            keys = _matching_ids(con, query.plate, filters, _NEWEST, query.limit)
            return fetch_rows(con, keys, _NEWEST, self._clustered)
        where = " AND ".join(filters[0]) or "TRUE"
        cur = con.execute(
            f"SELECT {_COLUMNS} FROM sightings WHERE {where} {_NEWEST} LIMIT ?",
            [*filters[1], query.limit],
        )
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def journey(self, con: duckdb.DuckDBPyConnection, query: JourneyQuery) -> list[dict[str, Any]]:
        """Sightings of one plate, oldest first."""
        filters = filter_conditions(SearchQuery(start=query.start, end=query.end))
        keys = _matching_ids(con, query.plate, filters, _OLDEST, query.limit)
        return fetch_rows(con, keys, _OLDEST, self._clustered)


__all__ = ["INDEX_COLUMNS", "SearchRepository", "fetch_rows", "plate_conditions"]
