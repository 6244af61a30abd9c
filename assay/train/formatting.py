"""Rows to token ids and loss labels.

Chat rows (`messages`, or `prompt` + `response` turned into a user/assistant pair) go through the
tokenizer's chat template, and only assistant turns carry loss. The assistant spans are found in the
rendered *text*, not by comparing token lists: for each assistant turn we render the conversation up
to that turn with the generation prompt, and up to the end of the turn; both must be prefixes of the
full rendering, and the characters between them are the turn. Token offsets then say which tokens
fall inside. This survives BPE merges across turn boundaries, which token-prefix comparison does not.
`text` rows carry loss on every token. The first token of every example never carries loss (nothing
precedes it), which also keeps packed examples from predicting across their boundary.

    examples, stats = format_rows(frame, tokenizer, max_seq_len=1024)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from jinja2 import TemplateError

from assay.errors import InputError
from assay.schema import ID, MESSAGES, PROMPT, RESPONSE, SPLIT, TEXT

IGNORE = -100


@dataclass(frozen=True)
class Example:
    """One training example: token ids and labels of equal length (IGNORE where no loss)."""

    row_id: str
    input_ids: list[int]
    labels: list[int]

    @property
    def target_tokens(self) -> int:
        return sum(1 for label in self.labels if label != IGNORE)


@dataclass
class FormatStats:
    """What happened to each row on its way to an example; nothing is dropped without a count."""

    rows: int = 0
    used: int = 0
    truncated: int = 0
    tokens: int = 0
    target_tokens: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    skipped_turns: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "used": self.used,
            "truncated": self.truncated,
            "dropped": dict(self.dropped),
            "skipped_assistant_turns": self.skipped_turns,
            "tokens": self.tokens,
            "target_tokens": self.target_tokens,
        }


def content_shape(frame: pl.DataFrame) -> str:
    """Which canonical content the frame holds: "messages", "prompt_response" or "text"."""
    if MESSAGES in frame.columns:
        return "messages"
    if PROMPT in frame.columns and RESPONSE in frame.columns:
        return "prompt_response"
    if TEXT in frame.columns:
        return "text"
    raise InputError(
        f"no trainable content: the data has columns {sorted(frame.columns)} but needs `messages`, "
        "`prompt` + `response`, or `text`",
        hint="curate the data with a `columns` mapping onto the canonical schema (DESIGN §4)",
    )


def split_rows(frame: pl.DataFrame, split: str, *, what: str) -> pl.DataFrame:
    """The rows of one split; a frame without a `split` column counts as all-train."""
    if SPLIT not in frame.columns:
        return frame if split == "train" else frame.clear()
    rows = frame.filter(pl.col(SPLIT) == split)
    if split == "train" and rows.is_empty():
        splits = sorted(str(s) for s in frame.get_column(SPLIT).unique().to_list())
        raise InputError(
            f"{what} has no `train` rows (splits present: {splits or 'none'})",
            hint="curate it with a train/val/test split, or pick another dataset version",
        )
    return rows


def format_rows(frame: pl.DataFrame, tokenizer: Any, *, max_seq_len: int) -> tuple[list[Example], FormatStats]:
    """Every row of `frame` as an Example (or a counted reason why not)."""
    shape, stats, examples = content_shape(frame), FormatStats(rows=frame.height), []
    ids = frame.get_column(ID).cast(pl.String).to_list() if ID in frame.columns else [str(i) for i in range(frame.height)]
    for row_id, row in zip(ids, frame.iter_rows(named=True), strict=True):
        example = _format_row(row, row_id, shape, tokenizer, stats)
        if example is None:
            continue
        example = _truncate(example, max_seq_len, stats)
        if example.target_tokens == 0:
            stats.dropped["no_target_tokens_after_truncation" if len(example.input_ids) == max_seq_len else "no_target_tokens"] += 1
            continue
        stats.used += 1
        stats.tokens += len(example.input_ids)
        stats.target_tokens += example.target_tokens
        examples.append(example)
    return examples, stats


def _format_row(row: dict[str, Any], row_id: str, shape: str, tokenizer: Any, stats: FormatStats) -> Example | None:
    if shape == "text":
        text = row.get(TEXT)
        if not text or not str(text).strip():
            stats.dropped["empty_text"] += 1
            return None
        return text_example(row_id, str(text), tokenizer)
    messages = row.get(MESSAGES) if shape == "messages" else _pair(row)
    if not messages or not any(m.get("role") == "assistant" and m.get("content") for m in messages):
        stats.dropped["no_assistant_turn"] += 1
        return None
    try:
        example, skipped = chat_example(row_id, messages, tokenizer)
    except TemplateError:
        stats.dropped["chat_template_error"] += 1
        return None
    stats.skipped_turns += skipped
    return example


def _pair(row: dict[str, Any]) -> list[dict[str, str]] | None:
    prompt, response = row.get(PROMPT), row.get(RESPONSE)
    if prompt is None or not response:
        return None
    return [{"role": "user", "content": str(prompt)}, {"role": "assistant", "content": str(response)}]


def text_example(row_id: str, text: str, tokenizer: Any) -> Example:
    """Plain text with loss on every token after the first, closed with EOS so documents end."""
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    if tokenizer.eos_token_id is not None and (not ids or ids[-1] != tokenizer.eos_token_id):
        ids.append(tokenizer.eos_token_id)
    return Example(row_id, ids, [IGNORE, *ids[1:]])


def chat_example(row_id: str, messages: list[dict[str, Any]], tokenizer: Any) -> tuple[Example, int]:
    """A conversation with loss on assistant turns only; returns the example and the turns skipped.

    A turn is skipped (and counted) when the template renders earlier turns differently once later
    turns exist (some templates strip reasoning from past turns), since its span is then unknowable.
    """
    messages = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
    full = render(tokenizer, messages)
    spans, skipped = assistant_spans(tokenizer, messages, full)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
    labels = [tok if _inside(start, spans) else IGNORE for tok, (start, _end) in zip(ids, offsets, strict=True)]
    if labels:
        labels[0] = IGNORE
    return Example(row_id, ids, labels), skipped


def assistant_spans(tokenizer: Any, messages: list[dict[str, Any]], full: str) -> tuple[list[tuple[int, int]], int]:
    """Character spans of the assistant turns in the full rendering (prefix-rendering method)."""
    spans, skipped = [], 0
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        try:
            before = render(tokenizer, messages[:index], generation_prompt=True)
            through = render(tokenizer, messages[: index + 1])
        except TemplateError:
            skipped += 1
            continue
        if full.startswith(before) and full.startswith(through) and len(through) > len(before):
            spans.append((len(before), len(through)))
        else:
            skipped += 1
    return spans, skipped


def render(tokenizer: Any, messages: list[dict[str, Any]], *, generation_prompt: bool = False) -> str:
    """The chat template's text for these messages, or an error saying how to supply a template."""
    if not tokenizer.chat_template:
        raise InputError(
            "the base model's tokenizer has no chat template, so chat rows cannot be formatted",
            hint="set `chat_template` in the training config, or train on `text` rows",
        )
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def _inside(start: int, spans: list[tuple[int, int]]) -> bool:
    return any(lo <= start < hi for lo, hi in spans)


def _truncate(example: Example, max_len: int, stats: FormatStats) -> Example:
    if len(example.input_ids) <= max_len:
        return example
    stats.truncated += 1
    return Example(example.row_id, example.input_ids[:max_len], example.labels[:max_len])
