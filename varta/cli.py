"""The ``varta`` command line: one typer app with a group per role.

Each group lives beside the code it drives and imports heavy packages (openvino, duckdb,
litestar, cv2) inside its commands, so ``varta edge --help`` works on an edge-only install.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Annotated

import typer

from central.cli import app as central_app
from edge_agent.cli import app as edge_app
from models.cli import app as models_app
from national.cli import app as national_app
from shared.keys import app as keys_app

app = typer.Typer(
    name="varta",
    help="Varta: road-camera safety platform (edge agents, central service).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(edge_app, name="edge", help="Edge agent: cameras, detection, plate reading.")
app.add_typer(central_app, name="central", help="Central service: ingest, alerts, API.")
app.add_typer(
    national_app, name="national", help="National search: every region's archive on Spark."
)
app.add_typer(models_app, name="models", help="Model manifest: fetch and verify models.")
app.add_typer(keys_app, name="keys", help="CURVE key pairs for agents and central.")
if importlib.util.find_spec("bench") is not None:
    # Benchmarks live in the source tree only; the wheel a box installs leaves them out.
    from bench.cli import app as bench_app

    app.add_typer(bench_app, name="bench", help="Benchmarks printing machine-readable results.")


@app.command("demo")
def demo_cmd(
    source: Annotated[
        str | None,
        typer.Option(help="Your own camera (rtsp://, http://, /dev/videoN) or video file."),
    ] = None,
    port: Annotated[int, typer.Option(help="HTTP port of central.")] = 8000,
    seconds: Annotated[float, typer.Option(help="Stop after this long (0: run until Ctrl-C).")] = 0,
    root: Annotated[Path, typer.Option(help="Demo state directory.")] = Path("var/demo"),
) -> None:
    """The main job: central + an edge agent on sample cameras, sightings shown live."""
    from varta.demo import run_demo

    shown = run_demo(root, port, source, seconds)
    typer.echo(f"demo stopped; {shown} sightings shown")


def main() -> None:
    """Entry point of the ``varta`` script."""
    from shared.logs import configure

    configure()  # text unless VARTA_LOG_FORMAT=json; `run` and `serve` apply their config
    app()
