"""Fixtures for the evaluation tests: a tiny random Llama and its tokenizer, built offline."""

from __future__ import annotations

from typing import Any

import pytest

from tests.train.helpers import build_model, build_tokenizer


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    """The tiny models gain nothing from threads, and on a shared 2-core machine threads spin and stall."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Any:
    """A byte-level BPE tokenizer with no BOS token (empty contexts are conditioned on EOS)."""
    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_model(tiny_tokenizer: Any) -> Any:
    """A random 2-layer Llama; tests must not change it (build a fresh one to wrap with peft)."""
    return build_model(len(tiny_tokenizer)).eval()
