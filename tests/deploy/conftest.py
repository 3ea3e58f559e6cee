"""Fixtures of the deployment tests: the wheel built once, and a local wheelhouse.

The wheelhouse holds every third-party wheel the ``edge`` and ``central`` extras need, at the
versions of ``constraints.txt``. It is filled once from the package registry (pip's cache
makes that quick) and reused: the venvs these tests create, and the test hosts of the
Ansible run, install with ``--no-index`` from it, so nothing is downloaded while they run.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.paths import REPO_ROOT


@dataclass(frozen=True)
class Dist:
    """The wheel and sdist ``python -m build`` made from the working tree."""

    wheel: Path
    sdist: Path


def build_dist(source: Path, out: Path) -> Dist:
    """``python -m build`` (sdist, then the wheel from it) without a registry round trip.

    ``--no-isolation`` builds with the setuptools pinned in the dev group, so the build
    needs no network; the range in ``[build-system]`` is what an isolated build uses.
    """
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
        text=True,
    )
    (wheel,) = out.glob("varta-*.whl")
    (sdist,) = out.glob("varta-*.tar.gz")
    return Dist(wheel=wheel, sdist=sdist)


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    """The wheel and sdist of the working tree, built once per session."""
    return build_dist(REPO_ROOT, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def wheelhouse(dist: Dist) -> Path:
    """``$VARTA_WHEELHOUSE`` or ``var/wheelhouse``: every pinned dependency as a wheel."""
    root = Path(os.environ.get("VARTA_WHEELHOUSE", REPO_ROOT / "var" / "wheelhouse"))
    root.mkdir(parents=True, exist_ok=True)
    stamp = root / ".constraints.sha256"
    pins = REPO_ROOT / "constraints.txt"
    digest = hashlib.sha256(
        pins.read_bytes() + (REPO_ROOT / "pyproject.toml").read_bytes()
    ).hexdigest()
    if stamp.is_file() and stamp.read_text() == digest:
        return root
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary",
            ":all:",
            "-c",
            str(pins),
            "--dest",
            str(root),
            f"{dist.wheel}[edge,central]",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    (root / dist.wheel.name).unlink(missing_ok=True)  # the project's own wheel is not a dep
    stamp.write_text(digest)
    return root


def make_venv(path: Path, wheelhouse: Path, requirement: str) -> Path:
    """A fresh venv at ``path`` with ``requirement`` installed offline from ``wheelhouse``."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    subprocess.run(
        [
            str(path / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            requirement,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return path
