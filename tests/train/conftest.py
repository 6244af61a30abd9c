"""Fixtures for the training tests: everything is built offline, in temporary folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from .helpers import build_model, build_tokenizer


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Llama + tokenizer folder, loadable offline like any local base model."""
    folder = tmp_path_factory.mktemp("tiny-base")
    tokenizer = build_tokenizer()
    build_model(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tokenizer(tiny_base: Path):
    """The tiny tokenizer as training loads it (from the saved folder)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_base)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Converted GGUF folders go to a temporary cache, never ~/.cache."""
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "assay-cache"))


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """The tiny models gain nothing from threads, and on a shared 2-core machine threads spin and stall."""
    import torch

    torch.set_num_threads(1)
