"""The training configuration: one typed model per concern, every field documented, all problems at once.

`load_train_config` validates a TOML file or a dict before any model is loaded. Field errors
(wrong types, out-of-range values, unknown keys) and cross-field conflicts (two settings that cannot
hold together, both named) are collected into one `ConfigError`, so a user fixes a config in one pass.

    cfg = load_train_config({"method": "dora", "loop": {"lr": 1e-4, "max_steps": 200}})

This module imports no torch: the CLI validates a config without paying for the training stack.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from assay.errors import ConfigError
from assay.settings import Conflict, Key, differs, read_toml, validate

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
        None, examples=["Answer in the required format."], description="Initialise the virtual tokens from the embeddings of this text (random when unset)."
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
        None, ge=1, examples=[200], description="Stop after this many optimizer steps in the stage even if epochs remain."
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
        None, ge=1, examples=[3], description="Stop the stage after this many validations without a lower validation loss (unset: never)."
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
        examples=["./SmolLM2-135M-Instruct.Q4_1.gguf"],
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
        None, examples=["{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"], description="Jinja chat template to use instead of the tokenizer's own (needed when it has none)."
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
        """A stable hash of the resolved configuration, without `base`: a base model enters ids by the
        sha256 of its weights (recorded beside it), never by the path it was found at."""
        blob = json.dumps(self.model_dump(mode="json", exclude={"base"}), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()

    def conflicts(self) -> list[Conflict]:
        """Settings that are each valid but cannot hold together (see `assay.settings`)."""
        return [*self._unused_sections(), *self._duplicate_stage_names(), *self._loop_conflicts()]

    def _unused_sections(self) -> list[Conflict]:
        """A method's settings changed from their defaults while another method is chosen.

        Compared with the defaults, not with "present in the file": assay.toml carries every table
        (empty), and an empty table changes nothing.
        """
        found = []
        for section, methods in {"lora": ("lora", "dora"), "prompt_tuning": ("prompt_tuning",), "full": ("full",)}.items():
            changed = differs(getattr(self, section))
            if changed and self.method not in methods:
                keys = tuple((section, name) for name in changed)
                names = _placeholders(1, len(keys))
                found.append(Conflict(
                    f"{names} {'is' if len(keys) == 1 else 'are'} set but {{0}} = {self.method!r} does not use "
                    f"{'it' if len(keys) == 1 else 'them'}: remove {'it' if len(keys) == 1 else 'them'} or set "
                    f"{{0}} = {methods[0]!r}",
                    (("method",), *keys),
                ))
        return found

    def _duplicate_stage_names(self) -> list[Conflict]:
        names = [s.name for s in self.stages]
        found = []
        for name in sorted({n for n in names if names.count(n) > 1}):
            keys = tuple(("stages", i, "name") for i, n in enumerate(names) if n == name)
            found.append(Conflict(_placeholders(0, len(keys)) + f" are both {name!r}: stage names must be unique", keys))
        return found

    def _loop_conflicts(self) -> list[Conflict]:
        found: list[Conflict] = []
        for index, (_stage, loop) in enumerate(self.resolved_stages()):
            if loop.packing and self.method == "prompt_tuning":
                found.append(Conflict(
                    "{0} = true conflicts with {1} = 'prompt_tuning' (virtual tokens are prepended once per sequence, "
                    "so packed examples would share them): set {0} = false",
                    (self._loop_key(index, "packing"), ("method",)),
                ))
            if loop.patience is not None and loop.eval_every == 0:
                found.append(Conflict(
                    f"{{0}} = {loop.patience} needs validations during the stage, but {{1}} = 0: set eval_every > 0 or "
                    "remove patience",
                    (self._loop_key(index, "patience"), self._loop_key(index, "eval_every")),
                ))
        return list(dict.fromkeys(found))

    def _loop_key(self, index: int, name: str) -> Key:
        """Where a stage's effective loop value comes from: its own override, or the top-level `loop`."""
        if self.stages and getattr(self.stages[index].loop, name) is not None:
            return ("stages", index, "loop", name)
        return ("loop", name)


def _placeholders(first: int, count: int) -> str:
    """"{1} and {2}": the Conflict template slots of `count` keys starting at `first`."""
    return " and ".join("{" + str(i) + "}" for i in range(first, first + count))


def load_train_config(source: Mapping[str, Any] | Path | str | None = None, **overrides: Any) -> TrainConfig:
    """Validate training settings from a dict, a TOML/JSON file, or nothing (defaults), plus overrides.

    Every field error and every conflict is reported in one ConfigError. A TOML file holds the
    settings under a `[train]` table, as in the workspace's assay.toml (a file with the settings at
    top level is accepted too). Commands go through `assay.config.load_config` instead, which also
    reads assay.toml; this is for code that trains without a workspace.
    """
    raw, origin = _read_source(source)
    raw = {**raw, **{k: v for k, v in overrides.items() if v is not None}}
    return validate(TrainConfig, raw, source=origin)


def _read_source(source: Mapping[str, Any] | Path | str | None) -> tuple[dict[str, Any], str]:
    if source is None:
        return {}, "training config"
    if isinstance(source, Mapping):
        return dict(source), "training config"
    path = Path(source)
    if path.suffix == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot read the training config as JSON: {exc}", hint="check the path and syntax") from exc
    else:
        raw = read_toml(path)
    if set(raw) == {"train"} and isinstance(raw["train"], dict):
        raw = raw["train"]
    return raw, str(path)
