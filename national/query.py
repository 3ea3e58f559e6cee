"""SQL of national search over the archive, from the regional search's query model.

A national query is a regional ``SearchQuery`` (or ``JourneyQuery``) plus the regions to
search. The conditions are those of ``central.search.repository`` restated over the archive
columns of ``central.archive.schema``:

* exact plate: some ``plate_texts[i]`` equals the folded plate (its key is then the
  plate's key, as the regional index requires);
* wildcard: some ``plate_texts[i] LIKE pattern`` (the regional key range only narrows);
* fuzzy: some ``levenshtein(plate_keys[i], key) <= 1`` (the regional prefix ranges only
  narrow);
* time range, cameras, agent, vehicle type, colour and the keyset cursor as regionally,
  plus ``date`` bounds derived from the time range so that whole days are never listed;
* newest first by ``captured_at DESC, event_id DESC``; journeys oldest first.

The same query is written for two dialects: ``spark`` (Spark SQL, named ``:p`` parameters,
higher-order ``exists``) and ``duckdb`` (``$p`` parameters, ``list_filter``), so the
benchmark compares like with like. Every value from a request is a parameter; the SQL text
holds only fixed fragments of this module, parameter names and the validated integer limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from central.search.query import JourneyQuery, PlateQuery, SearchQuery
from shared.errors import InvalidRequest

Dialect = Literal["spark", "duckdb"]
VIEW: Final = "sightings"
NEWEST: Final = "ORDER BY captured_at DESC, event_id DESC"
OLDEST: Final = "ORDER BY captured_at, event_id"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_UNROLLED: Final = 3  # array elements Spark tests without a lambda

# The regional API's sighting columns (less the thumbnails, which stay in the region),
# with exact capture and receive times in epoch microseconds, and the region.
_COLUMNS: Final = (
    "event_id, agent_id, camera_id, {us}(captured_at) AS captured_us, "
    "{us}(received_at) AS received_us, plate, plate_raw, plate_confidence, plate_candidates, "
    "plate_format, plate_region, plate_box, vehicle_box, vehicle_type, vehicle_type_confidence, "
    "colour, colour_confidence, track_frames, track_seconds, region"
)


def _check_regions(regions: tuple[str, ...]) -> tuple[str, ...]:
    for region in regions:
        if not region or len(region) > 64 or not region.replace("-", "").replace("_", "").isalnum():
            raise InvalidRequest(
                f"region: expected letters, digits, '-' or '_' (1-64), got {region!r}"
            )
    return tuple(dict.fromkeys(regions))


@dataclass(frozen=True)
class NationalQuery:
    """A sighting search over the archives of ``regions`` (empty: every region)."""

    search: SearchQuery
    regions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "regions", _check_regions(self.regions))

    def describe(self) -> dict[str, object]:
        """The query as JSON-ready facts (for the audit log)."""
        return {**self.search.describe(), "regions": list(self.regions)}


@dataclass(frozen=True)
class NationalJourney:
    """One vehicle's sightings over the archives of ``regions`` (empty: every region)."""

    journey: JourneyQuery
    regions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "regions", _check_regions(self.regions))


@dataclass(frozen=True)
class Sql:
    """A statement and its named parameters, for one dialect."""

    text: str
    params: dict[str, object] = field(default_factory=dict)


