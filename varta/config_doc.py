"""Render the configuration reference (docs/configuration.md) from the config models.

``python -m varta.config_doc > docs/configuration.md``; a test keeps the file current.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pydantic
from pydantic_core import PydanticUndefined


def _default(field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, pydantic.BaseModel):
            return "(section)"
    else:
        value = field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, pydantic.BaseModel):
        return "(section)"
    return f"`{json.dumps(value, default=str)}`"


def _section_model(annotation: Any) -> type[pydantic.BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    return None


def rows(model: type[pydantic.BaseModel], prefix: str = "") -> list[str]:
    """Markdown table rows for every field of ``model``, sections expanded."""
    out: list[str] = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        section = _section_model(field.annotation)
        if section is not None:
            out += rows(section, f"{key}.")
            continue
        desc = (field.description or "").replace("|", "\\|").replace("\n", " ")
        out.append(f"| `{key}` | {_default(field)} | {desc} |")
    return out


def render() -> str:
    """The whole reference document."""
    from central.config import CameraPlaceConfig, CentralConfig, RegionArchiveConfig
    from edge_agent.capture import CameraConfig
    from edge_agent.config import AgentConfig

    parts = [
        "# Configuration reference",
        "",
        "Generated from the config models by `python -m varta.config_doc`; do not edit.",
        "Unknown keys are errors. `varta central check-config FILE` and",
        "`varta edge check-config FILE` validate a file and print it with defaults filled in.",
        "",
    ]
    for title, model in (
        ("central.yaml (`varta central serve`)", CentralConfig),
        ("central.yaml: each entry of `cameras`", CameraPlaceConfig),
        ("central.yaml: each entry of `national_search.archives`", RegionArchiveConfig),
        ("agent.yaml (`varta edge run`)", AgentConfig),
        ("agent.yaml: each entry of `cameras`", CameraConfig),
    ):
        parts += [f"## {title}", "", "| key | default | meaning |", "|---|---|---|"]
        parts += [*rows(model), ""]
    return "\n".join(parts)


if __name__ == "__main__":
    sys.stdout.write(render())
