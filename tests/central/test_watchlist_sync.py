"""Incremental sync of wanted-vehicle lists from a drop folder and a real local HTTP server."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from central.store.db import Database
from central.watchlist.matcher import Matcher
from central.watchlist.model import ImportReport, ListSettings
from central.watchlist.repository import WatchlistRepository
from central.watchlist.sync import pending_files, sync_folder, sync_url, watch_folder
from shared.errors import InvalidRequest, SourceUnavailable
from shared.wire import Plate, Sighting, new_event_id

FIRST = ["plate,category,reason", "АТ0001АА,stolen,a", "AT0002AA,stolen,b", "AT0003AA,wanted,c"]
# AT0001AA unchanged, AT0002AA updated, AT0003AA removed, AT0004AA added (+ one bad row)
SECOND = ["plate,category,reason", "АТ0001АА,stolen,a", "AT0002AA,crash,b", "AT0004AA,stolen,d"]
SECOND_BAD = [*SECOND, "AT00#5AA,stolen,e"]


def make_repo(tmp_path: Path) -> WatchlistRepository:
    """A repository on a fresh DuckDB file with one list."""
    repo = WatchlistRepository(Database(tmp_path / "central.duckdb"))
    repo.save_list(ListSettings(name="national"))
    return repo


def drop(folder: Path, name: str, lines: list[str], age: float = 10.0) -> Path:
    """Write an export into the drop folder as if it had been there ``age`` seconds."""
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def counts(report: ImportReport | None) -> tuple[int, int, int, int, int]:
    assert report is not None
    return report.added, report.updated, report.removed, report.unchanged, report.rejected


def test_folder_sync_counts_and_runs_once(tmp_path: Path) -> None:
    repo, folder = make_repo(tmp_path), tmp_path / "drop"
    folder.mkdir()
    assert sync_folder(repo, "national", folder) is None
    drop(folder, "export-1.csv", FIRST)
    assert counts(sync_folder(repo, "national", folder)) == (3, 0, 0, 0, 0)
    assert sync_folder(repo, "national", folder) is None  # already applied
    drop(folder, "export-2.csv", SECOND_BAD)
    report = sync_folder(repo, "national", folder)
    assert counts(report) == (1, 1, 1, 1, 1)
    assert report is not None and report.problems[0].line == 5
    keys = sorted(repo.active_entries().column("plate").to_pylist())
    assert keys == ["AT0001AA", "AT0002AA", "AT0004AA"]


def test_folder_skips_unsettled_partial_and_superseded_files(tmp_path: Path) -> None:
    repo, folder = make_repo(tmp_path), tmp_path / "drop"
    folder.mkdir()
    drop(folder, "export-3.csv.part", SECOND)
    drop(folder, ".hidden.csv", SECOND)
    drop(folder, "fresh.csv", SECOND, age=0)  # still being written
    assert pending_files(repo, "national", folder, settle_seconds=2.0) == []
    drop(folder, "old.csv", FIRST, age=30)
    drop(folder, "new.csv", SECOND, age=20)
    report = sync_folder(repo, "national", folder, settle_seconds=2.0)
    assert counts(report) == (3, 0, 0, 0, 0)  # only the newest full export applied
    assert pending_files(repo, "national", folder, settle_seconds=2.0) == []
    assert [p.name for p in pending_files(repo, "national", folder, settle_seconds=0)] == [
        "fresh.csv"
    ]


def test_mass_removal_is_refused(tmp_path: Path) -> None:
    repo, folder = make_repo(tmp_path), tmp_path / "drop"
    folder.mkdir()
    lines = ["plate,category"] + [f"AT{i:04d}AA,stolen" for i in range(40)]
    drop(folder, "full.csv", lines, age=30)
    assert counts(sync_folder(repo, "national", folder)) == (40, 0, 0, 0, 0)
    drop(folder, "truncated.csv", lines[:5], age=20)
    with pytest.raises(InvalidRequest, match="would remove 36 entries, at most 20 allowed"):
        sync_folder(repo, "national", folder)
    assert repo.count("national") == 40  # rolled back
    assert counts(sync_folder(repo, "national", folder, max_remove_share=1.0)) == (0, 0, 36, 4, 0)


def test_watch_folder_until_stopped(tmp_path: Path) -> None:
    repo, folder = make_repo(tmp_path), tmp_path / "drop"
    folder.mkdir()
    drop(folder, "export-1.csv", FIRST)
    reports: list[ImportReport] = []
    stop = threading.Event()

    def on_report(report: ImportReport) -> None:
        reports.append(report)
        stop.set()

    watch_folder(repo, "national", folder, on_report, stop, interval=0.05, settle_seconds=0)
    assert [r.added for r in reports] == [3]


class _Registry(BaseHTTPRequestHandler):
    """Serves ``server.body`` with an ETag and answers If-None-Match with 304."""

    def do_GET(self) -> None:
        body: bytes = self.server.body  # type: ignore[attr-defined]
        self.server.requests += 1  # type: ignore[attr-defined]
        if self.path != "/export.csv":
            self.send_error(404)
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/csv; charset=utf-8")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def registry() -> Iterator[ThreadingHTTPServer]:
    """A real HTTP server on 127.0.0.1 with a free port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Registry)
    server.body = "\n".join(FIRST).encode()  # type: ignore[attr-defined]
    server.requests = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_http_sync_with_etag(tmp_path: Path, registry: ThreadingHTTPServer) -> None:
    repo = make_repo(tmp_path)
    url = f"http://127.0.0.1:{registry.server_address[1]}/export.csv"
    assert counts(sync_url(repo, "national", url)) == (3, 0, 0, 0, 0)
    again = sync_url(repo, "national", url)
    assert again.not_modified and counts(again) == (0, 0, 0, 0, 0)
    registry.body = "\n".join(SECOND_BAD).encode()  # type: ignore[attr-defined]
    assert counts(sync_url(repo, "national", url)) == (1, 1, 1, 1, 1)
    assert registry.requests == 3  # type: ignore[attr-defined]
    matcher = Matcher.from_repository(repo)
    probe = Sighting(
        event_id=new_event_id(),
        camera_id="cam-1",
        captured_at=time.time(),
        plate=Plate(text="AT0002AA", raw="AT 0002 AA", confidence=0.9),
    )
    assert [m.entry.category for m in matcher.match(probe)] == ["crash"]
    probe = Sighting(
        event_id=new_event_id(),
        camera_id="cam-1",
        captured_at=time.time(),
        plate=Plate(text="AT0003AA", raw="AT0003AA", confidence=0.9),
    )
    assert matcher.match(probe) == []  # removed by the sync


