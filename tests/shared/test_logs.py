"""Log format (text or JSON lines) and the redaction of secrets, in-process and in a real
`varta central serve`."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared import keys
from shared.config import LoggingConfig
from shared.logs import MASK, configure
from shared.paths import REPO_ROOT
from tests.harness import central_config, central_yaml, make_keyring, wait_for


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def capture(fmt: str, *secrets: str) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    configure(LoggingConfig(format=fmt), secrets, stream=out)  # type: ignore[arg-type]
    return logging.getLogger("varta.test"), out


@pytest.mark.usefixtures("restore_root")
@pytest.mark.parametrize(
    ("message", "args", "secret", "kept"),
    [
        ("login with password=%s", ("hunter2-x",), "hunter2-x", "login with password="),
        ("config %s", ({"api_key": "k-123456"},), "k-123456", "'api_key': '"),
        ('body {"token": "%s"}', ("tok_abcdef",), "tok_abcdef", '"token": "'),
        ("header Authorization: Bearer %s", ("eyJhbGciOi.xyz",), "eyJhbGciOi.xyz", "Bearer"),
        ("camera rtsp://admin:%s@10.0.0.5/s1", ("cam-pass",), "cam-pass", "rtsp://admin:"),
        ("db_password: %s", ("s3cr3t!",), "s3cr3t!", "db_password: "),
        ("SESSION_COOKIE=%s; path=/", ("abcdef123",), "abcdef123", "SESSION_COOKIE="),
    ],
)
def test_secrets_in_messages_are_masked(
    message: str, args: tuple[object, ...], secret: str, kept: str
) -> None:
    log, out = capture("text")
    log.warning(message, *args)
    line = out.getvalue()
    assert secret not in line
    assert kept in line and MASK in line


@pytest.mark.usefixtures("restore_root")
def test_ordinary_messages_are_untouched() -> None:
    log, out = capture("text")
    text = "agent a1 batch 7 refused: camera not announced; 12 frames dropped"
    log.info(text)
    assert out.getvalue().rstrip().endswith(text)


@pytest.mark.usefixtures("restore_root")
def test_json_lines_carry_fields_extras_and_masked_tracebacks(tmp_path: Path) -> None:
    _, secret_file = keys.generate(tmp_path, "central")
    curve_secret = keys.load_pair(secret_file).secret.decode()
    log, out = capture("json", curve_secret)
    log.info("loaded key %s for %s", curve_secret, "central", extra={"agent": "a1"})
    log.info("webhook ready", extra={"webhook_secret": "whsec-123456", "endpoint": "police"})
    try:
        raise RuntimeError(f"handshake failed with password={curve_secret}")
    except RuntimeError:
        log.exception("link down")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(lines) == 3
    first, second, third = lines
    assert first["level"] == "INFO" and first["logger"] == "varta.test"
    assert first["msg"] == f"loaded key {MASK} for central" and first["agent"] == "a1"
    assert first["ts"].endswith("+00:00") and "T" in first["ts"]
    assert second["webhook_secret"] == MASK and second["endpoint"] == "police"
    assert third["level"] == "ERROR" and "RuntimeError" in third["exc"]
    assert curve_secret not in out.getvalue()


@pytest.mark.usefixtures("restore_root")
def test_environment_overrides_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VARTA_LOG_FORMAT", "json")
    monkeypatch.setenv("VARTA_LOG_LEVEL", "WARNING")
    log, out = capture("text")
    log.info("not written")
    log.warning("written")
    (line,) = out.getvalue().splitlines()
    assert json.loads(line)["msg"] == "written"


@pytest.mark.slow
def test_central_serve_writes_json_lines_without_its_secret_key(tmp_path: Path) -> None:
    ring = make_keyring(tmp_path / "keys", ["a1"])
    config = central_config(ring, tmp_path / "central").model_copy(
        update={"logging": LoggingConfig(format="json")}
    )
    path = central_yaml(tmp_path / "central.yaml", config)
    stderr = tmp_path / "stderr.log"
    env = {k: v for k, v in os.environ.items() if k not in ("VARTA_LOG_FORMAT", "VARTA_LOG_LEVEL")}
    cmd = [sys.executable, "-c", "from varta.cli import main; main()", "central", "serve"]
    with stderr.open("w") as err:
        process = subprocess.Popen([*cmd, "-c", str(path)], cwd=REPO_ROOT, stderr=err, env=env)
        try:
            assert wait_for(lambda: "ingest listening" in stderr.read_text(), 60)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    lines = stderr.read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    messages = [r["msg"] for r in records]
    assert any(m.startswith("ingest listening on tcp://127.0.0.1:") for m in messages)
    assert any(m.startswith("HTTP on http://127.0.0.1:") for m in messages)
    assert {r["logger"] for r in records} >= {"central.app", "central.serve"}
    secret = keys.load_pair(ring.central_secret).secret.decode()
    assert secret not in stderr.read_text()
