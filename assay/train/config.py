"""The training configuration: one typed model per concern, every field documented, all problems at once.

`load_train_config` validates a TOML file or a dict before any model is loaded. Field errors
(wrong types, out-of-range values, unknown keys) and cross-field conflicts (two settings that cannot
hold together, both named) are collected into one `ConfigError`, so a user fixes a config in one pass.

    cfg = load_train_config({"method": "dora", "loop": {"lr": 1e-4, "max_steps": 200}})

This module imports no torch: the CLI validates a config without paying for the training stack.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from assay.errors import ConfigError

MAIN_DATA = "main"
"""The data key a stage reads when it names no `data`: the version given to `assay train run --data`."""

_STRICT = ConfigDict(extra="forbid", validate_assignment=True)


class LoraSettings(BaseModel):
    """LoRA (and DoRA) adapter shape; read when `method` is "lora" or "dora"."""

    model_config = _STRICT

    r: int = Field(16, ge=1, le=1024, description="Rank of the low-rank update matrices.")
    alpha: float = Field(32.0, gt=0, description="Scaling numerator: the update is scaled by alpha / r.")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the adapter input during training.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description='Module names to adapt (e.g. ["q_proj", "v_proj"]), or "all-linear" for every linear '
        "layer except the output head.",
    )


class PromptTuningSettings(BaseModel):
    """Soft-prompt shape; read when `method` is "prompt_tuning"."""

    model_config = _STRICT

    num_virtual_tokens: int = Field(20, ge=1, le=1024, description="Number of learned virtual tokens prepended to every sequence.")
    init_text: str | None = Field(
        None, description="Initialise the virtual tokens from the embeddings of this text (random when unset)."
    )


class FullSettings(BaseModel):
    """Full fine-tuning guard; read when `method` is "full"."""

    model_config = _STRICT

    max_params: int = Field(
        1_000_000_000,
        ge=1,
        description="Refuse full fine-tuning of a model with more parameters than this: AdamW keeps "
        "about 16 bytes per parameter, so large models need an adapter method.",
    )


class LoopSettings(BaseModel):
    """The optimisation loop. A stage may override any of these in its own `loop` table."""

    model_config = _STRICT

    lr: float = Field(2e-4, gt=0, le=1, description="Peak learning rate (after warmup, before cosine decay).")
    epochs: int = Field(1, ge=1, description="Passes over the stage's training rows.")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps in the stage even if epochs remain."
    )
    batch_size: int = Field(
        8,
        ge=1,
        description="Sequences per micro-batch per device. With packing a sequence is a packed row of up to "
        "max_seq_len tokens, so tokens per optimizer step ~ batch_size x grad_accum x devices x max_seq_len.",
    )
    grad_accum: int = Field(1, ge=1, description="Micro-batches accumulated into one optimizer step.")
    max_grad_norm: float | None = Field(1.0, gt=0, description="Clip the global gradient norm to this (unset: no clipping).")
    warmup_ratio: float = Field(0.03, ge=0, lt=1, description="Share of the stage's steps spent warming the learning rate up linearly.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay, applied to matrices only (not biases or norms).")
    eval_every: int = Field(
        50, ge=0, description="Validate on the `val` rows every N optimizer steps (0: only at the end of the stage)."
    )
    val_max_rows: int = Field(512, ge=1, description="Validate on at most this many `val` rows, in a fixed order, to keep evaluation cheap.")
    patience: int | None = Field(
        None, ge=1, description="Stop the stage after this many validations without a lower validation loss (unset: never)."
    )
    checkpoint_every: int = Field(100, ge=0, description="Save a resumable checkpoint every N optimizer steps (0: only at stage ends).")
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept on disk; older ones are deleted after a newer one is complete.")
    max_seq_len: int = Field(1024, ge=8, description="Longest sequence in tokens; longer rows are truncated and counted.")
    packing: bool = Field(
        True, description="Pack several examples into each sequence (no attention across examples, positions restart)."
    )
    precision: Literal["auto", "bf16", "fp32"] = Field(
        "auto", description='"auto": bf16 autocast on a GPU that supports it, fp32 otherwise.'
    )
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass: less memory, ~30% slower.")


class ReplaySettings(BaseModel):
    """General data blended into a stage against forgetting."""

    model_config = _STRICT

    data: str = Field(..., description="Dataset version (id or tag) of general data to blend in; its `train` rows are used.")
    share: float = Field(0.1, gt=0, lt=1, description="Share of the stage's training rows drawn from the replay data.")


def _overrides_of(model: type[BaseModel]) -> type[BaseModel]:
    """A copy of `model` whose fields are all optional, with the same descriptions and bounds.

    Defaults live only in LoopSettings; a stage's table says what differs from them.
    """
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        field = copy.deepcopy(info)
        field.default = None
        fields[name] = (info.annotation | None, field)
    return create_model("LoopOverrides", __config__=_STRICT, __doc__="Per-stage loop overrides.", **fields)


LoopOverrides = _overrides_of(LoopSettings)


class StageConfig(BaseModel):
    """One training stage: its data, its loop overrides and optional replay. The adapter carries over."""

    model_config = _STRICT

    name: str = Field(..., min_length=1, description="Stage name, used in logs, metrics and the manifest.")
    data: str | None = Field(
        None, description="Dataset version (id or tag) this stage trains on (unset: the version given with --data)."
    )
    loop: LoopOverrides = Field(default_factory=LoopOverrides, description="Loop settings that differ from the top-level [loop].")  # type: ignore[valid-type]
    replay: ReplaySettings | None = Field(None, description="General data blended into this stage.")


class TrainConfig(BaseModel):
    """Everything `assay train run` needs besides the data."""

    model_config = _STRICT

    base: str | None = Field(
        None,
        description="Base model: a local Hugging Face folder, a .gguf file, or a hub id already in the local "
        "Hugging Face cache (nothing is downloaded). `--base` overrides it.",
    )
    method: Literal["lora", "dora", "prompt_tuning", "full"] = Field("lora", description="How the base model is adapted.")
    lora: LoraSettings = Field(default_factory=LoraSettings, description="LoRA/DoRA settings.")
    prompt_tuning: PromptTuningSettings = Field(default_factory=PromptTuningSettings, description="Prompt-tuning settings.")
    full: FullSettings = Field(default_factory=FullSettings, description="Full fine-tuning settings.")
    loop: LoopSettings = Field(default_factory=LoopSettings, description="Optimisation loop defaults for every stage.")
    stages: list[StageConfig] = Field(
        default_factory=list,
        description="Stages run in order with the adapter carried across (empty: one stage on the --data version).",
    )
    seed: int = Field(0, ge=0, description="Seed for adapter initialisation, shuffling, packing, replay sampling and dropout.")
    chat_template: str | None = Field(
        None, description="Jinja chat template to use instead of the tokenizer's own (needed when it has none)."
    )
    attention: Literal["sdpa", "eager", "flash_attention_2"] = Field(
        "sdpa", description="Attention implementation; flash_attention_2 needs the flash-attn package and a GPU."
    )
    allow_unreviewed: bool = Field(
        False, description="Train on a dataset version that is not `approved` (recorded in the model's manifest)."
    )

    def resolved_stages(self) -> list[tuple[StageConfig, LoopSettings]]:
        """Each stage with its effective loop settings (top-level loop overlaid by the stage's overrides)."""
        stages = self.stages or [StageConfig(name="train")]
        return [(s, self.stage_loop(s)) for s in stages]

    def stage_loop(self, stage: StageConfig) -> LoopSettings:
        """The top-level loop settings overlaid by the stage's own."""
        merged = {**self.loop.model_dump(), **stage.loop.model_dump(exclude_none=True)}
        return LoopSettings.model_validate(merged)

    def data_refs(self) -> list[str]:
        """Every dataset reference the config reads, main data included, in first-use order."""
        refs: list[str] = []
        for stage, _ in self.resolved_stages():
            for ref in (stage.data or MAIN_DATA, stage.replay.data if stage.replay else None):
                if ref is not None and ref not in refs:
                    refs.append(ref)
        return refs

    def digest(self) -> str:
        """A stable hash of the resolved configuration."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def load_train_config(source: Mapping[str, Any] | Path | str | None = None, **overrides: Any) -> TrainConfig:
    """Validate a config from a dict, a TOML/JSON file, or nothing (defaults), plus top-level overrides.

    Every field error and every conflict is reported in one ConfigError. A TOML file may hold the
    settings at top level or under a `[train]` table (as in the workspace's assay.toml).
    """
    raw, origin = _read_source(source)
    raw = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    cfg, problems = _validate(raw)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(
            f"{origin}: {len(problems)} problem(s) in the training configuration:\n{lines}",
            hint="fix every line above; `assay train run --help` and DESIGN §7 list the settings",
        )
    assert cfg is not None
    return cfg


def _read_source(source: Mapping[str, Any] | Path | str | None) -> tuple[dict[str, Any], str]:
    if source is None:
        return {}, "training config"
    if isinstance(source, Mapping):
        return dict(source), "training config"
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read training config {path}: {exc.strerror}", hint="check the path") from exc
    try:
        raw = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {exc}") from exc
    if set(raw) == {"train"} and isinstance(raw["train"], dict):
        raw = raw["train"]
    return raw, str(path)


def _validate(raw: dict[str, Any]) -> tuple[TrainConfig | None, list[str]]:
    """Field errors first; then conflicts, checked on a copy with the broken fields set back to defaults.

    A conflict that involves a field that already failed is left out: it would only repeat that error.
    """
    try:
        cfg = TrainConfig.model_validate(raw)
        return cfg, [msg for msg, _ in _conflicts(cfg)]
    except ValidationError as exc:
        errors = exc.errors()
    problems = [_describe(err) for err in errors]
    broken = {tuple(err["loc"]) for err in errors}
    repaired = _drop_paths(raw, broken)
    try:
        cfg = TrainConfig.model_validate(repaired)
    except ValidationError:
        return None, problems
    for msg, fields in _conflicts(cfg):
        if not any(_path_prefix(f, b) for f in fields for b in broken):
            problems.append(msg)
    return None, problems


def _describe(err: Any) -> str:
    key = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        parent = _model_at(err["loc"][:-1])
        close = difflib.get_close_matches(str(err["loc"][-1]), list(parent.model_fields) if parent else [], n=1)
        return f"{key}: unknown key" + (f" (did you mean `{close[0]}`?)" if close else "")
    got = json.dumps(err.get("input"), default=str)[:80]
    return f"{key}: {err['msg']} (got {got})"


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model class at a location such as ("stages", 0, "loop")."""
    model: type[BaseModel] = TrainConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        inner = _model_in(field.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _drop_paths(raw: Any, paths: set[tuple[Any, ...]]) -> Any:
    """A copy of raw without the values at the given paths (so defaults apply there)."""
    out = copy.deepcopy(raw)
    for path in sorted(paths, key=len, reverse=True):
        node = out
        for part in path[:-1]:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                node = None
                break
        if isinstance(node, dict):
            node.pop(path[-1], None) if path else None
        elif isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
            node[path[-1]] = None
    if isinstance(out, dict) and isinstance(out.get("stages"), list):
        out["stages"] = [s for s in out["stages"] if s is not None]
    return out


def _path_prefix(field: tuple[Any, ...], broken: tuple[Any, ...]) -> bool:
    """True when `field` is the broken value or lies inside it (so it now holds a default)."""
    return field[: len(broken)] == broken


def _conflicts(cfg: TrainConfig) -> list[tuple[str, list[tuple[Any, ...]]]]:
    """Settings that are each valid but cannot hold together: (message naming both, their paths)."""
    found: list[tuple[str, list[tuple[Any, ...]]]] = []
    sections = {"lora": ("lora", "dora"), "prompt_tuning": ("prompt_tuning",), "full": ("full",)}
    for section, methods in sections.items():
        if section in cfg.model_fields_set and cfg.method not in methods:
            found.append(
                (
                    f"[{section}] is set but method = {cfg.method!r}: remove [{section}] or set method = {methods[0]!r}",
                    [("method",), (section,)],
                )
            )
    names = [s.name for s in cfg.stages]
    for name in sorted({n for n in names if names.count(n) > 1}):
        paths = [("stages", i, "name") for i, n in enumerate(names) if n == name]
        where = " and ".join(_dotted(p) for p in paths)
        found.append((f"{where} are both {name!r}: stage names must be unique", paths))
    for index, (_stage, loop) in enumerate(cfg.resolved_stages()):
        for item in _loop_conflicts(cfg, loop, lambda f, i=index: _loop_field(cfg, i, f)):
            if item not in found:
                found.append(item)
    return found


def _loop_field(cfg: TrainConfig, index: int, name: str) -> tuple[Any, ...]:
    """Where a stage's effective loop value comes from: its own override, or the top-level [loop]."""
    if cfg.stages and getattr(cfg.stages[index].loop, name) is not None:
        return ("stages", index, "loop", name)
    return ("loop", name)


def _dotted(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path)


def _loop_conflicts(cfg: TrainConfig, loop: LoopSettings, where: Any) -> list[tuple[str, list[tuple[Any, ...]]]]:
    found: list[tuple[str, list[tuple[Any, ...]]]] = []
    if loop.packing and cfg.method == "prompt_tuning":
        packing = where("packing")
        found.append(
            (
                f"{_dotted(packing)} = true conflicts with method = 'prompt_tuning' (virtual tokens are prepended "
                f"once per sequence, so packed examples would share them): set {_dotted(packing)} = false",
                [packing, ("method",)],
            )
        )
    if loop.patience is not None and loop.eval_every == 0:
        patience, every = where("patience"), where("eval_every")
        found.append(
            (
                f"{_dotted(patience)} = {loop.patience} needs validations during the stage, but "
                f"{_dotted(every)} = 0: set eval_every > 0 or remove patience",
                [patience, every],
            )
        )
    return found
