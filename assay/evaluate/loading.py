"""Loading a model version and its baseline for scoring, with the base model loaded once.

    sides = open_sides(ws, "mv-1a2b3c4d5e6f", baseline="base", settings=ScoringSettings(batch_size=16))
    with sides.candidate() as scorer: ...
    with sides.baseline() as scorer: ...

The base comes from what the model version recorded (its cached GGUF conversion, a local folder or
a cached hub id) and must hash to the recorded sha256. The baseline is scored on that same loaded
base: `base` through peft's `disable_adapter()`, another adapter model version of the same base as
a second named adapter. Only a baseline that cannot share the base (another base model, a full
fine-tune, or a different adapter type) is loaded separately, and the report says so.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assay.errors import ConfigError, InputError, NotFoundError, require
from assay.evaluate.promote import PROMOTED_ALIAS
from assay.evaluate.scoring import Scorer, ScoringSettings

CANDIDATE, BASELINE = "default", "baseline"


@dataclass(frozen=True)
class BaselineInfo:
    """What the candidate is compared with."""

    kind: str  # "base" | "model"
    id: str | None
    label: str
    shared_base: bool  # scored on the candidate's loaded base (no second copy)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "label": self.label, "shared_base": self.shared_base}


@dataclass
class Sides:
    """The candidate and its baseline, each scored through a `Scorer`."""

    scorer: Scorer
    tokenizer: Any
    info: BaselineInfo
    separate: Scorer | None = None
    adapter: str | None = None
    cache_dir: Path | None = None  # remembered baseline scores (see assay.evaluate.cache); None: off
    identity: str = ""  # what the baseline is: "base:<sha256>" or "model:<id>"
    cached: Any = None  # the last CachedScorer, for its hit counts

    @contextlib.contextmanager
    def candidate(self) -> Iterator[Scorer]:
        yield self.scorer

    @contextlib.contextmanager
    def baseline(self) -> Iterator[Scorer]:
        with self._baseline() as scorer:
            yield self._remembered(scorer)

    @contextlib.contextmanager
    def _baseline(self) -> Iterator[Scorer]:
        if self.separate is not None:
            yield self.separate
        elif self.adapter is not None:
            self.scorer.model.set_adapter(self.adapter)
            try:
                yield self.scorer
            finally:
                self.scorer.model.set_adapter(CANDIDATE)
        else:
            with self.scorer.baseline() as scorer:
                yield scorer

    def _remembered(self, scorer: Scorer) -> Any:
        if self.cache_dir is None:
            return scorer
        from assay.evaluate.cache import CachedScorer, cache_key

        path = self.cache_dir / f"{cache_key(self.identity, scorer.settings, scorer.device)}.jsonl"
        if self.cached is None or self.cached.path != path:
            self.cached = CachedScorer(scorer, path)
        self.cached._scorer = scorer
        return self.cached

    def cache_stats(self) -> dict[str, int] | None:
        return {"hits": self.cached.hits, "misses": self.cached.misses} if self.cached is not None else None

    def sides(self) -> Iterator[tuple[str, contextlib.AbstractContextManager[Scorer]]]:
        """("candidate", context), ("baseline", context): run the same code on both."""
        yield "candidate", self.candidate()
        yield "baseline", self.baseline()


def resolve_baseline(ws: Any, model: Any, baseline: str | None) -> Any | None:
    """None for the base model, else the baseline model version. Default: the promoted model, else the base."""
    if baseline in (None, "auto"):
        promoted = _promoted(ws)
        return promoted if promoted is not None and promoted.id != model.id else None
    if baseline == "base":
        return None
    if baseline == "promoted":
        found = _promoted(ws)
        if found is None:
            raise NotFoundError(f"no model version is promoted (alias `{PROMOTED_ALIAS}`)", hint="use --baseline base, or promote one first")
        return found
    return ws.models.get(baseline)


def _promoted(ws: Any) -> Any | None:
    try:
        return ws.models.get(PROMOTED_ALIAS)
    except NotFoundError:
        return None


def open_sides(ws: Any, model: Any, baseline: Any | None, settings: ScoringSettings, *, remember: bool = True) -> Sides:
    """Load the candidate (base + adapter, or a full model) and attach its baseline (its scores remembered
    in the workspace cache unless `remember` is False)."""
    sides = _open_sides(ws, model, baseline, settings)
    if remember:
        sides.cache_dir = ws.layout.cache / "scores"
        sides.identity = f"model:{baseline.id}" if baseline is not None else f"base:{model.manifest['base']['sha256']}"
    return sides


def _open_sides(ws: Any, model: Any, baseline: Any | None, settings: ScoringSettings) -> Sides:
    for module in ("torch", "transformers", "peft"):
        require(module, "eval")
    tokenizer = load_tokenizer(model.path)
    base = _base(ws, model.manifest)
    network = _candidate_network(model, base, settings)
    scorer = Scorer(network, tokenizer, settings)
    if baseline is None and model.manifest.get("format") != "full":
        return Sides(scorer, tokenizer, BaselineInfo("base", None, f"base model {base.name}", True))
    if baseline is None:
        separate = Scorer(_load_base(base, settings), tokenizer, settings)
        return Sides(scorer, tokenizer, BaselineInfo("base", None, f"base model {base.name}", False), separate=separate)
    if _shares_base(model, baseline):
        network.load_adapter(str(baseline.path), adapter_name=BASELINE)
        network.set_adapter(CANDIDATE)
        return Sides(scorer, tokenizer, BaselineInfo("model", baseline.id, f"model version {baseline.id}", True), adapter=BASELINE)
    other = Scorer(_candidate_network(baseline, _base(ws, baseline.manifest), settings), load_tokenizer(baseline.path), settings)
    return Sides(scorer, tokenizer, BaselineInfo("model", baseline.id, f"model version {baseline.id} (loaded separately)", False), separate=other)


def _shares_base(model: Any, baseline: Any) -> bool:
    """A second named adapter works for two LoRA/DoRA adapters on the same base weights."""
    a, b = model.manifest, baseline.manifest
    lora = ("lora", "dora")
    return a.get("base", {}).get("sha256") == b.get("base", {}).get("sha256") and a.get("method") in lora and b.get("method") in lora


def _base(ws: Any, manifest: dict[str, Any]) -> Any:
    from assay.train.models import locate_base

    record = manifest.get("base")
    if not record or not record.get("sha256"):
        raise InputError(f"model version {manifest.get('id')} records no base model", hint="it was not trained by assay; retrain it")
    sha, where = record["sha256"], record.get("path") or record.get("spec")
    try:
        return locate_base(record, cache_dir=ws.layout.model_cache)
    except InputError as exc:
        if sha[:12] in exc.message:  # already names the hash it needs (a changed base, a missing GGUF)
            raise
        # e.g. the base folder is gone: the bare error speaks of `--base`, which `eval` does not take
        raise InputError(f"model version {manifest.get('id')}: its base model {where} (sha256 {sha[:12]}) cannot be loaded: {exc.message}",
                         hint=f"put the base model it was trained on back at {where} (its sha256 must be {sha})") from exc


def _candidate_network(model: Any, base: Any, settings: ScoringSettings) -> Any:
    if model.manifest.get("format") == "full":
        return _load_folder(model.path, settings)
    from peft import PeftModel

    from assay.train.methods import peft_wrapping

    with peft_wrapping():
        return PeftModel.from_pretrained(_load_base(base, settings), str(model.path), adapter_name=CANDIDATE)


def _load_base(base: Any, settings: ScoringSettings) -> Any:
    return _load_folder(base.path, settings)


def _load_folder(path: Path, settings: ScoringSettings) -> Any:
    """A causal LM for scoring: the KV cache on (generation), weights in the scoring dtype."""
    import torch
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, settings.dtype) if settings.dtype else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
    model.config.use_cache = True
    return model


def load_tokenizer(folder: Path) -> Any:
    """The tokenizer saved with a model version (with the chat template it was trained with)."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the tokenizer saved in {folder}: {exc}", hint="the model version folder is damaged: run `assay doctor`") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def adapter_files(model: Any) -> dict[str, str]:
    """sha256 of the files that make up the model version's weights (what a report's signature covers)."""
    files = json.loads((Path(model.path) / "manifest.json").read_text())["files"]
    return {name: meta["sha256"] for name, meta in sorted(files.items())}


def check_devices(settings: ScoringSettings) -> None:
    if settings.device and settings.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(f"eval.device = {settings.device!r} but no CUDA device is available", hint='set eval.device = "cpu" or leave it unset')
