"""Matching sightings against wanted-vehicle lists stored in a real DuckDB file."""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime

import pytest

from central.store.db import Database
from central.watchlist.matcher import Matcher
from central.watchlist.model import ListSettings, Match
from central.watchlist.repository import WatchlistRepository
from central.watchlist.sync import import_file
from shared.wire import Plate, PlateCandidate, Sighting, Vehicle, new_event_id

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC).timestamp()
COLUMNS = ["plate", "category", "priority", "valid_from", "valid_until", "vehicle_type", "colour"]

# (list, plate or pattern, category, valid_from, valid_until, vehicle_type, colour)
ENTRIES = [
    ("national", "АТ1234ВО", "stolen", "", "", "", ""),  # Cyrillic, as registries write it
    ("national", "AI1234BC", "wanted", "", "", "", ""),
    ("national", "BC5678AB", "stolen", "", "", "", ""),
    ("national", "WS12345", "wanted", "", "", "", ""),  # EU-style plate with an S
    ("national", "AA1234ZA", "violation", "", "", "", ""),  # EV series with a Z
    ("national", "GD40123", "other", "", "", "", ""),  # EU-style plate with a G
    ("national", "6D40123", "other", "", "", "", ""),  # same canonical key as GD40123
    ("national", "KA9999KA", "stolen", "", "2020-01-01", "", ""),  # expired
    ("national", "KA8888KA", "stolen", "2099-01-01", "", "", ""),  # not yet valid
    ("national", "HH1111HH", "crash", "2026-01-01", "2026-12-31", "", ""),
    ("national", "AT77??B?", "wanted", "", "", "", ""),
    ("national", "*9876*", "other", "", "", "", ""),
    ("national", "AT12*", "crash", "", "", "van", "silver"),
    ("national", "", "wanted", "", "", "bus", "red"),
    ("police", "KA0007KA", "wanted", "", "", "", ""),  # strict list: exact only
]


def sighting(
    *texts: str, vehicle: tuple[str, str] | None = None, captured_at: float = NOW
) -> Sighting:
    """A sighting whose first text is the read and the rest are lower candidates."""
    seen = None
    if vehicle is not None:
        seen = Vehicle(
            box=(0, 0, 10, 10),
            type=vehicle[0],
            colour=vehicle[1],
            type_confidence=0.9,
            colour_confidence=0.8,
        )
    return Sighting(
        event_id=new_event_id(),
        camera_id="cam-1",
        captured_at=captured_at,
        vehicle=seen,
        plate=Plate(
            text=texts[0],
            raw=texts[0],
            confidence=0.9,
            candidates=[PlateCandidate(t, 0.3) for t in texts[1:]],
        ),
    )


@pytest.fixture(scope="module")
def matcher(tmp_path_factory: pytest.TempPathFactory) -> Matcher:
    """Both lists imported from CSV into a DuckDB file, then indexed."""
    tmp = tmp_path_factory.mktemp("watchlist")
    repo = WatchlistRepository(Database(tmp / "central.duckdb"))
    for name in ("national", "police"):
        repo.save_list(ListSettings(name=name, strict=name == "police"))
        path = tmp / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            out = csv.writer(fh)
            out.writerow(COLUMNS)
            for list_name, plate, category, since, until, vtype, colour in ENTRIES:
                if list_name == name:
                    out.writerow([plate, category, "", since, until, vtype, colour])
        report = import_file(repo, name, path)
        assert report.problems == []
    return Matcher.from_repository(repo, datetime.fromtimestamp(NOW, UTC))


def _summary(matches: list[Match]) -> list[tuple[str, str, int]]:
    return [(m.entry.plate, m.kind, m.candidate_index) for m in matches]


