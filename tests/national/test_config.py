"""National configuration and session settings: what is refused, and why (no JVM here)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from central.config import NationalSearchConfig
from central.search import SearchQuery
from national.archive_io import pick_roots, spark_ddl
from national.query import NationalQuery, search_sql
from national.spark import FIXED_CONF, session_conf
from shared.errors import InvalidRequest


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"master": "local[2]"}, None),
        ({"master": "spark://10.0.0.5:7077"}, None),
        ({"master": "yarn"}, "master"),
        ({"driver_memory": "lots"}, "driver_memory"),
        (
            {"archives": [{"region": "kyiv", "root": "/a"}, {"region": "kyiv", "root": "/b"}]},
            "expected each region once, got kyiv",
        ),
        ({"archives": [{"region": "kyiv/../x", "root": "/a"}]}, "region"),
        ({"archive": []}, "Extra inputs are not permitted"),
    ],
)
def test_national_config_is_checked(fields: dict[str, Any], error: str | None) -> None:
    if error is None:
        NationalSearchConfig(**fields)
        return
    with pytest.raises(ValidationError, match=error.replace("[", r"\[")):
        NationalSearchConfig(**fields)


def test_session_settings_national_search_depends_on_cannot_be_changed() -> None:
    conf = session_conf("local[2]", extra={"spark.executor.memory": "2g"})
    assert {k: conf[k] for k in FIXED_CONF} == dict(FIXED_CONF)
    assert conf["spark.sql.sources.partitionColumnTypeInference.enabled"] == "false"
    assert conf["spark.executor.memory"] == "2g"
    assert conf["spark.driver.bindAddress"] == conf["spark.driver.host"] == "127.0.0.1"
    with pytest.raises(ValueError, match="partitionColumnTypeInference"):
        session_conf(
            "local[2]", extra={"spark.sql.sources.partitionColumnTypeInference.enabled": "true"}
        )


def test_archive_schema_reads_partition_keys_as_strings() -> None:
    ddl = spark_ddl()
    assert ddl.endswith("date STRING, camera_id STRING")
    assert "plate_candidates ARRAY<STRUCT<text: STRING, confidence: FLOAT>>" in ddl
    assert "captured_at TIMESTAMP" in ddl


def test_unknown_regions_and_bad_region_names_are_refused() -> None:
    assert pick_roots({"kyiv": "/a", "lviv": "/b"}, ()) == {"kyiv": "/a", "lviv": "/b"}
    assert pick_roots({"kyiv": "/a", "lviv": "/b"}, ("lviv",)) == {"lviv": "/b"}
    with pytest.raises(InvalidRequest, match="region: expected one of kyiv, lviv, got odesa"):
        pick_roots({"kyiv": "/a", "lviv": "/b"}, ("odesa",))
    with pytest.raises(InvalidRequest, match="region: expected letters"):
        NationalQuery(SearchQuery(), ("kyiv' OR 1=1 --",))


def test_request_values_are_parameters_never_sql_text() -> None:
    q = NationalQuery(SearchQuery(camera_ids=("x' OR '1'='1",), colour="red"), ("kyiv",))
    for dialect in ("spark", "duckdb"):
        sql = search_sql(q, dialect)  # type: ignore[arg-type]
        assert "OR '1'='1" not in sql.text
        assert "x' OR '1'='1" in sql.params.values()
        assert sorted(sql.params.values(), key=str) == sorted(
            ["x' OR '1'='1", "red", "kyiv"], key=str
        )
