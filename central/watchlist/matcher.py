"""In-memory matching of sightings against all active wanted-vehicle lists.

A ``Matcher`` is built from the repository (``Matcher.from_repository``) and is read-only
afterwards, so any number of threads may call ``match``; after a sync, build a new one and
swap the reference. Every plate text of a sighting is tried: the folded read, the raw OCR
output and each top-N candidate. Per candidate:

1. exact and OCR-equivalent (0/O/D/Q, 1/I, 8/B, 5/S, 2/Z, 6/G) entries come from one dict
   lookup of the canonical key (see ``index``);
2. on non-strict lists, one extra character in the read is found by looking up the read
   with each character deleted, one missing character through the ``DeletionIndex``;
3. wildcard patterns (and attribute entries with a plate pattern) sharing their rarest
   literal trigram (else bigram) with the read are confirmed by regex;
4. attribute entries without a plate condition are looked up by type and colour.

Texts that fold to the same canonical key share steps 1-3, so OCR candidates that differ
only by confusable characters cost little more than one.

Strict lists match exact folded plates (and patterns literally) only, and only texts
read with a confidence of at least ``strict_min_confidence`` (the calibrated alert
threshold, :data:`shared.plates.STRICT_MIN_CONFIDENCE`, where central passes it): a read
below it is a candidate for search and for the OCR-tolerant lists, never a strict-list
hit. Entries outside their validity interval at the capture time are not matched.

Score = quality x (0.5 + 0.5 x candidate confidence); quality is 1.0 for exact, minus 0.1
per OCR-equivalent character and 0.25 for an insertion/deletion; 0.9 for a literal pattern
match (0.8 via OCR equivalence); 0.7 for an attribute entry with a plate pattern and 0.5
without one (weighted by the vehicle type/colour confidence instead).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Final, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from central.watchlist.hits import Hit, Seen, describe, seen_confidence, vehicle_terms
from central.watchlist.index import (
    MIN_EDIT_LENGTH,
    DeletionIndex,
    KeyFilter,
    Pattern,
    PatternIndex,
    StringColumn,
    canonical,
    canonical_array,
    compact_array,
    compile_pattern,
)
from central.watchlist.model import ListSettings, Match, Substitution, WatchEntry
from central.watchlist.repository import WatchlistRepository
from shared.plates import fold
from shared.wire import Sighting, Vehicle

log = logging.getLogger(__name__)

_RECORD: Final = (
    "list_name", "entry_key", "kind", "plate_raw", "category", "case_ref", "source",
    "vehicle_type", "colour", "reason",
)  # fmt: skip
_SEP: Final = "\x1f"  # ASCII unit separator; the importer keeps it out of the fields
_EDIT_PENALTY: Final = 0.25
_SUB_PENALTY: Final = 0.1


def _subs(read: str, listed: str, skip: int = -1) -> tuple[Substitution, ...]:
    """Where two aligned, canonically equal strings differ (positions in the read).

    ``skip`` is the position of an extra character in the read, not in ``read`` itself.
    """
    return tuple(
        Substitution(i + 1 if 0 <= skip <= i else i, r, p)
        for i, (r, p) in enumerate(zip(read, listed, strict=True))
        if r != p
    )


class Matcher:
    """All active entries of all lists, indexed for matching (see the module docstring).

    Build with ``Matcher.build`` or ``Matcher.from_repository``.
    """

    def __init__(self, table: pa.Table, lists: Sequence[ListSettings]) -> None:
        started = time.perf_counter()
        # All text of a row in one string: a hit then touches one spot of memory, not ten.
        # Free text goes last, so a stray separator in it cannot shift the other fields.
        joined = pc.binary_join_element_wise(
            *(pc.fill_null(table.column(name), "") for name in _RECORD), _SEP
        )
        self._records = StringColumn(joined)
        self._plates: list[str] = table.column("plate").to_pylist()
        strict = pc.is_in(
            table.column("list_name"),
            value_set=pa.array([s.name for s in lists if s.strict], pa.string()),
        )
        self._strict = compact_array("b", strict.to_numpy().astype(np.int8))
        valid_from = pc.fill_null(table.column("valid_from"), -math.inf)
        valid_until = pc.fill_null(table.column("valid_until"), math.inf)
        self._from = compact_array("d", valid_from.to_numpy())
        self._until = compact_array("d", valid_until.to_numpy())
        self._priority = compact_array("h", table.column("priority").to_numpy().astype(np.int16))
        kinds = table.column("kind")
        self._exact, self._deletions = self._index_plates(kinds)
        self._known = KeyFilter(list(self._exact))
        self._patterns, self._attributes = self._index_partial(kinds)
        log.info(
            "matcher built: %s entries, %s patterns in %.2fs",
            len(self._plates), self._patterns.size, time.perf_counter() - started,
        )  # fmt: skip

    @classmethod
    def from_repository(cls, repo: WatchlistRepository, now: datetime | None = None) -> Matcher:
        """Build from every entry of ``repo`` not expired at ``now`` (default: now)."""
        return cls(repo.active_entries(now), repo.lists())

    @classmethod
    def build(cls, table: pa.Table, lists: Sequence[ListSettings]) -> Matcher:
        """Build from an Arrow table as ``WatchlistRepository.active_entries`` returns.

        Rows of lists not in ``lists`` are treated as non-strict.
        """
        return cls(table, lists)

    def _index_plates(
        self, kinds: pa.ChunkedArray
    ) -> tuple[dict[bytes, int | tuple[int, ...]], DeletionIndex]:
        """Canonical-key dict of full plates, and the deletion index of non-strict ones."""
        is_plate = pc.equal(kinds, "plate").to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(is_plate).astype(np.int32)
        plates = pa.array(self._plates, pa.string()).take(pa.array(rows, pa.int32()))
        canon = canonical_array(plates)
        keys: list[bytes] = canon.cast(pa.binary()).to_pylist()
        row_list: list[int] = rows.tolist()
        exact: dict[bytes, int | tuple[int, ...]] = dict(zip(keys, row_list, strict=True))
        if len(exact) < len(keys):  # OCR-equivalent plates share a key: keep them all
            counts = pc.value_counts(canon)
            shared = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
            for key in shared.cast(pa.binary()).to_pylist():
                del exact[key]
            mask = pc.is_in(canon, value_set=shared).to_numpy(zero_copy_only=False)
            for at in np.flatnonzero(mask).tolist():
                before = exact.get(keys[at])
                exact[keys[at]] = (*(() if before is None else _rows(before)), row_list[at])
        editable = (np.frombuffer(self._strict, dtype=np.int8)[rows] == 0) & (
            pc.utf8_length(canon).to_numpy() >= MIN_EDIT_LENGTH
        )
        return exact, DeletionIndex.from_arrow(canon.filter(editable), rows[editable])

    def _index_partial(
        self, kinds: pa.ChunkedArray
    ) -> tuple[PatternIndex, dict[tuple[str, str], list[int]]]:
        """Wildcard patterns (with attributes or not) and plate-free attribute entries."""
        patterns: list[Pattern] = []
        attributes: dict[tuple[str, str], list[int]] = {}
        partial = np.flatnonzero(pc.not_equal(kinds, "plate").to_numpy(zero_copy_only=False))
        for row in partial.tolist():
            record = self._record(row)
            vtype, colour, plate = record["vehicle_type"], record["colour"], self._plates[row]
            if plate:
                patterns.append(compile_pattern(row, plate, vtype, colour))
            else:
                attributes.setdefault((vtype, colour), []).append(row)
        return PatternIndex(patterns), attributes

    def __len__(self) -> int:
        return len(self._plates)

    @property
    def index_bytes(self) -> int:
        """Bytes held by the deletion index and the entry columns (not the dict and plates)."""
        return self._deletions.nbytes + self._records.nbytes

    def match(
        self,
        sighting: Sighting,
        now: float | None = None,
        min_score: float = 0.0,
        strict_min_confidence: float = 0.0,
    ) -> list[Match]:
        """Entries a sighting matches, strongest first.

        Args:
            sighting: The sighting; its plate text, raw read and candidates are all tried.
            now: Time at which entries must be valid (UNIX seconds); default the capture
                time.
            min_score: Drop matches scoring below this (e.g. edits on weak candidates).
            strict_min_confidence: Texts read less confidently than this are not
                matched against strict lists.

        Returns:
            One ``Match`` per matched entry (its best candidate), by score then priority.
        """
        texts: list[tuple[str, float]] = []
        plate = sighting.plate
        if plate is not None:
            texts = [(plate.text, plate.confidence), (plate.raw, plate.confidence)]
            texts.extend((c.text, c.confidence) for c in plate.candidates)
        when = sighting.captured_at if now is None else now
        return self.match_texts(texts, sighting.vehicle, when, min_score, strict_min_confidence)

    def match_texts(
        self,
        texts: Sequence[tuple[str, float]],
        vehicle: Vehicle | None,
        now: float,
        min_score: float = 0.0,
        strict_min_confidence: float = 0.0,
    ) -> list[Match]:
        """Match plate texts with confidences (index 0 is the best read) and a vehicle;
        strict lists see only texts of at least ``strict_min_confidence``."""
        best: dict[int, Hit] = {}
        groups: dict[bytes, list[tuple[int, str]]] = {}  # canonical key -> candidates
        seen: set[str] = set()
        for i, (text, _conf) in enumerate(texts):
            value = text if _folded(text) else fold(text)
            if value and value not in seen:
                seen.add(value)
                groups.setdefault(canonical(value), []).append((i, value))
        keys = list(groups)
        seen_as = vehicle_terms(vehicle)
        for key, shorter in zip(keys, self._deletions.lookup(keys), strict=True):
            found = self._lookup(key, shorter)
            if found is None:
                continue
            for i, text in groups[key]:
                conf = texts[i][1]
                read = _Read(i, text, key, conf, conf >= strict_min_confidence)
                self._evaluate(best, found, read, seen_as)
        if seen_as is not None and self._attributes:
            self._vehicle(best, seen_as)
        hits = [
            h
            for h in best.values()
            if h.score >= min_score and self._from[h.row] <= now < self._until[h.row]
        ]
        hits.sort(key=lambda h: (-h.score, self._priority[h.row], h.row))
        return [self._result(h) for h in hits]

    def _lookup(self, key: bytes, shorter: list[int]) -> _Found | None:
        """Everything one canonical read may match; None when nothing."""
        same = self._exact.get(key)  # a row number: 0 is a real row, so test for None
        exact = () if same is None else _rows(same)
        longer: list[tuple[int, int]] = []
        if len(key) > MIN_EDIT_LENGTH:  # the read has one extra character at pos
            bitmap, mask = self._known.table, self._known.mask
            for pos in range(len(key)):
                if pos and key[pos] == key[pos - 1]:
                    continue  # deleting either of two equal characters gives the same key
                rest = key[:pos] + key[pos + 1 :]
                spot = hash(rest) & mask
                if bitmap[spot >> 3] >> (spot & 7) & 1:
                    found = self._exact.get(rest)
                    if found is not None:
                        strict = self._strict
                        longer.extend((pos, row) for row in _rows(found) if not strict[row])
        missing: list[tuple[int, int]] = []
        for row in shorter:  # the read lacks the listed character at pos
            listed = canonical(self._plates[row])
            pos = next((p for p in range(len(listed)) if listed[:p] + listed[p + 1 :] == key), -1)
            if pos >= 0:
                missing.append((pos, row))
        patterns = self._patterns.candidates(key) if self._patterns.size else []
        if not (exact or longer or missing or patterns):
            return None
        return _Found(exact, longer, missing, patterns)

    def _evaluate(
        self, best: dict[int, Hit], found: _Found, read: _Read, seen_as: Seen | None
    ) -> None:
        """Score one read against what its canonical key found."""
        i, text, conf = read.cand, read.text, read.confidence
        for row in found.exact:
            if self._strict[row] and not read.strict_ok:
                continue
            listed = self._plates[row]
            if listed == text:
                self._keep(best, Hit(_score(1.0, conf), row, "exact", i, text, conf))
            elif not self._strict[row]:
                subs = _subs(text, listed)
                quality = 1.0 - _SUB_PENALTY * len(subs)
                self._keep(best, Hit(_score(quality, conf), row, "confusion", i, text, conf, subs))
        for pos, row in found.longer:
            subs = _subs(text[:pos] + text[pos + 1 :], self._plates[row], pos)
            quality = 1.0 - _EDIT_PENALTY - _SUB_PENALTY * len(subs)
            self._keep(
                best, Hit(_score(quality, conf), row, "edit", i, text, conf, subs, "insert", pos)
            )
        for pos, row in found.shorter:
            listed = self._plates[row]
            subs = _subs(text, listed[:pos] + listed[pos + 1 :])
            quality = 1.0 - _EDIT_PENALTY - _SUB_PENALTY * len(subs)
            self._keep(
                best, Hit(_score(quality, conf), row, "edit", i, text, conf, subs, "delete", pos)
            )
        if found.patterns:
            self._wildcards(best, found.patterns, read, seen_as)

    def _keep(self, best: dict[int, Hit], hit: Hit) -> None:
        old = best.get(hit.row)
        if old is None or hit.score > old.score:
            best[hit.row] = hit

    def _wildcards(
        self,
        best: dict[int, Hit],
        patterns: list[Pattern],
        read: _Read,
        seen_as: Seen | None,
    ) -> None:
        i, text, conf = read.cand, read.text, read.confidence
        for pattern in patterns:
            if self._strict[pattern.row] and not read.strict_ok:
                continue
            if pattern.folded.fullmatch(text):
                quality = 0.9
            elif not self._strict[pattern.row] and pattern.canon.fullmatch(read.canon):
                quality = 0.8
            else:
                continue
            kind = "pattern"
            if pattern.vtype or pattern.colour:
                seen = seen_confidence(seen_as, pattern.vtype, pattern.colour)
                if seen is None:
                    continue
                kind, quality, conf = "attribute", quality - 0.2, min(read.confidence, seen)
            self._keep(best, Hit(_score(quality, conf), pattern.row, kind, i, text, conf))

    def _vehicle(self, best: dict[int, Hit], seen_as: Seen) -> None:
        """Attribute entries without a plate condition."""
        vtype, _, colour, _ = seen_as
        for key in {(vtype, colour), (vtype, ""), ("", colour)}:
            if not any(key):
                continue
            for row in self._attributes.get(key, ()):
                seen = seen_confidence(seen_as, *key)
                if seen is not None:
                    self._keep(best, Hit(_score(0.5, seen), row, "attribute", -1, "", seen))

    def _record(self, row: int) -> dict[str, str]:
        values = self._records.get(row).split(_SEP, len(_RECORD) - 1)
        return dict(zip(_RECORD, values, strict=True))

    def entry(self, row: int) -> WatchEntry:
        """The entry stored at ``row`` of the index."""
        return WatchEntry(
            **self._record(row),  # type: ignore[arg-type]
            plate=self._plates[row],
            priority=self._priority[row],
            valid_from=_when(self._from[row]),
            valid_until=_when(self._until[row]),
        )

    def _result(self, hit: Hit) -> Match:
        entry = self.entry(hit.row)
        return Match(
            entry=entry,
            list_name=entry.list_name,
            kind=hit.kind,  # type: ignore[arg-type]
            score=round(hit.score, 4),
            candidate=hit.text,
            candidate_index=hit.cand,
            candidate_confidence=hit.confidence,
            substitutions=hit.subs,
            edit=hit.edit,  # type: ignore[arg-type]
            edit_position=hit.edit_position,
            reason=describe(hit, entry),
        )


class _Read(NamedTuple):
    cand: int  # 0 = plate text, 1 = raw read, 2.. = candidates
    text: str  # folded
    canon: bytes
    confidence: float
    strict_ok: bool  # confident enough for strict lists


class _Found(NamedTuple):
    exact: tuple[int, ...]  # rows with the same canonical key
    longer: list[tuple[int, int]]  # (extra position in read, row)
    shorter: list[tuple[int, int]]  # (missing position in listed plate, row)
    patterns: list[Pattern]


def _folded(text: str) -> bool:
    """True when ``fold`` would return the text unchanged: upper-case ASCII letters and digits.

    Most OCR reads already are; skipping ``fold`` for them saves a third of a miss.
    """
    return text.isascii() and text.isalnum() and (text.isupper() or text.isdigit())


def _when(value: float) -> datetime | None:
    return None if math.isinf(value) else datetime.fromtimestamp(value, UTC)


def _rows(found: int | tuple[int, ...]) -> tuple[int, ...]:
    return (found,) if isinstance(found, int) else found


def _score(quality: float, confidence: float) -> float:
    return max(quality, 0.0) * (0.5 + 0.5 * confidence)
