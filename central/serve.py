"""Run central under uvicorn: ingest + HTTP in one process, clean stop on SIGTERM."""

from __future__ import annotations

import logging
import signal
from types import FrameType

import uvicorn

from central import collector
from central.app import build, create_app
from central.config import CentralConfig

log = logging.getLogger(__name__)


def make_server(config: CentralConfig) -> uvicorn.Server:
    """A uvicorn server for the configured app (not started)."""
    app = create_app(build(config))
    uv_config = uvicorn.Config(
        app,
        host=config.http.host,
        port=config.http.port,
        log_level="warning",
        log_config=None,  # uvicorn's records go through the root handler (format, redaction)
        timeout_graceful_shutdown=10,
        lifespan="on",
    )
    return uvicorn.Server(uv_config)


def serve(config: CentralConfig) -> None:
    """Serve until SIGTERM or SIGINT; the app's shutdown stops ingest after its last commit."""
    # Until uvicorn takes over the signals, a SIGTERM ends the process at once with status
    # 0: nothing has been received yet, so nothing can be lost. Once serving, uvicorn stops
    # gracefully (the lifespan's shutdown commits and acks the last turn), then re-raises the
    # signal to this handler, which again exits 0: the stop was orderly.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_cleanly)
    server = make_server(config)
    collector.tune()  # after the app is built: what it holds is frozen for good
    log.info("HTTP on http://%s:%d (OpenAPI at /schema)", config.http.host, config.http.port)
    server.run()
    log.info("central stopped cleanly")


def _exit_cleanly(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)
