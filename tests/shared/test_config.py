"""Configuration: strict, documented, errors located in the YAML."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from central.config import CentralConfig
from edge_agent.config import AgentConfig
from shared.config import load
from shared.errors import ConfigError


def _models(model: type[pydantic.BaseModel]) -> list[type[pydantic.BaseModel]]:
    found = [model]
    for f in model.model_fields.values():
        for arg in (f.annotation, *getattr(f.annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, pydantic.BaseModel):
                found += _models(arg)
    return found


@pytest.mark.parametrize("root", [CentralConfig, AgentConfig])
def test_every_field_has_a_description(root: type[pydantic.BaseModel]) -> None:
    missing = [
        f"{m.__name__}.{name}"
        for m in _models(root)
        for name, f in m.model_fields.items()
        if not f.description
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ingest:\n  bind: tcp://127.0.0.1:1\n  nonsense: 3\n", r":3: ingest.nonsense: Extra"),
        ("http:\n  port: 99999\n", r":2: http.port: Input should be less than or equal"),
        ("http: [1, 2\n", "not valid YAML"),
        ("- a list\n", "expected a mapping"),
    ],
)
def test_errors_name_file_line_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "central.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load(path, CentralConfig)


def test_defaults_fill_a_partial_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text("agent_id: box-7\nspool:\n  max_bytes: 2097152\n")
    cfg = load(path, AgentConfig)
    assert cfg.agent_id == "box-7" and cfg.spool.max_bytes == 2 << 20
    assert cfg.central.window == 4
