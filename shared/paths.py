"""Where shared evaluation data and models live (``../shared`` or ``$VARTA_SHARED``)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The shared data folder: ``$VARTA_SHARED`` if set, else ``../shared`` beside the repo."""
    env = os.environ.get("VARTA_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


def model_mirror() -> Path:
    """The offline model mirror inside the shared folder."""
    return shared_dir() / "models"


def data_dir() -> Path:
    """The evaluation data sets inside the shared folder."""
    return shared_dir() / "data"
