"""Tiny offline builders: a BPE tokenizer trained on the fly, a random 2-layer Llama, toy frames, a GGUF writer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WORDS = ["red", "blue", "green", "sky", "sea", "sun", "moon", "star", "tree", "leaf", "rock", "sand", "fish", "bird", "cat", "dog"]


def corpus() -> list[str]:
    lines = [f"say {a} {b}" for a in WORDS for b in WORDS]
    lines += ["the quick brown fox jumps over the lazy dog", "system user assistant hello world"]
    return lines * 3


def build_tokenizer(vocab_size: int = 320) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(corpus(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE
    )


def build_model(vocab_size: int, seed: int = 0, **overrides: Any) -> Any:
    """A random 2-layer Llama. initializer_range is large on purpose: with the usual 0.02 the frozen
    lm_head of so small a model bounds the logits so tightly that no adapter can move the loss."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
        bos_token_id=None,
        eos_token_id=2,
        pad_token_id=0,
        initializer_range=0.3,
        **overrides,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def pair_frame(n: int = 48, n_val: int = 8, seed: int = 0) -> pl.DataFrame:
    """A learnable copy task: `say A B` → `A B`, with train and val rows."""
    import random

    rng = random.Random(seed)
    rows = []
    for i in range(n + n_val):
        a, b = rng.choice(WORDS), rng.choice(WORDS)
        rows.append(
            {"id": f"r{i}", "source": "toy", "source_line": i, "split": "train" if i < n else "val",
             "prompt": f"say {a} {b}", "response": f"{a} {b}"}
        )
    return pl.DataFrame(rows)


def text_frame(n: int = 24, seed: int = 1) -> pl.DataFrame:
    import random

    rng = random.Random(seed)
    rows = [
        {"id": f"t{i}", "source": "general", "source_line": i, "split": "train",
         "text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))}
        for i in range(n)
    ]
    return pl.DataFrame(rows)


def quick_config(base: Path, **loop: Any) -> dict[str, Any]:
    """A config dict for a few fast CPU steps."""
    settings = {"lr": 5e-3, "batch_size": 4, "max_seq_len": 64, "warmup_ratio": 0.0, "eval_every": 0,
                "checkpoint_every": 0, "max_steps": 4, "precision": "fp32"}
    return {"base": str(base), "loop": settings | loop, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}}


def _permute(weights: Any, n_head: int) -> Any:
    """llama.cpp's Q/K row order for rotary embeddings (transformers undoes it when reading a GGUF)."""
    rows = weights.shape[0]
    return weights.reshape(n_head, 2, rows // n_head // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def write_gguf(model: Any, tokenizer: Any, path: Path) -> Path:
    """Write a Llama and its byte-level BPE tokenizer (vocab, merges, specials, chat template) as F32 GGUF."""
    import json

    import gguf
    import numpy as np

    cfg = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-llama")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    writer.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    state = json.loads(tokenizer.backend_tokenizer.to_str())
    tokens = [t for t, _ in sorted(state["model"]["vocab"].items(), key=lambda kv: kv[1])]
    special = {a["content"] for a in state["added_tokens"]}
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in state["model"]["merges"]])
    writer.add_token_types([3 if t in special else 1 for t in tokens])
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(tokenizer.chat_template)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)
    for name, tensor in model.state_dict().items():
        array = tensor.detach().float().numpy()
        if name.endswith("q_proj.weight"):
            array = _permute(array, cfg.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            array = _permute(array, cfg.num_key_value_heads)
        writer.add_tensor(names.get_name(name, try_suffixes=(".weight", ".bias")), np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
