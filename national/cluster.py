"""A Spark standalone cluster (one master, N workers) from the pyspark package's own Spark.

For tests, the benchmark and a single-host trial: each process is ``bin/spark-class`` of the
distribution bundled in pyspark, run in the foreground as a child of this process (no
daemon scripts, no pid files), bound to one address (loopback by default), with its log in
``work_dir``. ``start`` returns once the master reports every worker alive; ``stop`` ends
exactly the processes it started. A production cluster is run the same way by a service
manager, one unit per master and worker (docs/national.md).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from national.spark import LOG_CONFIG, require_java, spark_home

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class StandaloneCluster:
    """A running master and its workers.

    Attributes:
        master_url: ``spark://host:port``, for ``spark.master``.
        web_url: The master's status page (``/json/`` gives the workers and applications).
        work_dir: Logs and the workers' scratch space.
    """

    master_url: str
    web_url: str
    work_dir: Path
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _logs: list[IO[bytes]] = field(default_factory=list, repr=False)

    def status(self) -> dict[str, Any]:
        """The master's JSON status (``aliveworkers``, ``workers``, ``activeapps``, ...)."""
        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=5) as resp:
            data: dict[str, Any] = json.load(resp)
            return data

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop the workers, then the master (SIGTERM, SIGKILL after ``timeout_s``)."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for proc in reversed(self._procs):
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for fh in self._logs:
            fh.close()
        self._procs.clear()
        self._logs.clear()


def _spawn(
    cluster: StandaloneCluster, name: str, args: list[str], env: dict[str, str]
) -> subprocess.Popen[bytes]:
    log = (cluster.work_dir / f"{name}.log").open("ab")
    cluster._logs.append(log)
    proc = subprocess.Popen(
        [str(spark_home() / "bin" / "spark-class"), *args],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # a Ctrl-C in the caller's terminal is the caller's to handle
    )
    cluster._procs.append(proc)
    return proc


def start(
    work_dir: Path,
    workers: int = 2,
    cores: int = 1,
    memory: str = "1g",
    host: str = "127.0.0.1",
    timeout_s: float = 120.0,
    daemon_memory: str = "256m",
    java_options: str = "",
) -> StandaloneCluster:
    """Start a master and ``workers`` workers and wait until all are registered.

    Args:
        work_dir: Logs and scratch space.
        workers: Worker processes.
        cores: Cores each worker offers.
        memory: Memory each worker offers its executors.
        host: Address every process binds to.
        timeout_s: How long to wait for the workers to register.
        daemon_memory: Heap of the master and worker processes themselves.
        java_options: Further JVM options of the master and workers.

    Raises:
        SparkUnavailable: pyspark or Java missing.
        RuntimeError: A process exited, or the workers did not register in time (the
            processes started are stopped; their logs stay in ``work_dir``).
    """
    require_java()
    work_dir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "SPARK_LOCAL_IP": host,
        "SPARK_DAEMON_JAVA_OPTS": f"-Dlog4j2.configurationFile=file:{LOG_CONFIG} {java_options}",
        "SPARK_DAEMON_MEMORY": daemon_memory,
        "SPARK_WORKER_DIR": str(work_dir / "work"),
    }
    port, web = free_port(host), free_port(host)
    cluster = StandaloneCluster(f"spark://{host}:{port}", f"http://{host}:{web}", work_dir)
    try:
        _spawn(
            cluster,
            "master",
            [MASTER_CLASS, "--host", host, "--port", str(port), "--webui-port", str(web)],
            env,
        )
        for i in range(workers):
            args = [WORKER_CLASS, "--host", host, "--webui-port", str(free_port(host))]
            args += ["--cores", str(cores), "--memory", memory]
            args += ["--work-dir", str(work_dir / f"worker-{i}"), cluster.master_url]
            _spawn(cluster, f"worker-{i}", args, env)
        _wait_for_workers(cluster, workers, timeout_s)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_for_workers(cluster: StandaloneCluster, workers: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    alive = 0
    while time.monotonic() < deadline:
        dead = [p.args for p in cluster._procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"spark process exited early: {dead}; see {cluster.work_dir}")
        try:
            alive = int(cluster.status().get("aliveworkers", 0))
        except OSError:
            alive = 0  # the master's web UI is not up yet
        if alive >= workers:
            return
        time.sleep(0.5)
    raise RuntimeError(
        f"{alive} of {workers} workers registered in {timeout_s:.0f} s; see {cluster.work_dir}"
    )


__all__ = ["StandaloneCluster", "free_port", "start"]
