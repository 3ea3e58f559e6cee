"""docs/configuration.md is generated from the config models and must be current."""

from __future__ import annotations

from shared.paths import REPO_ROOT
from varta.config_doc import render


def test_configuration_reference_is_current() -> None:
    doc = (REPO_ROOT / "docs" / "configuration.md").read_text()
    assert doc == render(), "run: python -m varta.config_doc > docs/configuration.md"