class _Builder:
    """Collects conditions and parameters in one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.where: list[str] = []
        self.params: dict[str, object] = {}

    def param(self, value: object) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}" if self.dialect == "spark" else f"${name}"

    def time(self, value: datetime) -> str:
        """A timestamp parameter, exact to the microsecond in both dialects."""
        if self.dialect == "spark":
            return f"timestamp_micros({self.param(_micros(value))})"
        return self.param(value.astimezone(UTC))

    def any_of(self, array: str, cond: Callable[[str], str]) -> str:
        """True when ``cond(element)`` holds for some element of ``array``.

        Spark runs a lambda (``exists``) interpreted, outside its generated code, so the
        first ``_UNROLLED`` elements (a sighting has one to three texts) are tested as
        plain expressions and the lambda runs only for longer arrays.
        """
        if self.dialect == "duckdb":
            return f"len(list_filter({array}, lambda e: {cond('e')})) > 0"
        firsts = " OR ".join(cond(f"get({array}, {i})") for i in range(_UNROLLED))
        rest = f"size({array}) > {_UNROLLED} AND exists({array}, e -> {cond('e')})"
        return f"(coalesce({firsts}, false) OR ({rest}))"

    def plate(self, plate: PlateQuery) -> None:
        if plate.mode == "exact":
            contains = "array_contains" if self.dialect == "spark" else "list_contains"
            self.where.append(f"{contains}(plate_texts, {self.param(plate.text)})")
        elif plate.mode == "wildcard":
            # one backslash, the escape character of PlateQuery.like, as each dialect's
            # string literal spells it (Spark SQL unescapes backslashes in literals)
            escape = "'\\\\'" if self.dialect == "spark" else "'\\'"
            like = self.param(plate.like)
            self.where.append(
                self.any_of("plate_texts", lambda t: f"{t} LIKE {like} ESCAPE {escape}")
            )
        else:
            size, key = self.param(len(plate.key)), self.param(plate.key)
            self.where.append(
                self.any_of(
                    "plate_keys",
                    lambda k: f"(abs(length({k}) - {size}) <= 1 AND levenshtein({k}, {key}) <= 1)",
                )
            )

    def window(self, start: datetime | None, end: datetime | None) -> None:
        """Capture time bounds, and the UTC days they span (partition pruning)."""
        if start is not None:
            self.where.append(f"date >= {self.param(_day(start))}")
            self.where.append(f"captured_at >= {self.time(start)}")
        if end is not None:
            self.where.append(f"date <= {self.param(_day(end - timedelta(microseconds=1)))}")
            self.where.append(f"captured_at < {self.time(end)}")

    def one_of(self, column: str, values: tuple[str, ...]) -> None:
        if values:
            marks = ", ".join(self.param(v) for v in values)
            self.where.append(f"{column} IN ({marks})")

    def equals(self, column: str, value: str | None) -> None:
        if value is not None:
            self.where.append(f"{column} = {self.param(value)}")

    def select(self, order: str, limit: int) -> Sql:
        us = "unix_micros" if self.dialect == "spark" else "epoch_us"
        where = " AND ".join(self.where) or "TRUE"
        text = (
            f"SELECT {_COLUMNS.format(us=us)} FROM {VIEW} WHERE {where} {order} LIMIT {int(limit)}"
        )
        return Sql(text, dict(self.params))


def _micros(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _day(value: datetime) -> str:
    return value.astimezone(UTC).date().isoformat()


def search_sql(query: NationalQuery, dialect: Dialect) -> Sql:
    """The statement of one page of a national search (newest first)."""
    q = query.search
    b = _Builder(dialect)
    if q.plate is not None:
        b.plate(q.plate)
    b.window(q.start, q.end)
    b.one_of("region", query.regions)
    b.one_of("camera_id", q.camera_ids)
    b.equals("agent_id", q.agent_id)
    b.equals("vehicle_type", q.vehicle_type)
    b.equals("colour", q.colour)
    if q.cursor is not None:
        at = q.cursor.captured_at
        b.where.append(f"date <= {b.param(_day(at))}")
        b.where.append(
            f"captured_at <= {b.time(at)} AND (captured_at < {b.time(at)} "
            f"OR event_id < {b.param(q.cursor.event_id)})"
        )
    return b.select(NEWEST, q.limit)


def journey_sql(query: NationalJourney, dialect: Dialect) -> Sql:
    """The statement of a national journey (oldest first)."""
    j = query.journey
    b = _Builder(dialect)
    b.plate(j.plate)
    b.window(j.start, j.end)
    b.one_of("region", query.regions)
    return b.select(OLDEST, j.limit)


__all__ = ["NationalJourney", "NationalQuery", "Sql", "journey_sql", "search_sql"]
