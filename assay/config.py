"""One home for every setting: typed models whose defaults and descriptions also write assay.toml.

The workspace's `assay.toml` is rendered from these models, so a default is written once.
A `--config FILE` overlays the workspace file; unknown keys are errors, reported all at once.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from assay.curate.config import CurateConfig
from assay.errors import ConfigError
from assay.label.config import LabelConfig
from assay.train.config import TrainConfig

CONFIG_FILE = "assay.toml"


class AssayConfig(BaseModel):
    """The whole workspace configuration (assay.toml)."""

    model_config = ConfigDict(extra="forbid")

    curate: CurateConfig = Field(default_factory=CurateConfig, description="Curation pipeline (`assay curate run`).")
    label: LabelConfig = Field(default_factory=LabelConfig, description="Human review in Argilla (`assay label`).")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training (`assay train run`).")


def load_config(workspace_file: Path | None, overlay: Path | None = None) -> AssayConfig:
    """Read assay.toml (if present), overlay another TOML file, validate everything at once."""
    data: dict[str, Any] = {}
    for path in (workspace_file, overlay):
        if path is not None and (path.exists() or path is overlay):
            data = deep_merge(data, read_toml(path))
    return validate_config(data, source=str(overlay or workspace_file))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", hint="fix the syntax at the position named") from exc


def validate_config(data: dict[str, Any], source: str = "config") -> AssayConfig:
    try:
        return AssayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc


def format_validation_error(exc: ValidationError, source: str) -> str:
    """Every problem on its own line, with the dotted key path a user would edit."""
    lines = [f"{source}: {exc.error_count()} problem(s) in the configuration:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        msg = "unknown key (check the spelling against assay.toml's comments)" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  - {key}: {msg} (got {json.dumps(err.get('input'), default=str)[:80]})")
    return "\n".join(lines)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def render_toml(model: type[BaseModel] = AssayConfig, header: str | None = None) -> str:
    """A commented TOML file showing every setting with its default and description."""
    lines = [f"# {line}" if line else "#" for line in (header or "").splitlines()]
    _render_table(model, model(), [], lines)
    return "\n".join(lines).strip() + "\n"


def _render_table(cls: type[BaseModel], value: BaseModel, path: list[str], lines: list[str]) -> None:
    scalars, tables = [], []
    for name, field in cls.model_fields.items():
        sub = getattr(value, name)
        (tables if isinstance(sub, BaseModel) else scalars).append((name, field, sub))
    if path and scalars:
        lines += ["", f"[{'.'.join(path)}]"]
    for name, field, sub in scalars:
        if field.description:
            lines.append(f"# {field.description}")
        lines.append(f"# {name} = {_toml_value(sub)}")
    for name, field, sub in tables:
        if field.description and not path:
            lines += ["", f"# ---- {field.description}"]
        _render_table(type(sub), sub, [*path, name], lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "  # unset by default"
    return json.dumps(str(value))


README_MARKERS = ("<!-- config-reference:start -->", "<!-- config-reference:end -->")


def readme_reference() -> str:
    """The configuration reference block that README.md carries between its markers."""
    return f"{README_MARKERS[0]}\n```toml\n{render_toml()}```\n{README_MARKERS[1]}"


def update_readme(path: Path) -> bool:
    """Rewrite README.md's configuration reference from the models; True if it changed."""
    text = path.read_text(encoding="utf-8")
    start, end = text.index(README_MARKERS[0]), text.index(README_MARKERS[1]) + len(README_MARKERS[1])
    new = text[:start] + readme_reference() + text[end:]
    path.write_text(new, encoding="utf-8")
    return new != text
