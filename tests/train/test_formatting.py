"""Rows to examples: the chat template, assistant-only loss, text rows, truncation and data errors."""

from __future__ import annotations

import polars as pl
import pytest

from assay.errors import InputError
from assay.train.formatting import (
    IGNORE,
    assistant_spans,
    chat_example,
    format_rows,
    render,
    split_rows,
    text_example,
)

from .helpers import pair_frame


def labelled_text(tokenizer, example) -> str:
    return tokenizer.decode([t for t in example.labels if t != IGNORE])


def test_prompt_response_loss_only_on_the_response(tokenizer) -> None:
    frame = pl.DataFrame({"id": ["a"], "prompt": ["say red blue"], "response": ["red blue"]})
    [example], stats = format_rows(frame, tokenizer, max_seq_len=128)
    assert labelled_text(tokenizer, example) == "red blue<|im_end|>\n"
    assert example.input_ids == tokenizer.apply_chat_template(
        [{"role": "user", "content": "say red blue"}, {"role": "assistant", "content": "red blue"}], tokenize=True, return_dict=False
    )
    assert stats.used == 1 and stats.target_tokens == example.target_tokens


def test_every_assistant_turn_and_nothing_else_carries_loss(tokenizer) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "say sun"},
        {"role": "assistant", "content": "sun"},
        {"role": "user", "content": "say moon star"},
        {"role": "assistant", "content": "moon star"},
    ]
    example, skipped = chat_example("m", messages, tokenizer)
    assert skipped == 0
    assert labelled_text(tokenizer, example) == "sun<|im_end|>\nmoon star<|im_end|>\n"
    masked = tokenizer.decode([t for t, label in zip(example.input_ids, example.labels, strict=True) if label == IGNORE])
    assert masked == (
        "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nsay sun<|im_end|>\n<|im_start|>assistant\n"
        "<|im_start|>user\nsay moon star<|im_end|>\n<|im_start|>assistant\n"
    )


def test_spans_are_character_ranges_of_each_turn(tokenizer) -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    full = render(tokenizer, messages)
    [(lo, hi)], _ = assistant_spans(tokenizer, messages, full)
    assert full[lo:hi] == "b<|im_end|>\n"


def test_template_that_rewrites_past_turns_skips_and_counts_them(tokenizer) -> None:
    # Drops earlier assistant turns' content once a later one exists (like templates that strip reasoning).
    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['role'] == 'assistant' and not loop.last %}...{% else %}{{ m['content'] }}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    original = tokenizer.chat_template
    tokenizer.chat_template = template
    try:
        messages = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "sun"},
                    {"role": "user", "content": "y"}, {"role": "assistant", "content": "moon"}]
        example, skipped = chat_example("m", messages, tokenizer)
    finally:
        tokenizer.chat_template = original
    assert skipped == 1
    assert labelled_text(tokenizer, example) == "moon<|im_end|>\n"


def test_text_rows_carry_loss_on_all_tokens_but_the_first(tokenizer) -> None:
    example = text_example("t", "the quick brown fox", tokenizer)
    assert example.input_ids[-1] == tokenizer.eos_token_id
    assert example.labels[0] == IGNORE and example.labels[1:] == example.input_ids[1:]


def test_messages_column_is_used(tokenizer) -> None:
    frame = pl.DataFrame(
        {"id": ["a"], "messages": [[{"role": "user", "content": "say sea"}, {"role": "assistant", "content": "sea"}]]}
    )
    [example], _ = format_rows(frame, tokenizer, max_seq_len=64)
    assert labelled_text(tokenizer, example) == "sea<|im_end|>\n"


def test_truncation_and_drops_are_counted(tokenizer) -> None:
    long_prompt = " ".join(["red"] * 80)
    frame = pl.DataFrame(
        {
            "id": ["ok", "long_response", "prompt_fills_window", "empty"],
            "prompt": ["say red", "say red", long_prompt, "say red"],
            "response": ["red", " ".join(["blue"] * 40), "red", ""],
        }
    )
    examples, stats = format_rows(frame, tokenizer, max_seq_len=32)
    assert [e.row_id for e in examples] == ["ok", "long_response"]
    assert all(len(e.input_ids) <= 32 for e in examples)
    assert stats.truncated == 2
    assert stats.dropped == {"no_target_tokens_after_truncation": 1, "no_assistant_turn": 1}
    assert stats.as_dict()["used"] == 2


def test_version_without_train_split_is_refused() -> None:
    frame = pair_frame(4, 2).with_columns(pl.lit("val").alias("split"))
    with pytest.raises(InputError, match="no `train` rows.*splits present: \\['val'\\]"):
        split_rows(frame, "train", what="data 'ds-x'")


def test_frame_without_content_columns_is_refused(tokenizer) -> None:
    with pytest.raises(InputError, match="needs `messages`"):
        format_rows(pl.DataFrame({"id": ["a"], "instruction": ["x"]}), tokenizer, max_seq_len=32)


def test_missing_chat_template_says_how_to_fix(tokenizer) -> None:
    original, tokenizer.chat_template = tokenizer.chat_template, None
    try:
        with pytest.raises(InputError, match="chat_template"):
            format_rows(pair_frame(1, 0), tokenizer, max_seq_len=32)
    finally:
        tokenizer.chat_template = original