@pytest.mark.parametrize(
    ("case", "found", "expected"),
    [
        ("Cyrillic entry, Latin read", sighting("AT1234BO"), [("AT1234BO", "exact", 0)]),
        ("0 read for O", sighting("AT1234B0"), [("AT1234BO", "confusion", 0)]),
        ("D read for O", sighting("AT1234BD"), [("AT1234BO", "confusion", 0)]),
        ("Q read for O", sighting("AT1234BQ"), [("AT1234BO", "confusion", 0)]),
        ("1 read for I", sighting("A11234BC"), [("AI1234BC", "confusion", 0)]),
        ("8 read for B", sighting("8C5678A8"), [("BC5678AB", "confusion", 0)]),
        ("5 read for S", sighting("W512345"), [("WS12345", "confusion", 0)]),
        ("2 read for Z", sighting("AA123421"), []),  # 1 is not A: no match
        ("Z read as 2", sighting("AA12342A"), [("AA1234ZA", "confusion", 0)]),
        (
            "6 read for G",
            sighting("6D40I23"),
            [("6D40123", "confusion", 0), ("GD40123", "confusion", 0)],
        ),
        (
            "same key, exact first",
            sighting("GD40123"),
            [("GD40123", "exact", 0), ("6D40123", "confusion", 0)],
        ),
        ("two confusions", sighting("A71234B0"), []),  # 7 is not T
        ("one extra character", sighting("AT12345BO"), [("AT1234BO", "edit", 0)]),
        ("one missing character", sighting("AT124BO"), [("AT1234BO", "edit", 0)]),
        ("two missing characters", sighting("AT12BO"), []),
        # index 0 is the read, 1 its raw text, 2.. the candidates
        (
            "candidate, not top read",
            sighting("KA1111KA", "XX0000XX", "AT1234B0"),
            [("AT1234BO", "confusion", 3)],
        ),
        ("strict list, exact read", sighting("KA0007KA"), [("KA0007KA", "exact", 0)]),
        ("strict list refuses O for 0", sighting("KAO007KA"), []),
        ("strict list refuses an edit", sighting("KA00007KA"), []),
        ("wildcard ?", sighting("AT7755BX"), [("AT77??B?", "pattern", 0)]),
        ("wildcard ? with confusion", sighting("AT7755B0"), [("AT77??B?", "pattern", 0)]),
        ("wildcard ? wrong length", sighting("AT7755BXX"), []),
        ("wildcard *", sighting("KA9876KA"), [("*9876*", "pattern", 0)]),
        (
            "attribute: silver van AT12*",
            sighting("AT1299CC", vehicle=("van", "gray")),
            [("AT12*", "attribute", 0)],
        ),
        ("attribute: wrong type", sighting("AT1299CC", vehicle=("car", "gray")), []),
        ("attribute: wrong plate", sighting("AT5599CC", vehicle=("van", "gray")), []),
        (
            "attribute only: red bus",
            sighting("AX0000AX", vehicle=("bus", "red")),
            [("", "attribute", -1)],
        ),
        ("expired entry", sighting("KA9999KA"), []),
        ("not yet valid entry", sighting("KA8888KA"), []),
        ("valid on capture day", sighting("HH1111HH"), [("HH1111HH", "exact", 0)]),
        ("captured after validity", sighting("HH1111HH", captured_at=NOW + 86400 * 60), []),
        ("unknown plate", sighting("BX4321PM"), []),
    ],
)
def test_match(
    matcher: Matcher, case: str, found: Sighting, expected: list[tuple[str, str, int]]
) -> None:
    assert _summary(matcher.match(found)) == expected, case


def test_match_details(matcher: Matcher) -> None:
    exact, near = matcher.match(sighting("AT1234BO")), matcher.match(sighting("AT1234B0"))
    assert exact[0].score > near[0].score
    assert exact[0].entry.plate_raw == "АТ1234ВО"
    assert exact[0].entry.category == "stolen"
    assert [(s.position, s.read, s.listed) for s in near[0].substitutions] == [(7, "0", "O")]
    assert "OCR-equivalent" in near[0].reason and "0->O" in near[0].reason
    extra = matcher.match(sighting("AT12345BO"))[0]
    assert (extra.edit, extra.edit_position) == ("insert", 6)
    missing = matcher.match(sighting("AT124BO"))[0]
    assert (missing.edit, missing.edit_position) == ("delete", 4)
    assert "a missing '3' at position 4" in missing.reason


def test_min_score_drops_weak_matches(matcher: Matcher) -> None:
    probe = sighting("KA1111KA", "AT124BO")  # an edit on a weak candidate
    assert [m.kind for m in matcher.match(probe)] == ["edit"]
    assert matcher.match(probe, min_score=0.6) == []


def test_best_candidate_wins_and_order(matcher: Matcher) -> None:
    found = matcher.match(sighting("AT1234B0", "AT1234BO"))
    assert len(found) == 1  # one match per entry
    assert (found[0].kind, found[0].candidate_index) == ("confusion", 0)
    both = matcher.match(sighting("AT1234BO", "KA9876KA"))
    assert [m.kind for m in both] == ["exact", "pattern"]
    assert both[0].score >= both[1].score


@pytest.mark.parametrize("text", ["AT1234BO", "1234", "WS12345", "AB", "Z"])
def test_fast_path_agrees_with_fold(text: str) -> None:
    from central.watchlist.matcher import _folded
    from shared.plates import fold

    assert _folded(text) and fold(text) == text


@pytest.mark.parametrize("text", ["at1234bo", "АТ1234ВО", "AT 1234", "AT-12", "", "ÄB12"])
def test_fast_path_leaves_other_texts_to_fold(text: str) -> None:
    from central.watchlist.matcher import _folded

    assert not _folded(text)


def test_match_is_fast(matcher: Matcher) -> None:
    probe = sighting("KA1111KA", "KA1111K4", "KA111KA", "KA11111KA")
    started = time.perf_counter()
    for _ in range(2000):
        matcher.match(probe)
    assert (time.perf_counter() - started) / 2000 < 500e-6
