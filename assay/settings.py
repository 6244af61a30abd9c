"""The machinery behind every config model: read TOML, merge, override, validate everything at once.

Config models are pydantic models (`extra="forbid"`, a description on every field). A model whose
fields can each be valid but not together defines `conflicts() -> list[Conflict]`; `validate` walks
the whole tree and reports field errors and conflicts in one `ConfigError`, each with the dotted key
a user edits (`train.loop.packing`), so a config is fixed in one pass:

    cfg = validate(TrainConfig, {"method": "dora", "loop": {"lr": 1e-4}}, source="train.toml")

This module imports only pydantic and the standard library (no polars, no torch).
"""

from __future__ import annotations

import copy
import difflib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from assay.errors import ConfigError

Key = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Conflict:
    """Settings that are each valid but cannot hold together.

    `template` names them with `{0}`, `{1}`, ... which become the dotted keys of `keys` (relative to
    the model that reports the conflict), so the message always shows the full path a user edits.
    """

    template: str
    keys: tuple[Key, ...]

    def render(self, prefix: Key) -> tuple[str, list[Key]]:
        full = [prefix + k for k in self.keys]
        return self.template.format(*(dotted(k) for k in full)), full


def dotted(key: Key) -> str:
    return ".".join(str(part) for part in key) or "(top level)"


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict; a missing file or bad syntax is a ConfigError naming the file."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}", hint="check the path") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", hint="fix the syntax at the position named") from exc


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`: tables merge key by key, anything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) else value
    return out


def apply_overrides(data: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Dotted keys (`"label.sample": 200`) set on a copy of `data`; a None value means "not given"."""
    out = copy.deepcopy(dict(data))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def prefixed(section: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword options of one section as dotted overrides: prefixed("label", {"sample": 5}) → {"label.sample": 5}."""
    return {f"{section}.{key}": value for key, value in values.items()}


def validate(model: type[M], data: Mapping[str, Any], *, source: str, prefix: Key = ()) -> M:
    """Validate `data` as `model`; every field error and every conflict in one ConfigError."""
    value, problems = check(model, data, prefix=prefix)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(
            f"{source}: {len(problems)} problem(s) in the configuration:\n{lines}",
            hint="fix every line above; `assay init` writes assay.toml with every setting described",
        )
    assert value is not None
    return value


def check(model: type[M], data: Mapping[str, Any], *, prefix: Key = (), repaired: bool = False) -> tuple[M | None, list[str]]:
    """(the validated model or None, every problem). Conflicts are checked on a copy whose broken
    fields fall back to their defaults, leaving out those that would only repeat a field error.
    With `repaired=True` that copy is returned instead of None, so callers can check further."""
    try:
        value = model.model_validate(data)
        return value, [msg for msg, _ in conflicts_of(value, prefix)]
    except ValidationError as exc:
        errors = exc.errors()
    problems = [_describe(model, err, prefix) for err in errors]
    broken = {tuple(err["loc"]) for err in errors}
    try:
        fixed = model.model_validate(_drop_keys(data, broken))
    except ValidationError:
        return None, problems
    for msg, keys in conflicts_of(fixed, prefix):
        if not any(k[len(prefix):][: len(b)] == b for k in keys for b in broken):
            problems.append(msg)
    return (fixed if repaired else None), problems


def conflicts_of(value: BaseModel, prefix: Key = ()) -> list[tuple[str, list[Key]]]:
    """The rendered conflicts of a model and of every model inside it, outermost first."""
    found = [c.render(prefix) for c in getattr(value, "conflicts", lambda: [])()]
    for name in type(value).model_fields:
        child = getattr(value, name)
        children = list(enumerate(child)) if isinstance(child, list) else [(None, child)]
        for index, item in children:
            if isinstance(item, BaseModel):
                found += conflicts_of(item, (*prefix, name) if index is None else (*prefix, name, index))
    unique: list[tuple[str, list[Key]]] = []
    for item in found:
        if item not in unique:
            unique.append(item)
    return unique


def _describe(model: type[BaseModel], err: Any, prefix: Key) -> str:
    key = dotted(prefix + tuple(err["loc"]))
    if err["type"] == "extra_forbidden":
        parent = model_at(model, tuple(err["loc"][:-1]))
        names = list(parent.model_fields) if parent else []
        close = difflib.get_close_matches(str(err["loc"][-1]), names, n=1)
        owner = _section_owning(model, str(err["loc"][-1])) if len(err["loc"]) == 1 else None
        hint = f" (did you mean `{close[0]}`?)" if close else (f" (a setting of [{owner}]: put it under that table)" if owner else "")
        return f"{key}: unknown key{hint}"
    got = json.dumps(err.get("input"), default=str)[:80]
    return f"{key}: {err['msg']} (got {got})"


def _section_owning(model: type[BaseModel], name: str) -> str | None:
    """The top-level table that has a setting called `name` (for a key put at the wrong level)."""
    for section, field in model.model_fields.items():
        inner = model_in(field.annotation)
        if inner is not None and name in inner.model_fields:
            return section
    return None


def model_at(model: type[BaseModel], loc: Key) -> type[BaseModel] | None:
    """The config model class at a location such as ("stages", 0, "loop")."""
    current: type[BaseModel] = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = current.model_fields.get(str(part))
        inner = model_in(field.annotation) if field is not None else None
        if inner is None:
            return None
        current = inner
    return current


def model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = model_in(arg)
        if found is not None:
            return found
    return None


def _drop_keys(data: Any, keys: set[Key]) -> Any:
    """A copy of data without the values at the given keys (so their defaults apply)."""
    out = copy.deepcopy(data)
    dropped_items: list[tuple[list, int]] = []
    for key in sorted(keys, key=len, reverse=True):
        node = out
        for part in key[:-1]:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        if isinstance(node, dict) and key:
            node.pop(key[-1], None)
        elif isinstance(node, list) and isinstance(key[-1], int) and key[-1] < len(node):
            dropped_items.append((node, key[-1]))
    for node, index in sorted(dropped_items, key=lambda item: -item[1]):
        del node[index]
    return out


def differs(value: BaseModel) -> list[str]:
    """Names of the fields of `value` that differ from the model's defaults."""
    default = type(value)()
    return [name for name in type(value).model_fields if getattr(value, name) != getattr(default, name)]


# ---- rendering the commented TOML file --------------------------------------------------------------------


def render_toml(model: type[BaseModel], header: str | None = None) -> str:
    """A commented TOML file with every setting, its description and its default.

    Every setting line is valid TOML once its `# ` is removed: a setting without a default shows the
    example from its field (`examples=[...]`).
    """
    lines = [f"# {line}" if line else "#" for line in (header or "").splitlines()]
    _render_table(model, model(), [], lines)
    return "\n".join(lines).strip() + "\n"


def render_table_lines(cls: type[BaseModel], value: BaseModel, path: list[str], lines: list[str], *,
                       required_examples: bool = False) -> None:
    """One model's table (and the tables inside it) as commented TOML lines; a required field shows its example."""
    _render_table(cls, value, path, lines, required_examples=required_examples)