def test_http_errors(tmp_path: Path, registry: ThreadingHTTPServer) -> None:
    repo = make_repo(tmp_path)
    port = registry.server_address[1]
    with pytest.raises(SourceUnavailable, match="expected 200, got HTTP 404"):
        sync_url(repo, "national", f"http://127.0.0.1:{port}/missing.csv")
    with pytest.raises(SourceUnavailable, match="expected an http"):
        sync_url(repo, "national", "file:///etc/passwd")
    with pytest.raises(SourceUnavailable, match="failed"):
        sync_url(repo, "national", "http://127.0.0.1:1/export.csv", timeout=2)


def test_service_swaps_matcher_after_sync(tmp_path: Path) -> None:
    from central.watchlist.service import WatchlistService

    repo, folder = make_repo(tmp_path), tmp_path / "drop"
    folder.mkdir()
    service = WatchlistService(repo)
    probe = Sighting(
        event_id=new_event_id(),
        camera_id="cam-1",
        captured_at=time.time(),
        plate=Plate(text="AT0004AA", raw="AT0004AA", confidence=0.9),
    )
    assert service.match(probe) == []
    before = service.matcher
    drop(folder, "export.csv", SECOND)
    assert counts(service.sync_folder("national", folder)) == (3, 0, 0, 0, 0)
    assert service.matcher is not before
    assert [m.entry.plate for m in service.match(probe)] == ["AT0004AA"]
    assert service.sync_folder("national", folder) is None


def test_full_sync_keeps_entries_whose_row_turned_malformed(tmp_path: Path) -> None:
    repo, folder = make_repo(tmp_path), tmp_path / "drop"
    folder.mkdir()
    drop(folder, "export-1.csv", FIRST, age=30)
    assert counts(sync_folder(repo, "national", folder)) == (3, 0, 0, 0, 0)
    typo = ["plate,category,reason", "АТ0001АА,stolen,a", "AT0002AA,stollen,b"]
    drop(folder, "export-2.csv", typo, age=20)
    # AT0002AA's row is rejected but kept as stored; AT0003AA is gone from the export
    assert counts(sync_folder(repo, "national", folder)) == (0, 0, 1, 1, 1)
    assert sorted(repo.active_entries().column("plate").to_pylist()) == ["AT0001AA", "AT0002AA"]


def test_list_settings_change_takes_effect(tmp_path: Path) -> None:
    from central.watchlist.service import WatchlistService

    repo, folder = make_repo(tmp_path), tmp_path / "drop"
    folder.mkdir()
    drop(folder, "export.csv", FIRST)
    service = WatchlistService(repo)
    service.sync_folder("national", folder)
    near = Sighting(
        event_id=new_event_id(),
        camera_id="cam-1",
        captured_at=time.time(),
        plate=Plate(text="AT000IAA", raw="AT000IAA", confidence=0.9),  # I read for 1
    )
    assert [m.kind for m in service.match(near)] == ["confusion"]
    service.save_list(ListSettings(name="national", strict=True, retention_days=30))
    assert repo.get_list("national").strict and repo.get_list("national").retention_days == 30
    assert [s.name for s in repo.lists()] == ["national"]
    assert service.match(near) == []
