"""The ``varta`` command line: one typer app with a group per role.

Each group lives beside the code it drives and imports heavy packages (openvino, duckdb,
litestar, cv2) inside its commands, so ``varta edge --help`` works on an edge-only install.
"""

from __future__ import annotations

import logging
import os

import typer

from bench.cli import app as bench_app
from central.cli import app as central_app
from edge_agent.cli import app as edge_app
from models.cli import app as models_app
from shared.keys import app as keys_app

app = typer.Typer(
    name="varta",
    help="Varta: road-camera safety platform (edge agents, central service).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(edge_app, name="edge", help="Edge agent: cameras, detection, plate reading.")
app.add_typer(central_app, name="central", help="Central service: ingest, alerts, API.")
app.add_typer(models_app, name="models", help="Model manifest: fetch and verify models.")
app.add_typer(keys_app, name="keys", help="CURVE key pairs for agents and central.")
app.add_typer(bench_app, name="bench", help="Benchmarks printing machine-readable results.")


def main() -> None:
    """Entry point of the ``varta`` script."""
    logging.basicConfig(
        level=os.environ.get("VARTA_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    app()
