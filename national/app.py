"""Composition root of national search: config in, an audited ``NationalSearch`` out."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from central.audit.log import AuditLog
from central.config import NationalSearchConfig
from central.store.db import Database
from national.search import DuckDbEngine, Engine, NationalSearch, SparkEngine
from national.spark import build_session, session_conf

EngineKind = Literal["spark", "duckdb"]


@contextmanager
def open_national(
    cfg: NationalSearchConfig, engine: EngineKind = "spark"
) -> Iterator[NationalSearch]:
    """The national search of ``cfg``: its audit log open, its engine started.

    The audit log is central's hash-chained ``audit_log`` in its own DuckDB file
    (``cfg.audit_db``), so `varta central audit verify --db FILE` checks it.

    Raises:
        SparkUnavailable: ``engine`` is spark and pyspark or Java is missing.
    """
    archives = {a.region: a.root for a in cfg.archives}
    db = Database(cfg.audit_db)
    try:
        audit = AuditLog(db)
        if engine == "duckdb":
            local = DuckDbEngine(archives)
            try:
                yield NationalSearch(local, audit)
            finally:
                local.close()
            return
        conf = session_conf(
            cfg.master,
            bind=cfg.bind_address,
            driver_memory=cfg.driver_memory,
            shuffle_partitions=cfg.shuffle_partitions,
            extra=cfg.spark_conf,
        )
        spark = build_session(conf)
        try:
            runner: Engine = SparkEngine(spark, archives)
            yield NationalSearch(runner, audit)
        finally:
            spark.stop()
    finally:
        db.close()


__all__ = ["EngineKind", "open_national"]