def _render_table(cls: type[BaseModel], value: BaseModel, path: list[str], lines: list[str], *, required_examples: bool = False) -> None:
    scalars, tables = [], []
    for name, field in cls.model_fields.items():
        sub = getattr(value, name)
        (tables if isinstance(sub, BaseModel) else scalars).append((name, field, sub))
    if path and scalars:
        lines += ["", f"[{'.'.join(path)}]"]
    for name, field, sub in scalars:
        if field.description:
            lines.append(f"# {field.description}")
        if field.is_required() or (required_examples and not sub and field.examples):
            lines.append(f"# {name} = {toml_value(field.examples[0] if field.examples else sub)}  # required" if field.is_required()
                         else f"# {name} = {toml_value(field.examples[0])}  # e.g.")
        elif sub is None:
            example = (field.examples or [None])[0]
            if example is None:
                raise TypeError(f"{'.'.join([*path, name])} has no default: give its Field an example (examples=[...])")
            lines.append(f"# {name} = {toml_value(example)}  # unset by default; this is an example")
        else:
            lines.append(f"# {name} = {toml_value(sub)}")
    for name, field, sub in tables:
        if field.description and not path:
            lines += ["", f"# ---- {field.description}"]
        _render_table(type(sub), sub, [*path, name], lines)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, BaseModel):
        return toml_value(value.model_dump(mode="json", exclude_none=True))
    return json.dumps(str(value))
