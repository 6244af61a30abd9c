"""One home for every setting, and one path that loads them for every stage.

`assay.toml` is rendered from these models, so a default is written once. Every command reads its
settings the same way (`load_config`): the workspace's assay.toml, then an optional `--config FILE`
with the same layout laid over it, then command-line options as dotted keys
(`{"label.sample": 200}`); everything is validated at once and every problem is reported with the
dotted key to edit.

    cfg = load_config(Path(".assay/assay.toml"), overlay=Path("train.toml"), overrides={"train.base": "m.gguf"})

Seeds: the workspace `seed` is the root of every random choice. A stage's own `seed` (curate,
label, train, eval) defaults to it, and the MinHash permutations to the curation seed + 42 (a fixed
offset so the two streams differ; 42 keeps the ids of versions made before seeds were derived).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from assay.curate.config import CurateConfig
from assay.evaluate.config import EvalConfig
from assay.label.config import LabelConfig
from assay.settings import apply_overrides, deep_merge, read_toml, render_toml, validate
from assay.train.config import TrainConfig

MINHASH_SEED_OFFSET = 42

HEADER = """assay workspace configuration.
Every key is optional: the commented values are the defaults. Uncomment a line to change it.
Any command's --config FILE overlays another file with the same layout on this one."""


class AssayConfig(BaseModel):
    """The whole workspace configuration (assay.toml)."""

    model_config = ConfigDict(extra="forbid")

    seed: int = Field(
        0, ge=0, description="The workspace seed: curation, review sampling and training derive their seeds from it "
        "unless their own `seed` is set."
    )
    curate: CurateConfig = Field(default_factory=CurateConfig, description="Curation pipeline (`assay curate run`).")
    label: LabelConfig = Field(default_factory=LabelConfig, description="Human review in Argilla (`assay label`).")
    train: TrainConfig = Field(default_factory=TrainConfig, description="Training (`assay train run`).")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation and gate (`assay eval run`).")

    def with_overrides(self, overrides: Mapping[str, Any] | None, *, source: str = "command-line options") -> AssayConfig:
        """This configuration with dotted-key overrides applied (None values skipped), validated again."""
        if not any(v is not None for v in (overrides or {}).values()):
            return self
        return validate(AssayConfig, apply_overrides(self.model_dump(), overrides), source=source)


def load_config(
    workspace_file: Path | None, overlay: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> AssayConfig:
    """assay.toml (if present), then `overlay`, then dotted overrides; seeds derived; validated at once."""
    data: dict[str, Any] = {}
    if workspace_file is not None and Path(workspace_file).exists():
        data = read_toml(workspace_file)
    if overlay is not None:
        data = deep_merge(data, read_toml(overlay))
    data = derive_seeds(apply_overrides(data, overrides))
    source = ", ".join(str(p) for p in (workspace_file, overlay) if p is not None) or "configuration"
    return validate(AssayConfig, data, source=source + (" and command-line options" if overrides else ""))


def derive_seeds(data: Mapping[str, Any]) -> dict[str, Any]:
    """Fill every seed that is not set from the one above it (workspace → stage → MinHash)."""
    out = dict(data)
    root = out.get("seed", 0)
    for section in ("curate", "label", "train", "eval"):
        table = out.get(section)
        if table is None or isinstance(table, Mapping):
            out[section] = {"seed": root, **(table or {})}
    curate = out["curate"]
    near = curate.get("near_dedup")
    if near is None or isinstance(near, Mapping):
        seed = curate["seed"]
        derived = {"seed": seed + MINHASH_SEED_OFFSET} if isinstance(seed, int) and not isinstance(seed, bool) else {}
        curate["near_dedup"] = {**derived, **(near or {})}
    return out


def workspace_toml() -> str:
    """The commented assay.toml that `assay init` writes."""
    return render_toml(AssayConfig, HEADER)


def workspace_reference() -> str:
    """Every setting of assay.toml, commented, without the file's header (README's reference)."""
    return render_toml(AssayConfig)
