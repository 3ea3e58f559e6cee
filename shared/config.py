"""Load a YAML file into a pydantic model, reporting errors with their YAML location."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import pydantic
import yaml

from shared.errors import ConfigError

M = TypeVar("M", bound=pydantic.BaseModel)


class StrictModel(pydantic.BaseModel):
    """Base for config models: unknown keys are errors, values are immutable."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)


def _line_of(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """Follow a pydantic error location through the YAML node tree to a line number."""
    line = node.start_mark.line + 1 if node is not None else None
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            break
        if node is None:
            break
        line = node.start_mark.line + 1
    return line


def load(path: Path, model: type[M], overrides: dict[str, Any] | None = None) -> M:
    """Parse and validate ``path``; raise ``ConfigError`` naming file, line and key."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read config {path}: {err}") from err
    try:
        data = yaml.safe_load(text) or {}
        tree = yaml.compose(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    data.update(overrides or {})
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as err:
        lines = []
        for e in err.errors():
            where = ".".join(str(p) for p in e["loc"])
            line = _line_of(tree, e["loc"])
            lines.append(f"{path}:{line or '?'}: {where}: {e['msg']}")
        raise ConfigError("invalid configuration\n" + "\n".join(lines)) from err


class LoggingConfig(StrictModel):
    """How the process logs (``VARTA_LOG_FORMAT`` / ``VARTA_LOG_LEVEL`` override these)."""

    format: Literal["text", "json"] = pydantic.Field(
        "text",
        description="text: one human-readable line per record; json: one JSON object per "
        "line (for journald and log shippers). Secrets are redacted in both.",
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = pydantic.Field(
        "INFO", description="Lowest level written."
    )


class MetricsConfig(StrictModel):
    """The Prometheus endpoint: a separate HTTP listener that serves only ``/metrics``."""

    enabled: bool = pydantic.Field(False, description="Serve Prometheus metrics.")
    host: str = pydantic.Field(
        "127.0.0.1",
        description="Address the metrics listener binds. It has no authentication: keep it "
        "on loopback or a management network that only Prometheus reaches.",
    )
    port: int = pydantic.Field(
        9810, ge=0, le=65535, description="TCP port of the metrics listener (0: a free one)."
    )
