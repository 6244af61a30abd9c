"""The batch file: one TOML file that describes the whole loop, validated at once.

    [batch]
    name = "orders-v1"
    inputs = ["data/orders.jsonl"]                 # relative to this file
    base = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

    [review]
    mode = "argilla"                               # or "skip" (then `reason` is required)

    [[candidates]]
    name = "lora"
    [[candidates]]
    name = "dora"
    train = { method = "dora" }

    [promote]
    auto = true

    [curate.split]                                 # any table of assay.toml overlays the workspace's settings
    ratios = { train = 0.9, val = 0.1, test = 0.0 }

Every problem — an unknown key anywhere, a missing input, a candidate's training settings that do not
hold together — is reported in one error with its dotted key.
"""

from __future__ import annotations

import glob
import hashlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay.errors import ConfigError
from assay.settings import check, deep_merge, read_toml

_STRICT = ConfigDict(extra="forbid")
OWN_TABLES = ("batch", "review", "candidates", "promote")


class BatchSettings(BaseModel):
    model_config = _STRICT

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", examples=["orders-v1"], description="The batch's name: its state, tags and review dataset are named after it.")
    inputs: list[str] = Field(default_factory=list, description="Raw files, folders or globs to curate (relative to the batch file).")
    base: str | None = Field(None, examples=["models/base.gguf"], description="Base model (relative to the batch file unless absolute or a hub id); default: train.base.")
    reuse: list[str] = Field(default_factory=list, description="Approved dataset versions (ids or tags) to train on together with this batch's approved rows (retraining).")


class ReviewSettings(BaseModel):
    model_config = _STRICT

    mode: Literal["argilla", "skip"] = Field("argilla", description="argilla: push for review and wait for it; skip: train on the curated version without review.")
    reason: str | None = Field(None, examples=["rows come from a reviewed source"], description="Why review is skipped (required with mode = \"skip\"); recorded in every downstream manifest and report.")
    dataset: str | None = Field(None, examples=["orders-v1-review"], description="Argilla dataset name (default: the batch name).")
    complete: float = Field(1.0, gt=0, le=1, description="Share of pushed records that must have their `min_submitted` submissions before the pull.")

    @field_validator("reason")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() if value else value


