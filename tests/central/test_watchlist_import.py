"""Importing registry exports (CSV, JSON, JSON Lines) into a real DuckDB file."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from central.store.db import Database
from central.watchlist.importer import read_csv
from central.watchlist.matcher import Matcher
from central.watchlist.model import ListSettings
from central.watchlist.repository import WatchlistRepository
from central.watchlist.sync import import_file
from shared.errors import InvalidRequest, NotFound

HEADER = "plate,category,priority,reason,case_ref,valid_from,valid_until,source,vehicle_type,colour"


def make_repo(tmp_path: Path, *lists: ListSettings) -> WatchlistRepository:
    """A repository on a fresh DuckDB file with the given lists."""
    repo = WatchlistRepository(Database(tmp_path / "central.duckdb"))
    for settings in lists or (ListSettings(name="national"),):
        repo.save_list(settings)
    return repo


def write(tmp_path: Path, name: str, lines: list[str]) -> Path:
    """Write a file from plain lines."""
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("AT1234BO,stolen,1,,,,,,,", None),
        ("АТ 1234 ВО,stolen,1,,,,,,,", None),  # Cyrillic with spaces folds to the same key
        ("AT1234BO,stolen", "expected 10 fields, got 2"),
        ('"AT12"34BO,stolen,1,,,,,,,', "unreadable CSV"),
        ("AT12#4BO,stolen,1,,,,,,,", "not 2-12 characters of A-Z, 0-9"),
        ("БЖ1234ВО,stolen,1,,,,,,,", "not 2-12 characters of A-Z, 0-9"),
        (",stolen,1,,,,,,,", "no plate, pattern, vehicle type or colour"),
        ("AT1234BO,kidnapped,1,,,,,,,", "category 'kidnapped' is not one of"),
        ("AT1234BO,stolen,high,,,,,,,", "priority 'high' is not a whole number"),
        ("AT1234BO,stolen,9,,,,,,,", "priority 9 is outside 1..5"),
        ("AT1234BO,stolen,1,,,yesterday,,,,", "'yesterday' is not a date"),
        ("AT1234BO,stolen,1,,,2026-02-01,2026-01-01,,,", "valid_until is not after valid_from"),
        ("AT1234BO,stolen,1,,,,,,spaceship,", "vehicle type 'spaceship' is not known"),
        ("AT1234BO,stolen,1,,,,,,van,", "takes a plate pattern"),
        ("A??*,stolen,1,,,,,,,", "needs at least 3 fixed characters"),
        ("*,stolen,1,,,,,,van,plaid", "colour 'plaid' is not known"),
    ],
)
def test_row_checks(tmp_path: Path, row: str, reason: str | None) -> None:
    path = write(tmp_path, "one.csv", [HEADER, row])
    batch = read_csv(path.open("rb"))
    if reason is None:
        assert batch.problems == []
        assert batch.table.column("plate").to_pylist() == ["AT1234BO"]
    else:
        assert len(batch.problems) == 1
        assert batch.problems[0].line == 2
        assert reason in batch.problems[0].reason


def test_malformed_rows_are_reported_by_line_and_skipped(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, ListSettings(name="national", default_priority=4))
    path = write(
        tmp_path,
        "export.csv",
        [
            HEADER,
            "АА7681ТЕ,stolen,1,викрадено,12025000001,,,НПУ,,",
            "AT1234BO,nonsense,1,,,,,,,",
            '"KA 1111 KA",wanted,,"reason, with comma",,01.02.2026,31.12.2026,,,',
            '"BC2222BC",stolen,2,"a reason over',
            'two lines",,,,,,',
            "BC3333BC,stolen,2",
            "",
            "AA7681TE,wanted,3,,,,,,,",
            "AT12??B?,wanted,,,,,,,,",
            "AT12*,crash,,,,,,,van,сірий",
        ],
    )
    report = import_file(repo, "national", path)
    assert [(p.line, p.reason.split(" (")[0]) for p in report.problems] == [
        (3, "category 'nonsense' is not one of stolen, wanted, violation, crash, other"),
        (7, "expected 10 fields, got 3"),
        (9, "duplicate of line 2"),
    ]
    assert (report.rows, report.added, report.rejected) == (8, 5, 3)
    assert repo.count("national") == 5
    entries = repo.active_entries(datetime(2026, 6, 1, tzinfo=UTC)).to_pylist()
    by_plate = {e["plate"]: e for e in entries}
    assert by_plate["AA7681TE"]["plate_raw"] == "АА7681ТЕ"
    assert by_plate["AA7681TE"]["reason"] == "викрадено"
    assert by_plate["KA1111KA"]["priority"] == 4  # the list's default
    assert by_plate["BC2222BC"]["reason"] == "a reason over\ntwo lines"
    assert by_plate["AT12*"]["colour"] == "gray"
    assert by_plate["AT12??B?"]["kind"] == "pattern"
    # date-only valid_until includes that whole day
    assert by_plate["KA1111KA"]["valid_until"] == datetime(2027, 1, 1, tzinfo=UTC).timestamp()


def test_semicolon_ukrainian_headers_and_bom(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    path = tmp_path / "реєстр.csv"
    path.write_bytes("\ufeffномер;категорія;причина\nАІ0001КК;розшук;справа\n".encode())
    report = import_file(repo, "national", path)
    assert (report.added, report.problems) == (1, [])
    assert repo.active_entries().column("category").to_pylist() == ["wanted"]


def test_file_level_errors(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    with pytest.raises(InvalidRequest, match="expected a header with a 'plate' column"):
        import_file(repo, "national", write(tmp_path, "bad.csv", ["a,b", "1,2"]))
    with pytest.raises(InvalidRequest, match="malformed JSON"):
        import_file(repo, "national", write(tmp_path, "bad.json", ["[{"]))
    with pytest.raises(NotFound, match="unknown name 'missing'"):
        import_file(repo, "missing", write(tmp_path, "ok.csv", ["plate", "AT1234BO"]))


def test_json_and_json_lines(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    export = {
        "list": {"name": "national", "default_priority": 2},
        "entries": [
            {"plate": "АТ1234ВО", "category": "stolen", "case_ref": "12025000001"},
            {"plate": "AT5555AA", "category": "stolen", "priority": 7},
            "not an object",
            {"номер": "KA0001KA", "категорія": "дтп", "priority": 1},
        ],
    }
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    report = import_file(repo, "national", path)
    assert [(p.line, p.reason) for p in report.problems] == [
        (2, "priority 7 is outside 1..5"),
        (3, "expected an object, got str"),
    ]
    assert report.added == 2
    lines = [json.dumps({"plate": "HH0001HH", "category": "wanted"}), "{oops", ""]
    report = import_file(repo, "national", write(tmp_path, "more.jsonl", lines))
    assert report.added == 1
    assert [p.line for p in report.problems] == [2]
    assert "malformed JSON" in report.problems[0].reason


def test_import_updates_and_keeps_others(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    first = write(tmp_path, "a.csv", ["plate,category", "AT0001AA,stolen", "AT0002AA,stolen"])
    second = write(tmp_path, "b.csv", ["plate,category", "AT0001AA,wanted", "AT0003AA,crash"])
    assert import_file(repo, "national", first).added == 2
    report = import_file(repo, "national", second)
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 1, 0, 0)
    assert repo.count("national") == 3
    report = import_file(repo, "national", second, full=True)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 0, 1, 2)


def test_100k_import_is_fast(tmp_path: Path) -> None:
    letters = "ABCEHIKMOPTX"
    lines = [HEADER]
    for i in range(100_000):
        series = letters[i % 12] + letters[i // 12 % 12]
        lines.append(f"AT{i // 144:04d}{series},stolen,{1 + i % 5},розшук,{i},,,,,")
    path = write(tmp_path, "big.csv", lines)
    repo = make_repo(tmp_path)
    seen: list[tuple[int, int]] = []
    started = time.perf_counter()
    report = import_file(repo, "national", path, progress=lambda d, t: seen.append((d, t)))
    matcher = Matcher.from_repository(repo)
    elapsed = time.perf_counter() - started
    assert (report.added, report.rejected) == (100_000, 0)
    assert len(matcher) == 100_000
    assert seen[-1][0] == seen[-1][1] == path.stat().st_size
    assert elapsed < 15, f"100k import + index took {elapsed:.1f}s"
