"""The sighting archive on a local directory: export, resume, late rows, retention."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from central.archive.export import Partition
from central.archive.schema import FILE_SCHEMA
from central.archive.target import ArchiveTarget, open_target
from central.audit import AuditLog
from central.config import ArchiveConfig, CentralConfig
from central.retention import Retention, RetentionPolicy
from central.search.index import CANON_FROM, CANON_TO
from central.store.db import Database
from tests.central.archive_helpers import DAY, NEW_SPECS, NOW, OLD_SPECS, archive_rows, exporter
from tests.central.search_helpers import T0, Spec, store


def _target(root: Path) -> ArchiveTarget:
    return open_target(ArchiveConfig(enabled=True, root=str(root), region="UA-IF"))


def _parts(db: Database) -> list[tuple[object, ...]]:
    with db.reader() as con:
        return con.execute(
            "SELECT day, camera_id, part, path, rows, bytes, sha256 FROM archive_parts "
            "ORDER BY day, camera_id, part"
        ).fetchall()


def test_export_writes_each_closed_partition_once(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.duckdb")
    old = store(db, OLD_SPECS)
    store(db, NEW_SPECS)
    store(db, [Spec("AT0000AA", "cam-1", 20 * DAY - 1800)])  # today: the day is still open
    root = tmp_path / "archive"
    export = exporter(db, _target(root))
    report = export.export()
    # cameras of days 0, 1, 2 (4 + 2 + 3), 17 (2) and 19 (1); not day 20 (still open)
    assert (report.partitions, report.parts, report.rows) == (12, 12, len(old) + len(NEW_SPECS))
    rows = archive_rows(root)
    assert len(rows) == len({r[2] for r in rows}) == len(old) + len(NEW_SPECS)
    assert {r[1] for r in rows} == {"cam-1", "cam-2", "cam-3", "cam-4", "0042"}
    assert {r[0] for r in rows} == {date(2026, 9, d) for d in (21, 22, 23)} | {
        date(2026, 10, 8),
        date(2026, 10, 10),
    }
    parts = _parts(db)
    assert len(parts) == 12
    for _day, _camera, part, path, n, size, sha in parts:
        data = (root / str(path)).read_bytes()
        assert part == 0 and len(data) == size and hashlib.sha256(data).hexdigest() == sha
        table = pq.read_table(root / str(path))
        assert table.schema.remove_metadata() == FILE_SCHEMA and table.num_rows == n
        times, ids = table["captured_at"].to_pylist(), table["event_id"].to_pylist()
        order = list(zip(times, ids, strict=True))
        assert order == sorted(order)
        meta = pq.ParquetFile(root / str(path)).metadata.row_group(0).column(0)
        assert meta.compression == "ZSTD"
    one = pq.read_table(root / "sightings/date=2026-09-21/camera_id=cam-4/part-0.parquet")
    [row] = one.to_pylist()
    assert row["region"] == "UA-IF" and row["plate"] == "BC0000XX"
    assert set(row["plate_texts"]) == {"BC0000XX", "AT1234BO"}
    canon = str.maketrans(CANON_FROM, CANON_TO)
    assert row["plate_keys"] == [t.translate(canon) for t in row["plate_texts"]]
    before = {p: (root / p).stat().st_mtime_ns for p in (str(x[3]) for x in parts)}
    again = export.export()
    assert (again.partitions, again.parts) == (0, 0)
    assert _parts(db) == parts
    assert {p: (root / p).stat().st_mtime_ns for p in before} == before
    assert export.status()["pending_partitions"] == 0
    db.close()


def test_crash_between_file_and_record_resumes_without_duplicates(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.duckdb")
    store(db, OLD_SPECS)
    root = tmp_path / "archive"
    export = exporter(db, _target(root))
    pending = export.pending()
    first: Partition = pending[0]
    # killed after the file landed but before archive_parts recorded it ...
    written = export.write_part(first, export.closed_before(export._now()))
    # ... and another run killed while writing its temporary file
    folder = (root / written.path).parent
    (folder / f".{Path(written.path).name}.dead.tmp").write_bytes(b"PAR1 half a file")
    assert _parts(db) == []
    report = export.export()
    assert report.parts == len(pending)
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]  # temp file gone
    rows = archive_rows(root)
    assert len(rows) == len({r[2] for r in rows}) == len(OLD_SPECS)
    assert [p[2] for p in _parts(db)] == [0] * len(pending)
    db.close()


def test_late_rows_go_into_a_new_part_with_only_them(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.duckdb")
    first = store(db, OLD_SPECS)
    root = tmp_path / "archive"
    exporter(db, _target(root), now=T0 + 5 * DAY).export()
    # an agent back from an outage delivers day 0 sightings six days late
    late = store(db, [Spec("KA0001AA", "cam-1", 300), Spec("KA0002AA", "cam-9", 400)])
    db.writer.call(
        lambda con: con.execute(
            "UPDATE sightings SET received_at = received_at + INTERVAL 6 DAYS "
            "WHERE plate LIKE 'KA000%'"
        )
    )
    report = exporter(db, _target(root), now=T0 + 5 * DAY).export()
    assert (report.partitions, report.rows) == (0, 0)  # not yet received, as of then
    report = exporter(db, _target(root), now=T0 + 7 * DAY).export()
    assert (report.partitions, report.parts, report.rows) == (2, 2, 2)
    day0 = root / "sightings/date=2026-09-21"
    newer = pq.read_table(day0 / "camera_id=cam-1/part-1.parquet")
    assert newer["plate"].to_pylist() == ["KA0001AA"]
    assert (day0 / "camera_id=cam-9/part-0.parquet").exists()
    rows = archive_rows(root)
    assert sorted(r[2] for r in rows) == sorted(first + late)  # every event exactly once
    db.close()


def _retention(db: Database, root: Path, now: float, audit: AuditLog) -> Retention:
    return Retention(
        db,
        tmp_thumbs(root),
        _NoHits(),
        audit,
        RetentionPolicy(non_hit_days=14, chunk_rows=100, archive_hold=True),
        clock=lambda: now,
        archive=exporter(db, _target(root / "archive"), now=now),
    )


def tmp_thumbs(root: Path) -> Path:
    return root / "thumbs"


class _NoHits:
    def protected_sightings(self, older_than: object) -> list[str]:
        return []


def test_retention_holds_unarchived_days_and_purges_the_archive(tmp_path: Path) -> None:
    db = Database(tmp_path / "a.duckdb")
    old = store(db, OLD_SPECS)
    new = store(db, NEW_SPECS)
    # captured before the archive's 60 days: it would never be archived, so it is not held
    store(db, [Spec("KA0000AA", "cam-1", 0)], base=T0 - 45 * DAY)
    audit = AuditLog(db, clock=lambda: NOW)
    held = _retention(db, tmp_path, NOW, audit).run()
    assert (held.deleted, held.held_for_archive) == (1, len(old))  # nothing archived yet
    exporter(db, _target(tmp_path / "archive"), now=NOW).export()
    report = _retention(db, tmp_path, NOW, audit).run()
    assert (report.deleted, report.held_for_archive) == (len(old), 0)
    with db.reader() as con:
        left = {r[0] for r in con.execute("SELECT event_id::VARCHAR FROM sightings").fetchall()}
    assert left == set(new)
    assert len(archive_rows(tmp_path / "archive")) == len(old) + len(new)
    # 62 days after T0 the archive's 60 days have passed for days 0 and 1, not for day 2
    later = T0 + 62 * DAY + 3600
    _retention(db, tmp_path, later, AuditLog(db, clock=lambda: later)).run()
    days = {r[0] for r in archive_rows(tmp_path / "archive")}
    assert date(2026, 9, 21) not in days and date(2026, 9, 22) not in days
    assert date(2026, 9, 23) in days
    assert not (tmp_path / "archive/sightings/date=2026-09-21").exists()
    [purge] = [e for e in audit.query(limit=50) if e.action == "retention.archive_purge"][:1]
    assert purge.actor == "system" and purge.details["days"] == 2
    assert purge.details["rows"] == 6  # four sightings of day 0, two of day 1
    with db.reader() as con:
        gone = con.execute(
            "SELECT count(*) FROM archive_parts WHERE purged_at IS NOT NULL"
        ).fetchall()
    assert gone[0][0] == 6  # day 0: four cameras, day 1: two
    # purged days are not exported again from what the database still holds
    assert exporter(db, _target(tmp_path / "archive"), now=later).export().parts == 0
    db.close()


@pytest.mark.parametrize(
    ("archive", "error"),
    [
        ({"enabled": True, "region": "UA-IF"}, "needs archive.root"),
        ({"enabled": True, "root": "/x"}, "needs archive.region"),
        ({"root": "s3://"}, "expected s3://bucket"),
        ({"root": "gs://bucket"}, "expected a local directory or s3://"),
        ({"s3_endpoint": "minio:9000"}, "s3_endpoint"),
        ({"enabled": True, "root": "/x", "region": "R", "retention_days": 7}, "retention_days"),
    ],
)
def test_bad_archive_config_is_refused(archive: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        CentralConfig.model_validate({"archive": archive})


def test_cli_export_and_status(tmp_path: Path) -> None:
    import json
    import time

    import yaml
    from typer.testing import CliRunner

    from varta.cli import app

    data = tmp_path / "central"
    db = Database(data / "varta.duckdb")
    base = (time.time() // DAY - 4) * DAY + 3600  # 01:00 UTC four days ago
    ids = store(db, OLD_SPECS, base=base)
    db.close()
    config = tmp_path / "central.yaml"
    archive = {"enabled": True, "root": str(tmp_path / "archive"), "region": "UA-IF"}
    config.write_text(yaml.safe_dump({"storage": {"data_dir": str(data)}, "archive": archive}))
    run = CliRunner().invoke(app, ["central", "archive", "export", "-c", str(config), "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["rows"] == len(ids)
    run = CliRunner().invoke(app, ["central", "archive", "status", "-c", str(config), "--json"])
    status = json.loads(run.output)
    assert (status["rows"], status["parts"], status["pending_rows"]) == (len(ids), 9, 0)
    off = tmp_path / "off.yaml"
    off.write_text(yaml.safe_dump({"storage": {"data_dir": str(data)}}))
    run = CliRunner().invoke(app, ["central", "archive", "export", "-c", str(off)])
    assert run.exit_code == 2 and "archive.enabled is false" in run.output


def test_metrics_count_exports_and_what_the_archive_holds(tmp_path: Path) -> None:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from central.metrics import CentralCollector
    from tests.central.auth_helpers import make_rig

    rig = make_rig(tmp_path)
    try:
        central = rig.central
        ids = store(central.db, OLD_SPECS)
        central.archive = exporter(central.db, _target(tmp_path / "archive"))
        report = central.archive.export()
        registry = CollectorRegistry()
        registry.register(CentralCollector(central))
        text = generate_latest(registry).decode()
        values = {
            s.name: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name.startswith("varta_archive")
        }
        assert values["varta_archive_up"] == 1
        assert values["varta_archive_runs_total"] == 1
        assert values["varta_archive_parts_written_total"] == report.parts == 9
        assert values["varta_archive_rows_exported_total"] == values["varta_archive_rows"]
        assert values["varta_archive_rows"] == len(ids)
        assert values["varta_archive_bytes"] == report.bytes > 0
        assert values["varta_archive_last_success_timestamp_seconds"] == NOW
    finally:
        rig.close()


def test_running_central_exports_in_the_background(tmp_path: Path) -> None:
    import time

    from central.config import ArchiveConfig as Archive
    from tests.harness import central_config, make_keyring, start_central, wait_for

    config = central_config(make_keyring(tmp_path / "keys", []), tmp_path / "central")
    # The rows are stored before central starts: ``store`` backdates each row's receive
    # time, which live ingest never does, so an export run between two of its inserts
    # would rightly take the later ones for rows already past.
    db = Database(tmp_path / "central" / "varta.duckdb")
    # 01:00 UTC four days ago: the last of the three days ended over a day ago, so it is
    # closed whatever the time of day (grace) when the test runs.
    base = (time.time() // DAY - 4) * DAY + 3600
    ids = store(db, OLD_SPECS, base=base)
    db.close()
    archive = Archive(enabled=True, root=str(tmp_path / "archive"), region="UA-IF", interval_s=0.2)
    central = start_central(config.model_copy(update={"archive": archive}))
    try:
        assert central.archive is not None
        stats = central.archive.stats
        # Rows are counted as each part is written; the run is counted when it ends.
        assert wait_for(lambda: stats.rows_exported == len(ids) and stats.runs >= 1, 30)
        assert wait_for(lambda: stats.last_success > 0 and stats.pending_partitions == 0, 30)
        assert sorted(r[2] for r in archive_rows(tmp_path / "archive")) == sorted(ids)
        assert stats.failures == 0
    finally:
        central.stop()


def test_export_killed_mid_run_resumes_with_every_row_once(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    import yaml

    from shared.paths import REPO_ROOT

    data = tmp_path / "central"
    db = Database(data / "varta.duckdb")
    day = (time.time() // DAY - 2) * DAY  # two days ago, 00:00 UTC
    db.writer.call(
        lambda con: con.execute(
            "INSERT INTO sightings (event_id, agent_id, camera_id, captured_at, received_at, "
            "plate, plate_raw, track_frames, track_seconds, thumbnails) "
            "SELECT uuid(), 'a1', 'cam-' || (i % 100), to_timestamp(? + i * 16), "
            "to_timestamp(? + i * 16 + 1), 'AT' || lpad((i % 9999)::VARCHAR, 4, '0') || 'BO', "
            "'AT ' || lpad((i % 9999)::VARCHAR, 4, '0') || ' BO', 3, 0.5, [] "
            "FROM range(5000) t(i)",
            [day, day],
        )
    )
    db.close()
    root = tmp_path / "archive"
    config = tmp_path / "central.yaml"
    archive = {"enabled": True, "root": str(root), "region": "UA-IF"}
    config.write_text(yaml.safe_dump({"storage": {"data_dir": str(data)}, "archive": archive}))
    run = (
        "import sys; from varta.cli import main; "
        f"sys.argv = ['varta', 'central', 'archive', 'export', '-c', {str(config)!r}]; main()"
    )
    proc = subprocess.Popen([sys.executable, "-c", run], cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 60
        while not any(root.rglob("*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        proc.kill()  # SIGKILL: no cleanup, no commit
        proc.wait()
    db = Database(data / "varta.duckdb")
    recorded = len(_parts(db))
    assert recorded < 100  # killed before the batch's parts were recorded
    export = exporter(db, _target(root), now=time.time())
    report = export.export()
    assert report.parts == 100 - recorded
    rows = archive_rows(root)  # every visible file is whole: it reads
    assert len(rows) == len({r[2] for r in rows}) == 5000
    assert not list(root.rglob("*.tmp"))
    assert len(list(root.rglob("*.parquet"))) == len(_parts(db)) == 100
    db.close()
