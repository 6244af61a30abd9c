"""Which user columns feed the canonical content columns and the input split.

The mapping is decided once per file, from the columns of its first chunk, or from
`ReadConfig.columns`; every other column is carried through unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from assay import schema as S
from assay.curate.readers.config import CONTENT_KEYS
from assay.curate.readers.formats import InputFile
from assay.curate.readers.quarantine import ERR, LINE
from assay.errors import InputError

# User columns with these names would clash with columns assay owns; they are carried as `orig_<name>`.
RESERVED_COLUMNS = frozenset({S.ID, S.SOURCE, S.SOURCE_LINE, S.SPLIT, S.DUP_CLUSTER, *CONTENT_KEYS})

# ShareGPT speaker names -> chat roles; unknown speakers are kept, lowercased.
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "system": "system",
}


@dataclass(frozen=True)
class Mapping:
    """Which user columns feed which canonical content columns, and which holds the input split."""

    fields: dict[str, str]  # canonical -> user column
    extra_input: str | None = None  # Alpaca `input` / Dolly `context`, appended to the prompt
    split: str | None = None  # user column with each row's train/val/test split

    @property
    def sources(self) -> set[str]:
        """The user columns content is read from."""
        return set(self.fields.values()) | ({self.extra_input} if self.extra_input else set())

    @property
    def consumed(self) -> set[str]:
        """The user columns that become canonical columns (and so are not carried through)."""
        return self.sources | ({self.split} if self.split else set())


AUTO_SHAPES: tuple[tuple[dict[str, str], str | None], ...] = (
    ({S.MESSAGES: "messages"}, None),
    ({S.MESSAGES: "conversations"}, None),
    ({S.PROMPT: "instruction", S.RESPONSE: "output"}, "input"),
    ({S.PROMPT: "instruction", S.RESPONSE: "response"}, "context"),
    ({S.PROMPT: "prompt", S.RESPONSE: "completion"}, None),
    ({S.PROMPT: "prompt", S.RESPONSE: "response"}, None),
    ({S.PROMPT: "question", S.RESPONSE: "answer"}, None),
    ({S.TEXT: "text"}, None),
)


def resolve_mapping(columns: Sequence[str], configured: dict[str, str], f: InputFile) -> Mapping:
    """Pick the mapping: the configured columns win, else the first known shape; `split` by name."""
    found = [c for c in columns if c != LINE]
    content = {k: v for k, v in configured.items() if k != S.SPLIT}
    mapping = _configured_mapping(found, content, f) if content else _auto_mapping(found, f)
    split = _split_column(found, configured.get(S.SPLIT), mapping, f)
    return Mapping(mapping.fields, mapping.extra_input, split)


def _auto_mapping(found: list[str], f: InputFile) -> Mapping:
    for fields, extra in AUTO_SHAPES:
        if set(fields.values()) <= set(found):
            return Mapping(fields, extra if extra in found else None)
    example = (found + ["<column>", "<column>"])[:2]
    raise InputError(
        f"no content columns in {f.path} (found: {', '.join(found) or 'none'})",
        hint=f'set [curate.read] columns = {{ prompt = "{example[0]}", response = "{example[1]}" }} '
        'in assay.toml (or messages = "..." for chat, text = "..." for raw text)',
    )


def _configured_mapping(found: list[str], configured: dict[str, str], f: InputFile) -> Mapping:
    keys = configured.keys()
    shape = [S.PROMPT, S.RESPONSE] if keys & {S.PROMPT, S.RESPONSE} else list(keys)
    fields = {key: configured.get(key, key) for key in shape}
    for key, column in fields.items():
        _require(found, column, key, f)
    return Mapping(fields)


def _split_column(found: list[str], configured: str | None, content: Mapping, f: InputFile) -> str | None:
    """The configured split column (it must exist), else a column named `split` not used as content."""
    if configured:
        _require(found, configured, S.SPLIT, f)
        return configured
    return S.SPLIT if S.SPLIT in found and S.SPLIT not in content.sources else None


def _require(found: list[str], column: str, key: str, f: InputFile) -> None:
    if column not in found:
        raise InputError(
            f"column `{column}` (columns.{key}) not found in {f.path} (found: {', '.join(found) or 'none'})",
            hint=f"set [curate.read] columns.{key} to one of the columns found in assay.toml",
        )


def carried(columns: Sequence[str], m: Mapping) -> list[pl.Expr]:
    """User columns not mapped onto canonical ones, unchanged; clashing names become `orig_<name>`."""
    out = []
    for column in columns:
        if column in (LINE, ERR) or column in m.consumed:
            continue
        name = f"orig_{column}" if column in RESERVED_COLUMNS else column
        out.append(pl.col(column).alias(name))
    return out
