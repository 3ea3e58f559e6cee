"""Large loads are staged and applied in key ranges: the same list as one transaction, a
mass removal refused before any change, matchers never built from a half-applied list,
and an import cut short by a stop finished (or dropped) on the next start."""

from __future__ import annotations

import threading
from functools import partial
from pathlib import Path

import pyarrow as pa
import pytest

from central.store.db import Database
from central.watchlist import loading
from central.watchlist.importer import SCHEMA
from central.watchlist.model import ListSettings
from central.watchlist.repository import WatchlistRepository
from central.watchlist.service import WatchlistService
from shared.errors import InvalidRequest

CHUNK = 40


def entries(plates: list[str], category: str = "stolen") -> pa.Table:
    n = len(plates)
    text = pa.array([""] * n, pa.string())
    when = pa.array([None] * n, pa.timestamp("us"))
    columns = {
        "entry_key": pa.array(plates),
        "kind": pa.array(["plate"] * n),
        "plate": pa.array(plates),
        "plate_raw": pa.array(plates),
        "category": pa.array([category] * n),
        "priority": pa.array([1] * n, pa.int16()),
        "reason": text,
        "case_ref": text,
        "valid_from": when,
        "valid_until": when,
        "source": text,
        "vehicle_type": text,
        "colour": text,
    }
    return pa.table(columns, schema=SCHEMA)


def plates(start: int, stop: int) -> list[str]:
    return [f"AA{i:04d}BB" for i in range(start, stop)]


def stored(repo: WatchlistRepository, name: str) -> dict[str, str]:
    table = repo.active_entries(list_name=name)
    return dict(zip(table["entry_key"].to_pylist(), table["category"].to_pylist(), strict=True))


@pytest.fixture
def db(tmp_path: Path) -> Database:
    return Database(tmp_path / "central.duckdb")


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loading, "CHUNK_ROWS", CHUNK)


def staged_rows(db: Database) -> int:
    with db.reader() as con:
        row = con.execute(
            "SELECT (SELECT count(*) FROM watchlist_import_rows) + "
            "(SELECT count(*) FROM watchlist_imports)"
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_staged_load_writes_what_one_transaction_would(db: Database) -> None:
    repo = WatchlistRepository(db)
    for name in ("staged", "whole"):
        repo.save_list(ListSettings(name=name))
    first = entries(plates(0, 300))
    # then: 100 removed, 50 kept by a rejected row, 100 updated, 100 unchanged, 200 added
    second = pa.concat_tables(
        [
            entries(plates(150, 250), "wanted"),
            entries(plates(250, 300)),
            entries(plates(300, 500)),
        ]
    )
    keep = plates(100, 150)
    repo.load("staged", first, full=True)
    staged = repo.load("staged", second, full=True, keep=keep)
    with pytest.MonkeyPatch.context() as patch:  # the same loads, one transaction each
        patch.setattr(loading, "CHUNK_ROWS", 10_000)
        repo.load("whole", first, full=True)
        whole = repo.load("whole", second, full=True, keep=keep)
    assert staged[:4] == whole[:4] == (200, 100, 100, 50)
    assert sorted(staged.changed) == sorted(whole.changed) == plates(150, 250) + plates(300, 500)
    assert stored(repo, "staged") == stored(repo, "whole")
    assert len(stored(repo, "staged")) == 400
    assert staged_rows(db) == 0


def test_a_mass_removal_is_refused_before_any_change(db: Database) -> None:
    repo = WatchlistRepository(db)
    repo.save_list(ListSettings(name="national"))
    repo.load("national", entries(plates(0, 400)), full=True)
    before = stored(repo, "national")
    with pytest.raises(InvalidRequest, match="would remove 300 entries"):
        repo.load("national", entries(plates(300, 450)), full=True, max_removed=200)
    assert stored(repo, "national") == before
    assert staged_rows(db) == 0


def test_matchers_wait_for_an_import_being_applied(db: Database) -> None:
    repo = WatchlistRepository(db)
    repo.save_list(ListSettings(name="national"))
    repo.load("national", entries(plates(0, 200)), full=True)
    seen: list[int] = []
    applying = threading.Event()
    release = threading.Event()
    real = loading._apply_range

    def slow_apply(*args: object, **kwargs: object) -> pa.Array:
        applying.set()
        release.wait(10)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(loading, "_apply_range", slow_apply)
        load = threading.Thread(
            target=partial(repo.load, "national", entries(plates(100, 400), "wanted"), full=True)
        )
        load.start()
        assert applying.wait(10)
        reader = threading.Thread(
            target=lambda: seen.append(len(repo.active_entries(list_name="national")))
        )
        reader.start()
        reader.join(0.5)
        assert reader.is_alive(), "a matcher read the list while an import was applied"
        release.set()
        load.join(30)
        reader.join(30)
    assert seen == [300]
    assert set(stored(repo, "national")) == set(plates(100, 400))


@pytest.mark.parametrize("state", ["staging", "applying"])
def test_an_import_cut_short_is_finished_or_dropped_on_start(tmp_path: Path, state: str) -> None:
    path = tmp_path / "central.duckdb"
    db = Database(path)
    repo = WatchlistRepository(db)
    repo.save_list(ListSettings(name="national"))
    repo.load("national", entries(plates(0, 200)), full=True)
    incoming = entries(plates(100, 400), "wanted")
    keep = pa.table({"entry_key": pa.array([], pa.string())})
    import_id, now = 7, loading.utcnow()
    db.writer.call(
        lambda con: con.execute(
            "INSERT INTO watchlist_imports VALUES (?, 'national', true, 'staging', [], ?, ?, NULL)",
            [import_id, now, now],
        )
    )
    for start in range(0, incoming.num_rows, CHUNK):
        rows = incoming.slice(start, CHUNK)
        db.writer.call(partial(loading._stage, import_id=import_id, rows=rows))
    if state == "applying":  # counted, then the first key range written: then the stop
        db.writer.call(
            partial(
                loading._check_staged,
                import_id=import_id,
                list_name="national",
                keep=keep,
                full=True,
                max_removed=None,
                check=lambda con: None,
            )
        )
        first = (None, plates(100, 400)[CHUNK])
        db.writer.call(
            partial(
                loading._apply_range,
                import_id=import_id,
                list_name="national",
                full=True,
                keep=keep,
                keys=first,
                now=now,
            )
        )
        assert len(stored(repo, "national")) not in (200, 300)  # half-applied on disk
    db.close()

    db = Database(path)
    service = WatchlistService(WatchlistRepository(db))
    expected = set(plates(100, 400)) if state == "applying" else set(plates(0, 200))
    assert set(stored(service.repository, "national")) == expected
    assert len(service.matcher) == len(expected)
    assert staged_rows(db) == 0
    db.close()
