"""The Spark session national search runs in.

``local[N]`` runs Spark inside the driver's JVM (one machine); ``spark://host:port`` uses a
standalone cluster (``national.cluster`` starts one from the pyspark package). The session
is set up for the archive and for a closed network:

* partition column type inference is off, so ``date=`` and ``camera_id=`` are strings
  (a camera ``0042`` stays ``0042``; ``central.archive.schema`` requires it);
* the session time zone is UTC (archive days are UTC days);
* the web UI is off and the driver binds to the address given (loopback by default);
* the JVM logs warnings and errors only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

APP_NAME: Final = "varta-national"
LOG_CONFIG: Final = Path(__file__).with_name("log4j2.properties")
# What every national session needs; ``extra`` may add to it but not change these.
FIXED_CONF: Final[Mapping[str, str]] = {
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


class SparkUnavailable(RuntimeError):
    """pyspark or a Java runtime is missing (install the ``national`` extra and a JRE)."""


def spark_home() -> Path:
    """The Spark distribution bundled in the pyspark package (``bin/``, ``jars/``).

    Raises:
        SparkUnavailable: pyspark is not installed.
    """
    try:
        import pyspark
    except ImportError as err:
        raise SparkUnavailable(
            "national search needs pyspark: pip install 'varta[national]'"
        ) from err
    return Path(pyspark.__file__).parent


def require_java() -> None:
    """Refuse early, with a message, when no Java runtime is found.

    Raises:
        SparkUnavailable: Neither ``JAVA_HOME`` nor ``java`` on the PATH.
    """
    import shutil

    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return
    if shutil.which("java") is None:
        raise SparkUnavailable(
            "national search needs a Java runtime (Debian: apt-get install default-jre-headless)"
        )


def session_conf(
    master: str,
    bind: str = "127.0.0.1",
    driver_memory: str = "1g",
    shuffle_partitions: int = 8,
    extra: Mapping[str, str] | None = None,
    java_options: str = "",
) -> dict[str, str]:
    """The configuration of a national session (see the module docstring).

    Args:
        master: ``local[N]`` or ``spark://host:port``.
        bind: Address the driver binds to and advertises.
        driver_memory: Driver heap (``spark.driver.memory``).
        shuffle_partitions: ``spark.sql.shuffle.partitions``.
        extra: Further settings (not those of ``FIXED_CONF``).
        java_options: JVM options for the driver and the executors besides the log
            configuration (tests start short-lived JVMs with ``-XX:TieredStopAtLevel=1``).

    Raises:
        ValueError: ``extra`` tries to change one of the fixed settings.
    """
    given = dict(extra or {})
    clash = sorted(k for k, v in given.items() if k in FIXED_CONF and v != FIXED_CONF[k])
    if clash:
        raise ValueError(
            f"spark_conf: {', '.join(clash)} cannot be changed (national search needs them)"
        )
    logs = f"-Dlog4j2.configurationFile=file:{LOG_CONFIG}"
    return {
        **given,
        **FIXED_CONF,
        "spark.master": master,
        "spark.app.name": APP_NAME,
        "spark.driver.host": bind,
        "spark.driver.bindAddress": bind,
        "spark.driver.memory": driver_memory,
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.driver.extraJavaOptions": f"{logs} {java_options}".strip(),
        "spark.executor.extraJavaOptions": f"{logs} {java_options}".strip(),
    }


def build_session(conf: Mapping[str, str]) -> SparkSession:
    """Start (or join) the JVM and return a session with ``conf``.

    Raises:
        SparkUnavailable: pyspark or Java missing.
    """
    spark_home()
    require_java()
    from pyspark.sql import SparkSession

    # The launcher reads these before the JVM exists: keep it on the same address and
    # quiet from its first line.
    os.environ.setdefault("SPARK_LOCAL_IP", conf.get("spark.driver.bindAddress", "127.0.0.1"))
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@contextmanager
def session(conf: Mapping[str, str]) -> Iterator[SparkSession]:
    """A session for a ``with`` block, stopped at its end."""
    spark = build_session(conf)
    try:
        yield spark
    finally:
        spark.stop()


__all__ = [
    "FIXED_CONF",
    "SparkUnavailable",
    "build_session",
    "require_java",
    "session",
    "session_conf",
    "spark_home",
]
