"""Input splits: the train/val/test a row already belongs to when it is read.

Inputs name splits in three ways: a Hugging Face DatasetDict's split names, a `split` column
(or the column `columns.split` names), or one file per split (`train.jsonl` + `test.jsonl`).
Every name is normalised to train, val or test; the `split` step keeps them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from assay import schema as S
from assay.errors import InputError

SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "eval": "val",
    "test": "test",
    "testing": "test",
}

# A shard of a split, as the Hugging Face hub names them: train-00000-of-00002, test_1
_SHARD = re.compile(r"^(?P<name>[a-z]+)(?:[-_.]\d.*)?$")
_SHOWN_VALUES = 10


def split_name(name: str) -> str | None:
    """The canonical split for a name (`Validation` -> `val`), or None when it names no split."""
    return SPLIT_ALIASES.get(name.strip().lower())


def named_split(names: Iterable[str]) -> str | None:
    """The split the first name that names one stands for; shard names (`train-00000-of-00002`) count."""
    for name in names:
        match = _SHARD.match(name.strip().lower())
        if match and (split := SPLIT_ALIASES.get(match["name"])):
            return split
    return None


def dataset_dict_split(folder: Path, name: str) -> str:
    """The canonical split of a DatasetDict split; a name that is not train/val/test is an error."""
    split = split_name(name)
    if split is None:
        raise InputError(
            f"{folder / name} is split `{name}` of a Hugging Face DatasetDict, which is not train, val or test "
            f"(known names: {', '.join(SPLIT_ALIASES)})",
            hint=f"pass the splits you want as folders (e.g. {folder / name}, read as rows without a split), "
            "or rename the split when you save the DatasetDict",
        )
    return split


def split_values(df: pl.DataFrame, column: str, path: Path) -> pl.Series:
    """The canonical input split per row from a user column; empty and null cells have none.

    Any other value is an error that names the file, the column and the values.
    """
    raw = _as_text(df, column, path)
    cleaned = raw.str.strip_chars()
    cleaned = pl.when(cleaned != "").then(cleaned)
    frame = df.select(cleaned.alias("raw"))
    canonical = frame.get_column("raw").str.to_lowercase().replace_strict(SPLIT_ALIASES, default=None)
    unexpected = frame.get_column("raw").filter(canonical.is_null() & frame.get_column("raw").is_not_null())
    if unexpected.len():
        raise _unexpected_values(column, path, sorted(set(unexpected.to_list())))
    return canonical.alias(S.SPLIT).cast(pl.String)


def _as_text(df: pl.DataFrame, column: str, path: Path) -> pl.Expr:
    dtype = df.schema[column]
    if dtype == pl.String or dtype == pl.Null or isinstance(dtype, pl.Categorical | pl.Enum):
        return pl.col(column).cast(pl.String)
    if dtype.is_numeric() or dtype == pl.Boolean:
        return pl.col(column).cast(pl.String)
    raise _unexpected_values(column, path, [f"values of type {dtype}"])


def _unexpected_values(column: str, path: Path, values: list[str]) -> InputError:
    shown = ", ".join(values[:_SHOWN_VALUES]) + (", …" if len(values) > _SHOWN_VALUES else "")
    return InputError(
        f"column `{column}` in {path} has values other than train/val/test: {shown}",
        hint=f"if `{column}` is not the rows' train/val/test split, rename it in your data (it is then carried "
        'through unchanged) or set [curate.read] columns.split = "<column>" to a column that is; '
        f"accepted names: {', '.join(SPLIT_ALIASES)}",
    )
