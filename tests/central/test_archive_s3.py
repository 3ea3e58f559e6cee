"""The archive on S3-compatible storage: a real moto S3 server on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest
from moto.server import ThreadedMotoServer

from central.archive.search import ArchiveSearch
from central.archive.target import ArchiveUnavailable, open_target
from central.audit import AuditLog
from central.config import ArchiveConfig
from central.search import PlateQuery, SearchQuery, SearchService
from central.store.db import Database
from shared.errors import ConfigError
from tests.central.archive_helpers import DAY, NOW, OLD_SPECS, exporter
from tests.central.search_helpers import T0, store
from tests.harness import free_port

BUCKET = "varta-archive"


@pytest.fixture
def s3(tmp_path: Path) -> Iterator[tuple[ThreadedMotoServer, ArchiveConfig]]:
    """A moto S3 server with an empty bucket, and an archive config for it."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    creds = tmp_path / "s3.credentials"
    creds.write_text("# test keys\naccess_key_id = testing\nsecret_access_key = testing\n")
    endpoint = f"http://127.0.0.1:{port}"
    pafs.S3FileSystem(
        access_key="testing",
        secret_key="testing",
        region="us-east-1",
        scheme="http",
        endpoint_override=endpoint[7:],
        allow_bucket_creation=True,
    ).create_dir(BUCKET)
    config = ArchiveConfig(
        enabled=True,
        root=f"s3://{BUCKET}/ua-if/",
        region="UA-IF",
        s3_endpoint=endpoint,
        s3_credentials_file=creds,
    )
    try:
        yield server, config
    finally:
        server.stop()


def test_export_search_and_outage_on_s3(
    tmp_path: Path, s3: tuple[ThreadedMotoServer, ArchiveConfig]
) -> None:
    server, config = s3
    db = Database(tmp_path / "a.duckdb")
    ids = store(db, OLD_SPECS)
    target = open_target(config)
    export = exporter(db, target)
    first = export.export()
    assert (first.parts, first.rows) == (9, len(ids))
    assert export.export().parts == 0  # idempotent
    keys = pa.schema([("date", pa.string()), ("camera_id", pa.string())])
    dataset = ds.dataset(
        f"{BUCKET}/ua-if/sightings",
        filesystem=target.fs,
        format="parquet",
        partitioning=ds.partitioning(keys, flavor="hive"),
    )
    table = dataset.to_table(columns=["event_id", "camera_id", "date", "region"])
    assert sorted(table["event_id"].to_pylist()) == sorted(ids)
    assert "0042" in table["camera_id"].to_pylist()  # a string key, not the number 42
    assert set(table["region"].to_pylist()) == {"UA-IF"}
    archive = ArchiveSearch(db, target, keep_days=14, clock=lambda: NOW)
    db.writer.call(lambda con: con.execute("DELETE FROM sightings"))  # as if purged
    service = SearchService(db, AuditLog(db), clock=lambda: NOW, archive=archive)
    found = service.search(SearchQuery(plate=PlateQuery.parse("AT1234BO", None)), "u", "case 1")
    assert len(found.items) == 4 and all(r["archived"] for r in found.items)
    # 62 days on, the archive's 60 days are over for days 0 and 1: their prefixes go
    purged = exporter(db, target, now=T0 + 62 * DAY + 3600).purge()
    assert (purged.days, purged.parts, purged.rows) == (2, 6, 6)
    left = ds.dataset(
        f"{BUCKET}/ua-if/sightings",
        filesystem=target.fs,
        format="parquet",
        partitioning=ds.partitioning(keys, flavor="hive"),
    ).to_table(columns=["date"])
    assert set(left["date"].to_pylist()) == {"2026-09-23"}
    server.stop()  # the storage goes away
    # (werkzeug keeps serving connections already open after its shutdown, so the clients
    # below start with fresh connection pools, as after a network outage)
    target = open_target(config)
    archive = ArchiveSearch(db, target, keep_days=14, clock=lambda: NOW)
    service = SearchService(db, AuditLog(db), clock=lambda: NOW, archive=archive)
    with pytest.raises(ArchiveUnavailable, match="unreachable"):
        service.search(SearchQuery(), "u", "case 1")
    # one more sighting of a closed day, received now
    store(db, OLD_SPECS[:1], base=T0 + 5.0, received_delay=NOW - T0)
    export = exporter(db, target, now=NOW + 3600)
    with pytest.raises(ArchiveUnavailable, match="writing"):
        export.export()
    assert export.stats.failures == 1 and "writing" in export.stats.last_error
    with db.reader() as con:
        parts = con.execute("SELECT count(*) FROM archive_parts").fetchall()
    assert parts[0][0] == 9  # nothing recorded for the failed write
    db.close()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("access_key_id = a\n", "expected both"),
        ("user = a\nsecret_access_key = b\n", "expected access_key_id"),
        ("access_key_id a\n", "expected access_key_id"),
    ],
)
def test_bad_credentials_file_is_refused(tmp_path: Path, text: str, error: str) -> None:
    creds = tmp_path / "creds"
    creds.write_text(text)
    config = ArchiveConfig(enabled=True, root="s3://b/p", region="R", s3_credentials_file=creds)
    with pytest.raises(ConfigError, match=error):
        open_target(config)


def test_central_check_reports_the_archive(
    tmp_path: Path, s3: tuple[ThreadedMotoServer, ArchiveConfig]
) -> None:
    from central.check import check_archive
    from central.config import CentralConfig

    server, config = s3

    def row(archive: ArchiveConfig) -> tuple[str, str]:
        [result] = check_archive(CentralConfig(archive=archive))
        return result.status, result.detail

    assert row(config) == ("ok", f"{config.root} answers")
    missing = config.model_copy(update={"root": "s3://no-such-bucket/x"})
    assert row(missing) == ("fail", "bucket no-such-bucket does not exist")
    local = ArchiveConfig(enabled=True, root=str(tmp_path / "later"), region="R")
    assert row(local)[0] == "warn" and "created at first export" in row(local)[1]
    server.stop()
    down = config.model_copy(update={"s3_endpoint": f"http://127.0.0.1:{free_port()}"})
    status, detail = row(down)
    assert status == "fail" and "unreachable" in detail
