"""Rows for checks: eval files read like curation inputs, and rows turned into prompts and references.

A row is a prompt with its reference answer when it has `prompt` + `response` or `messages` ending
in an assistant turn; the prompt is rendered with the model's chat template exactly as training
rendered it (`assay.train.formatting.render`), so the model is asked in the format it learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from assay.errors import InputError
from assay.schema import ID, MESSAGES, PROMPT, RESPONSE, SOURCE, SOURCE_LINE, TEXT


@dataclass(frozen=True)
class Item:
    """One prompt with its reference, traceable to its row."""

    id: str
    messages: list[dict[str, str]]  # the conversation up to (not including) the answer
    reference: str
    source: str | None = None
    source_line: int | None = None
    category: str | None = None


def read_eval_file(path: Path) -> pl.DataFrame:
    """An eval file in any shape `assay curate` reads, as canonical rows; a malformed line is an error."""
    from assay.curate.ids import assign_ids
    from assay.curate.readers import ReadConfig, expand_inputs, read_chunks

    frames, bad = [], []
    for f in expand_inputs([str(path)]):
        for chunk in read_chunks(f, ReadConfig()):
            frames.append(chunk.rows)
            bad.append(chunk.quarantine)
    quarantine = pl.concat(bad, how="diagonal_relaxed") if bad else pl.DataFrame()
    if quarantine.height:
        first = quarantine.row(0, named=True)
        raise InputError(f"{path}:{first['source_line']}: {first['error']} ({quarantine.height} bad line(s) in the file)",
                         hint="fix the line: eval files need prompt/response, messages, question/answer or text columns")
    rows = pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()
    if rows.height == 0:
        raise InputError(f"{path}: no rows", hint="an eval file needs at least one row")
    return assign_ids(rows)


def items(frame: pl.DataFrame, *, category_column: str | None = None, limit: int | None = None) -> list[Item]:
    """Prompt/reference items of the frame's rows (rows with nothing to answer are left out)."""
    out: list[Item] = []
    for row in frame.iter_rows(named=True):
        item = _item(row, category_column)
        if item is not None:
            out.append(item)
        if limit is not None and len(out) >= limit:
            break
    return out


def _item(row: dict[str, Any], category_column: str | None) -> Item | None:
    messages, reference = split_answer(row)
    if messages is None or reference is None:
        return None
    category = str(row[category_column]) if category_column and row.get(category_column) is not None else None
    return Item(str(row.get(ID)), messages, reference, row.get(SOURCE), row.get(SOURCE_LINE), category)


def split_answer(row: dict[str, Any]) -> tuple[list[dict[str, str]] | None, str | None]:
    if row.get(MESSAGES):
        turns = [{"role": m["role"], "content": m.get("content") or ""} for m in row[MESSAGES]]
        last = max((i for i, t in enumerate(turns) if t["role"] == "assistant"), default=None)
        if last is None or last == 0:
            return None, None
        return turns[:last], turns[last]["content"]
    if row.get(PROMPT) is not None and row.get(RESPONSE):
        return [{"role": "user", "content": str(row[PROMPT])}], str(row[RESPONSE])
    return None, None


def prompt_text(tokenizer: Any, item: Item | list[dict[str, str]]) -> str:
    """The prompt as the model saw prompts in training: its chat template with the generation prompt."""
    from assay.train.formatting import render

    return render(tokenizer, item.messages if isinstance(item, Item) else item, generation_prompt=True)


def full_text(tokenizer: Any, row: dict[str, Any]) -> str | None:
    """A training row as the model read it: the rendered conversation, or the plain text."""
    from assay.train.formatting import render

    if row.get(TEXT):
        return str(row[TEXT])
    messages, reference = split_answer(row)
    if messages is None or reference is None:
        return None
    return render(tokenizer, [*messages, {"role": "assistant", "content": reference}])