class Candidate(BaseModel):
    model_config = _STRICT

    name: str = Field(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", examples=["lora-r16"], description="Candidate name (unique in the batch).")
    train: dict[str, Any] = Field(default_factory=dict, examples=[{"method": "lora", "lora": {"r": 16}}],
                                  description="Training settings laid over [train] for this candidate (same keys as [train]).")


class PromoteSettings(BaseModel):
    model_config = _STRICT

    auto: bool = Field(False, description="Promote the best passing candidate (by the policy's primary metric) at the end.")
    alias: str = Field("production", description="Alias the promoted model gets.")


class BatchFile(BaseModel):
    """The batch's own tables (the rest of the file overlays assay.toml)."""

    model_config = _STRICT

    batch: BatchSettings
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    candidates: list[Candidate] = Field(..., min_length=1)
    promote: PromoteSettings = Field(default_factory=PromoteSettings)


class Batch(BaseModel):
    """A loaded batch: its own settings, the resolved configuration, each candidate's training settings."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    file: BatchFile
    path: str
    sha256: str
    config: Any  # AssayConfig with the batch's overlays
    trains: dict[str, Any]  # candidate name -> TrainConfig
    inputs: list[str]  # resolved input paths

    @property
    def name(self) -> str:
        return self.file.batch.name

    @property
    def dataset(self) -> str:
        return self.file.review.dataset or self.name


def load_batch(ws: Any, path: Path) -> Batch:
    """Read and validate a batch file against the workspace's settings; every problem at once."""
    from assay.config import AssayConfig, derive_seeds
    from assay.train.config import TrainConfig

    raw = read_toml(path)
    own = {k: raw.pop(k) for k in OWN_TABLES if k in raw}
    base_dir = Path(path).absolute().parent
    raw = _paths_relative_to_file(raw, base_dir)
    file, problems = check(BatchFile, own, repaired=True)
    data = derive_seeds(deep_merge(read_toml(ws.config_path) if ws.config_path.exists() else {}, raw))
    if file is not None and file.batch.base:
        data = deep_merge(data, {"train": {"base": _relative(file.batch.base, base_dir)}})
    config, more = check(AssayConfig, data, repaired=True)
    problems += more
    trains: dict[str, Any] = {}
    if file is not None:
        problems += _batch_problems(file, base_dir)
        if config is not None:
            for i, cand in enumerate(file.candidates):
                merged = deep_merge(config.train.model_dump(mode="json", exclude_unset=True), cand.train)
                trains[cand.name], found = check(TrainConfig, merged, prefix=("candidates", i, "train"))
                problems += found
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise ConfigError(f"{path}: {len(problems)} problem(s) in the batch file:\n{lines}",
                          hint="fix every line above; `assay batch run --help` shows the layout")
    assert file is not None and config is not None
    return Batch(file=file, path=str(path), sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest(), config=config,
                 trains=trains, inputs=[_relative(i, base_dir) for i in file.batch.inputs])


def _paths_relative_to_file(raw: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    """Files the batch names in assay.toml tables (suite, policy, eval sets) are relative to the batch file."""
    out = {**raw}
    ev = out.get("eval")
    if isinstance(ev, dict):
        out["eval"] = {**ev, **{k: _relative(ev[k], base_dir) for k in ("suite", "policy") if isinstance(ev.get(k), str)}}
    decon = (out.get("curate") or {}).get("decontaminate") if isinstance(out.get("curate"), dict) else None
    if isinstance(decon, dict) and isinstance(decon.get("evals"), list):
        evals = [_relative(e, base_dir) if not e.startswith(("ds-",)) and ("/" in e or "." in e) else e for e in decon["evals"]]
        out["curate"] = {**out["curate"], "decontaminate": {**decon, "evals": evals}}
    return out


def _batch_problems(file: BatchFile, base_dir: Path) -> list[str]:
    problems = []
    if file.review.mode == "skip" and not file.review.reason:
        problems.append('review.reason: required with review.mode = "skip" (it is recorded in every manifest and report)')
    names = [c.name for c in file.candidates]
    problems += [f"candidates: the name {n!r} is used twice" for n in sorted({n for n in names if names.count(n) > 1})]
    if not file.batch.inputs and not file.batch.reuse:
        problems.append("batch.inputs: give raw files to curate (or batch.reuse with approved versions)")
    for item in file.batch.inputs:
        resolved = _relative(item, base_dir)
        if not Path(resolved).exists() and not glob.glob(resolved, recursive=True):
            problems.append(f"batch.inputs: {item} not found (looked for {resolved})")
    return problems


def _relative(value: str, base_dir: Path) -> str:
    """A path relative to the batch file; absolute paths and hub ids (`org/name` that is not a file) stay."""
    path = Path(value).expanduser()
    if path.is_absolute():
        return str(path)
    candidate = base_dir / path
    looks_like_hub_id = value.count("/") == 1 and not candidate.exists() and not value.startswith(".")
    return value if looks_like_hub_id else str(candidate)


def batch_reference() -> str:
    """The batch file's own tables as commented TOML, rendered from the models (README's reference)."""
    from assay.settings import render_table_lines

    lines = ["# The batch's own tables. Any table of assay.toml ([curate...], [label], [train...], [eval]) may",
             "# follow them; it overlays the workspace's settings for this batch only."]
    render_table_lines(BatchSettings, BatchSettings(name="orders-v1"), ["batch"], lines)
    render_table_lines(ReviewSettings, ReviewSettings(), ["review"], lines)
    lines += ["", "# One [[candidates]] table per model to train; at least one."]
    render_table_lines(Candidate, Candidate(name="lora-r16"), ["[candidates]"], lines, required_examples=True)
    render_table_lines(PromoteSettings, PromoteSettings(), ["promote"], lines)
    return "\n".join(lines).strip() + "\n"
