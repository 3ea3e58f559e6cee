"""Shared fixtures: real models pulled from the offline mirror, real evaluation data."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.fetch import pull
from models.store import ModelStore, load_manifest
from shared.paths import data_dir, model_mirror


@pytest.fixture(scope="session")
def model_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """Every manifest model pulled once per session from ``$VARTA_SHARED/models``."""
    mirror = model_mirror()
    if not mirror.is_dir():
        pytest.fail(f"model mirror {mirror} is missing; set VARTA_SHARED to the shared folder")
    root = tmp_path_factory.mktemp("models")
    pull(load_manifest().models, root, mirror)
    return ModelStore(root)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared evaluation data sets (``$VARTA_SHARED/data``)."""
    path = data_dir()
    if not path.is_dir():
        pytest.fail(f"shared data {path} is missing; set VARTA_SHARED to the shared folder")
    return path
