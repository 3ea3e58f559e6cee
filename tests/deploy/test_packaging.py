"""The wheel a box installs: what it holds, and a working ``varta edge`` from ``[edge]``."""

from __future__ import annotations

import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.deploy.conftest import Dist, make_venv

WEB_STACK = ("litestar", "uvicorn", "duckdb", "pyarrow", "jinja2", "babel", "argon2")


def test_wheel_holds_the_manifest_and_console_assets_but_no_tests_or_benches(dist: Dist) -> None:
    names = set(zipfile.ZipFile(dist.wheel).namelist())
    for needed in (
        "models/manifest.json",
        "edge_agent/plate_calibration.json",
        "central/web/templates/base.html",
        "central/web/static/console.css",
        "central/web/static/vendor/htmx.min.js",
        "central/web/static/vendor/leaflet/leaflet.js",
        "central/web/static/vendor/swagger-ui/swagger-ui-bundle.js",
        "central/web/locale/uk/LC_MESSAGES/messages.po",
        "central/web/locale/en/LC_MESSAGES/messages.po",
        "varta/cli.py",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.startswith(("tests/", "bench/"))]
    size = dist.wheel.stat().st_size
    print(f"wheel {dist.wheel.name}: {size} bytes")
    assert size < 3 * 1024 * 1024


def test_sdist_builds_from_the_same_tree(dist: Dist) -> None:
    with tarfile.open(dist.sdist) as tar:
        names = tar.getnames()
    root = dist.sdist.name.removesuffix(".tar.gz")
    assert f"{root}/pyproject.toml" in names
    assert f"{root}/models/manifest.json" in names


@pytest.mark.slow
def test_edge_extra_gives_a_working_varta_edge_without_the_web_stack(
    dist: Dist, wheelhouse: Path, tmp_path: Path
) -> None:
    venv = make_venv(tmp_path / "venv", wheelhouse, f"{dist.wheel}[edge]")
    help_text = subprocess.run(
        [str(venv / "bin" / "varta"), "edge", "--help"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "run" in help_text and "check-config" in help_text
    found = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import importlib.util as u, sys;"
            f"print(' '.join(m for m in {WEB_STACK!r} if u.find_spec(m)))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert found == ""
    # The heavy edge stack is there and imports, and the manifest ships inside the wheel.
    subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import openvino, cv2, zmq, edge_agent.pipeline"],
        check=True,
    )
    models = subprocess.run(
        [str(venv / "bin" / "varta"), "models", "list", "--dest", str(tmp_path / "m")],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "vehicle-detection-0200" in models and "missing" in models
