"""Input readers: turn users' files into chunks of canonical rows, and bad lines into quarantine.

Readers stream (bounded memory, except JSON array files, which are one document and load whole),
keep the physical line of every row for lineage, and never lose a row: a line that cannot be
parsed, or a row whose content field is unusable, goes to a quarantine frame with its line number,
a readable message and the raw text.

The content shape (messages, prompt/response or text) is decided once per file, from the columns
of its first chunk (or from `ReadConfig.columns`); mapped user columns are replaced by the
canonical ones and every other column is carried through unchanged.

    >>> files = expand_inputs(["data/"])
    >>> for chunk in read_chunks(files[0], ReadConfig(columns={"prompt": "instruction"})):
    ...     chunk.rows, chunk.quarantine
"""

from __future__ import annotations

import csv
import glob
import gzip
import hashlib
import json
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay import schema as S
from assay.errors import InputError

# Longest first, so ".jsonl.gz" wins over ".gz"-less matches.
SUPPORTED_EXTENSIONS: dict[str, str] = {
    ".jsonl.gz": "jsonl",
    ".json.gz": "json",
    ".parquet": "parquet",
    ".ndjson": "jsonl",
    ".jsonl": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "tsv",
}

CONTENT_KEYS = (S.PROMPT, S.RESPONSE, S.MESSAGES, S.TEXT)

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

_LINE, _ERR = "__assay_line", "__assay_error"  # working columns; never reach the caller
_BOM = b"\xef\xbb\xbf"
_HASH_BLOCK = 1 << 20


# --------------------------------------------------------------------------- public types


class ReadConfig(BaseModel):
    """How to read input files (`[curate.read]` in assay.toml)."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Canonical content column -> column in your files, e.g. "
            '{prompt = "instruction", response = "output"}. Keys: prompt, response, messages, text. '
            "Empty: recognise messages, conversations (ShareGPT), instruction/input/output (Alpaca), "
            "instruction/context/response (Dolly), prompt/completion, prompt/response, "
            "question/answer and text by name."
        ),
    )
    chunk_rows: int = Field(
        100_000, ge=1, description="Rows (including quarantined lines) per chunk; bounds memory."
    )
    chunk_bytes: int = Field(
        64 * 2**20,
        ge=1,
        description="A JSON Lines chunk also ends once its lines reach this many bytes (long rows).",
    )
    csv_delimiter: str | None = Field(
        None,
        min_length=1,
        max_length=1,
        description='Field delimiter for CSV/TSV files; empty: "," for .csv and a tab for .tsv.',
    )

    @field_validator("columns")
    @classmethod
    def _check_columns(cls, value: dict[str, str]) -> dict[str, str]:
        """Reject unknown keys and mixed shapes up front, naming the offending key."""
        for key, column in value.items():
            if key not in CONTENT_KEYS:
                raise ValueError(f"unknown key `{key}` in columns (allowed: {', '.join(CONTENT_KEYS)})")
            if not column:
                raise ValueError(f"columns.{key} is empty; name a column of your files")
        shapes = [s for s in ({S.PROMPT, S.RESPONSE}, {S.MESSAGES}, {S.TEXT}) if s & value.keys()]
        if len(shapes) > 1:
            raise ValueError(
                f"columns mixes content shapes ({', '.join(sorted(value))}); "
                "use prompt/response, or messages, or text"
            )
        return value


@dataclass(frozen=True)
class InputFile:
    """One input: a file, or one split of a Hugging Face `save_to_disk` folder.

    `source` is the stable name written into rows' `source` column (see `expand_inputs`).
    """

    path: Path
    source: str
    format: str  # "jsonl" | "json" | "csv" | "tsv" | "parquet" | "hf"


@dataclass
class Chunk:
    """Rows read from one block of a file, and the lines of that block that could not be used."""

    rows: pl.DataFrame
    quarantine: pl.DataFrame


# --------------------------------------------------------------------------- expanding inputs


def expand_inputs(inputs: Sequence[str | Path]) -> list[InputFile]:
    """Resolve files, folders and glob patterns into a sorted, de-duplicated list of inputs.

    Folders are searched recursively (hidden entries skipped); a folder written by
    `datasets.save_to_disk` is one input, or one per split for a DatasetDict.

    >>> expand_inputs(["data/train.jsonl", "more/", "extra/*.csv"])
    """
    if not inputs:
        raise InputError("no inputs given", hint="pass files, folders or glob patterns")
    found: list[InputFile] = []
    for item in inputs:
        found.extend(_expand_one(str(item)))
    return _dedupe(found)


def _expand_one(item: str) -> list[InputFile]:
    path = Path(item)
    if path.is_dir():
        return _expand_dir(path)
    if path.exists():
        return [_file_input(path)]
    if glob.has_magic(item):
        return _expand_glob(item)
    raise InputError(f"{item} does not exist", hint="check the path, or quote a glob pattern")


def _file_input(path: Path) -> InputFile:
    fmt = _format_of(path)
    if fmt is None:
        raise InputError(f"unsupported file type: {path}", hint=f"supported extensions: {_supported_list()}")
    return InputFile(path, f"{path.resolve().parent.name}/{path.name}", fmt)


def _expand_glob(pattern: str) -> list[InputFile]:
    matches = sorted(glob.glob(pattern, recursive=True))
    if not matches:
        raise InputError(f"no files match {pattern}", hint="check the pattern and the current directory")
    found: list[InputFile] = []
    for match in map(Path, matches):
        if match.is_dir():
            found.extend(_expand_dir(match))
        elif _format_of(match):
            found.append(_file_input(match))
    if not found:
        raise InputError(
            f"{pattern} matches no supported files", hint=f"supported extensions: {_supported_list()}"
        )
    return found


def _expand_dir(folder: Path) -> list[InputFile]:
    name = folder.resolve().name
    hf = _hf_inputs(folder, f"{folder.resolve().parent.name}/{name}", name)
    if hf is not None:
        return hf
    found = _scan_dir(folder, folder, name)
    if not found:
        raise InputError(f"no supported files in {folder}", hint=f"supported extensions: {_supported_list()}")
    return found


def _scan_dir(root: Path, folder: Path, root_name: str) -> list[InputFile]:
    """Walk `folder` in sorted order; a Hugging Face dataset folder is a leaf."""
    found: list[InputFile] = []
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        rel = f"{root_name}/{entry.relative_to(root).as_posix()}"
        if entry.is_dir():
            hf = _hf_inputs(entry, rel, rel)
            found.extend(hf if hf is not None else _scan_dir(root, entry, root_name))
        elif fmt := _format_of(entry):
            found.append(InputFile(entry, rel, fmt))
    return found


def _hf_inputs(folder: Path, dataset_source: str, dict_prefix: str) -> list[InputFile] | None:
    """Inputs for a `save_to_disk` folder, or None when `folder` is not one."""
    dict_file = folder / "dataset_dict.json"
    if dict_file.is_file():
        splits = _read_json_file(dict_file).get("splits", [])
        missing = [s for s in splits if not (folder / s).is_dir()]
        if missing or not splits:
            raise InputError(f"{folder} is an incomplete Hugging Face DatasetDict (splits: {splits})")
        return [InputFile(folder / s, f"{dict_prefix}/{s}", "hf") for s in splits]
    if (folder / "state.json").is_file() and any(folder.glob("*.arrow")):
        return [InputFile(folder, dataset_source, "hf")]
    return None


def _dedupe(found: list[InputFile]) -> list[InputFile]:
    """Drop repeats of the same path; refuse two paths that would share a source name."""
    by_path: dict[Path, InputFile] = {}
    for f in found:
        by_path.setdefault(f.path.resolve(), f)
    by_source: dict[str, InputFile] = {}
    for f in by_path.values():
        other = by_source.setdefault(f.source, f)
        if other is not f:
            raise InputError(
                f"{other.path} and {f.path} would both be named {f.source} in the `source` column",
                hint="pass their common parent folder instead, so the names differ",
            )
    return list(by_path.values())


def _format_of(path: Path) -> str | None:
    name = path.name.lower()
    return next((fmt for ext, fmt in SUPPORTED_EXTENSIONS.items() if name.endswith(ext)), None)


def _supported_list() -> str:
    return ", ".join(sorted(SUPPORTED_EXTENSIONS))


def _read_json_file(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc


# --------------------------------------------------------------------------- fingerprints


def file_fingerprint(f: InputFile) -> dict[str, Any]:
    """Size and SHA-256 of an input, streamed, for the version manifest.

    A file hashes to `sha256sum`'s value. A folder (Hugging Face split) hashes every file
    under it in sorted order, each preceded by its relative path and a NUL byte.
    """
    digest, total = hashlib.sha256(), 0
    files = sorted(p for p in f.path.rglob("*") if p.is_file()) if f.path.is_dir() else [f.path]
    try:
        for path in files:
            if f.path.is_dir():
                digest.update(path.relative_to(f.path).as_posix().encode() + b"\0")
            total += _hash_into(digest, path)
    except OSError as exc:
        raise InputError(f"cannot read {f.path}: {exc.strerror or exc}") from exc
    return {
        "path": str(f.path),
        "source": f.source,
        "format": f.format,
        "bytes": total,
        "sha256": digest.hexdigest(),
    }


def _hash_into(digest: Any, path: Path) -> int:
    size = 0
    with open(path, "rb") as fh:
        while block := fh.read(_HASH_BLOCK):
            digest.update(block)
            size += len(block)
    return size


# --------------------------------------------------------------------------- reading


def read_chunks(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    """Yield chunks of at most `cfg.chunk_rows` rows+quarantined lines from one input.

    Raises InputError for files that cannot be used at all (empty, unreadable, malformed JSON
    document, no recognisable content columns); everything row-level goes to quarantine.
    """
    reader = _READERS[f.format]
    try:
        yield from reader(f, cfg)
    except (OSError, EOFError, zlib.error, pa.ArrowException) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(
            f"cannot read {f.path}: {reason}", hint="check the file and its permissions"
        ) from exc


def _empty_error(f: InputFile) -> InputError:
    return InputError(f"{f.path} has no rows", hint="remove the file from the inputs or fill it")


@dataclass
class _FileCtx:
    """Per-file state: the content mapping is decided once, from the first rows parsed."""

    file: InputFile
    cfg: ReadConfig
    mapping: _Mapping | None = None

    def mapping_for(self, columns: Sequence[str]) -> _Mapping:
        if self.mapping is None:
            self.mapping = _resolve_mapping(columns, self.cfg.columns, self.file)
        return self.mapping


@dataclass(frozen=True)
class _Bad:
    line: int
    error: str
    raw: bytes | str


# --------------------------------------------------------------------------- content mapping


@dataclass(frozen=True)
class _Mapping:
    """Which user columns feed which canonical content columns."""

    fields: dict[str, str]  # canonical -> user column
    extra_input: str | None = None  # Alpaca `input` / Dolly `context`, appended to the prompt

    @property
    def sources(self) -> set[str]:
        return set(self.fields.values()) | ({self.extra_input} if self.extra_input else set())


_AUTO_SHAPES: tuple[tuple[dict[str, str], str | None], ...] = (
    ({S.MESSAGES: "messages"}, None),
    ({S.MESSAGES: "conversations"}, None),
    ({S.PROMPT: "instruction", S.RESPONSE: "output"}, "input"),
    ({S.PROMPT: "instruction", S.RESPONSE: "response"}, "context"),
    ({S.PROMPT: "prompt", S.RESPONSE: "completion"}, None),
    ({S.PROMPT: "prompt", S.RESPONSE: "response"}, None),
    ({S.PROMPT: "question", S.RESPONSE: "answer"}, None),
    ({S.TEXT: "text"}, None),
)


def _resolve_mapping(columns: Sequence[str], configured: dict[str, str], f: InputFile) -> _Mapping:
    """Pick the content mapping: the configured columns win, else the first known shape."""
    found = [c for c in columns if c != _LINE]
    if configured:
        return _configured_mapping(found, configured, f)
    for fields, extra in _AUTO_SHAPES:
        if set(fields.values()) <= set(found):
            return _Mapping(fields, extra if extra in found else None)
    example = (found + ["<column>", "<column>"])[:2]
    raise InputError(
        f"no content columns in {f.path} (found: {', '.join(found) or 'none'})",
        hint=f'set [curate.read] columns = {{ prompt = "{example[0]}", response = "{example[1]}" }} '
        'in assay.toml (or messages = "..." for chat, text = "..." for raw text)',
    )


def _configured_mapping(found: list[str], configured: dict[str, str], f: InputFile) -> _Mapping:
    keys = configured.keys()
    shape = [S.PROMPT, S.RESPONSE] if keys & {S.PROMPT, S.RESPONSE} else list(keys)
    fields = {key: configured.get(key, key) for key in shape}
    for key, column in fields.items():
        if column not in found:
            raise InputError(
                f"column `{column}` (columns.{key}) not found in {f.path} "
                f"(found: {', '.join(found) or 'none'})",
                hint=f"set [curate.read] columns.{key} to one of the columns found in assay.toml",
            )
    return _Mapping(fields)


def _label(column: str, canonical: str) -> str:
    return f"`{column}`" if column == canonical else f"`{column}` ({canonical})"


def _missing(column: str, canonical: str) -> str:
    return f"field {_label(column, canonical)} is missing or null"


def _not_text(column: str, canonical: str, found: str) -> str:
    return f"field {_label(column, canonical)} is not text (found {found})"


def _text_exprs(
    schema: pl.Schema, column: str, canonical: str, *, required: bool = True
) -> tuple[pl.Expr, pl.Expr]:
    """(value, error) for a text field: strings as is, numbers cast, anything else an error."""
    null = pl.lit(None, pl.String)
    dtype = schema.get(column)
    type_error: pl.Expr = null
    if dtype is None or dtype == pl.Null:
        value = null
    elif dtype == pl.String:
        value = pl.col(column)
    elif dtype.is_numeric() or isinstance(dtype, pl.Categorical | pl.Enum):
        value = pl.col(column).cast(pl.String)
    else:
        value = null
        message = _not_text(column, canonical, _dtype_kind(dtype))
        type_error = pl.when(pl.col(column).is_not_null()).then(pl.lit(message))
    missing = pl.when(value.is_null()).then(pl.lit(_missing(column, canonical))) if required else null
    return value, pl.coalesce(type_error, missing)


def _messages_exprs(schema: pl.Schema, column: str) -> tuple[pl.Expr, pl.Expr]:
    """(value, error) for a chat column: a list of {role, content} or ShareGPT {from, value}."""
    dtype = schema.get(column)
    label = _label(column, S.MESSAGES)
    null = pl.lit(None, S.MESSAGE_DTYPE)
    if dtype is None or dtype == pl.Null:
        return null, pl.lit(_missing(column, S.MESSAGES))
    keys = _message_keys(dtype)
    is_list = isinstance(dtype, pl.List)
    if keys is not None:
        role, content, problem = _message_parts(dtype, keys, label)
        value = pl.col(column).list.eval(pl.struct(role.alias("role"), content.alias("content")))
        has_null = pl.col(column).list.eval(role.is_null() | content.is_null()).list.any()
    else:
        value, null_items = null, is_list and dtype.inner == pl.Null  # type: ignore[union-attr]
        has_null = pl.lit(null_items)
        found = _dtype_kind(dtype)
        problem = (
            None
            if null_items
            else f"field {label} is not a list of {{role, content}} messages (found {found})"
        )
    null_message = f"field {label} has a message with a null role or content"
    problem_expr = pl.lit(problem) if problem else pl.when(has_null).then(pl.lit(null_message))
    error = (
        pl.when(pl.col(column).is_null())
        .then(pl.lit(_missing(column, S.MESSAGES)))
        .when(pl.col(column).list.len() == 0 if is_list else pl.lit(False))
        .then(pl.lit(f"field {label} is empty"))
        .otherwise(problem_expr)
    )
    return value, error


def _message_keys(dtype: pl.DataType) -> tuple[str, str] | None:
    """The (role, content) struct keys of a chat column, or None when it is not one."""
    if not (isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct)):
        return None
    names = {f.name for f in dtype.inner.fields}
    for keys in (("role", "content"), ("from", "value")):
        if set(keys) <= names:
            return keys
    return None


def _message_parts(dtype: pl.List, keys: tuple[str, str], label: str) -> tuple[pl.Expr, pl.Expr, str | None]:
    """Element expressions for role and content, and an error when content is not text."""
    inner = {f.name: f.dtype for f in dtype.inner.fields}  # type: ignore[union-attr]
    role = _element_text(keys[0], inner[keys[0]])
    content = _element_text(keys[1], inner[keys[1]])
    if keys[0] == "from":
        role = role.str.to_lowercase().replace(SHAREGPT_ROLES)
    error = None
    for key in keys:
        if not _is_textual(inner[key]):
            error = f"field {label} has a message whose {key} is not text (found {_dtype_kind(inner[key])})"
    return role, content, error


def _element_text(key: str, dtype: pl.DataType) -> pl.Expr:
    part = pl.element().struct.field(key)
    return part.cast(pl.String) if _is_textual(dtype) else pl.lit(None, pl.String)


def _is_textual(dtype: pl.DataType) -> bool:
    return dtype == pl.String or dtype == pl.Null or dtype.is_numeric()


def _dtype_kind(dtype: pl.DataType) -> str:
    if isinstance(dtype, pl.Struct):
        return "object"
    if isinstance(dtype, pl.List | pl.Array):
        return "array"
    if dtype == pl.Boolean:
        return "boolean"
    return str(dtype)


def _content_exprs(schema: pl.Schema, m: _Mapping) -> tuple[dict[str, pl.Expr], list[pl.Expr]]:
    """Canonical value expressions and per-row error expressions for one mapping."""
    values: dict[str, pl.Expr] = {}
    errors: list[pl.Expr] = []
    for canonical, column in m.fields.items():
        if canonical == S.MESSAGES:
            values[canonical], error = _messages_exprs(schema, column)
        else:
            values[canonical], error = _text_exprs(schema, column, canonical)
        errors.append(error)
    if m.extra_input:
        extra, extra_error = _text_exprs(schema, m.extra_input, S.PROMPT, required=False)
        prompt = values[S.PROMPT]
        filled = extra.is_not_null() & (extra.str.strip_chars() != "")
        values[S.PROMPT] = pl.when(filled).then(prompt + "\n\n" + extra).otherwise(prompt)
        errors.append(extra_error)
    return values, errors


def _carried(columns: Sequence[str], m: _Mapping) -> list[pl.Expr]:
    """User columns not used for content, unchanged; clashing names become `orig_<name>`."""
    out = []
    for column in columns:
        if column in (_LINE, _ERR) or column in m.sources:
            continue
        name = f"orig_{column}" if column in RESERVED_COLUMNS else column
        out.append(pl.col(column).alias(name))
    return out


def _parse_message_strings(df: pl.DataFrame, m: _Mapping) -> pl.DataFrame:
    """A chat column stored as JSON text (CSV, some parquet) is parsed row by row."""
    column = m.fields.get(S.MESSAGES)
    if column is None or df.schema.get(column) != pl.String:
        return df
    values, errors = [], []
    for text in df.get_column(column).to_list():
        value, error = _message_from_text(text, column)
        values.append(value)
        errors.append(error)
    return _with_errors(df.with_columns(pl.Series(column, values, dtype=S.MESSAGE_DTYPE)), errors)


def _message_from_text(text: str | None, column: str) -> tuple[list[dict[str, str]] | None, str | None]:
    if text is None:
        return None, None  # reported as missing by the vectorised check
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return None, f"field {_label(column, S.MESSAGES)} is not valid JSON: {exc.msg} at column {exc.colno}"
    error = _py_messages_error(value, column)
    return (None, error) if error else (_normalise_messages(value), None)


def _normalise_messages(value: list[dict[str, Any]]) -> list[dict[str, str]]:
    out = []
    for message in value:
        if "role" in message:
            out.append({"role": str(message["role"]), "content": str(message["content"])})
        else:
            speaker = str(message["from"]).lower()
            out.append({"role": SHAREGPT_ROLES.get(speaker, speaker), "content": str(message["value"])})
    return out


def _with_errors(df: pl.DataFrame, errors: list[str | None]) -> pl.DataFrame:
    """Add row errors found outside the vectorised checks; earlier errors win."""
    new = pl.Series(_ERR, errors, dtype=pl.String)
    if _ERR in df.columns:
        new = df.select(pl.coalesce(pl.col(_ERR), pl.lit(new))).to_series().alias(_ERR)
    return df.with_columns(new)


# --------------------------------------------------------------------------- python-level checks


def _py_content_error(obj: dict[str, Any], m: _Mapping) -> str | None:
    """The content error of one parsed JSON object (mirrors the vectorised checks)."""
    for canonical, column in m.fields.items():
        value = obj.get(column)
        if canonical == S.MESSAGES:
            error = _py_messages_error(value, column) if not isinstance(value, str) else None
        else:
            error = _py_text_error(value, column, canonical, required=True)
        if error:
            return error
    if m.extra_input:
        return _py_text_error(obj.get(m.extra_input), m.extra_input, S.PROMPT, required=False)
    return None


def _py_text_error(value: Any, column: str, canonical: str, *, required: bool) -> str | None:
    if value is None:
        return _missing(column, canonical) if required else None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return _not_text(column, canonical, _json_kind(value))
    return None


def _py_messages_error(value: Any, column: str) -> str | None:
    label = _label(column, S.MESSAGES)
    if value is None:
        return _missing(column, S.MESSAGES)
    if not isinstance(value, list):
        return f"field {label} is not a list of {{role, content}} messages (found {_json_kind(value)})"
    if not value:
        return f"field {label} is empty"
    for message in value:
        keys = ("role", "content") if isinstance(message, dict) and "role" in message else ("from", "value")
        if not isinstance(message, dict) or not all(k in message for k in keys):
            return f"field {label} has a message without role and content (or from and value)"
        for key in keys:
            if message[key] is None:
                return f"field {label} has a message with a null role or content"
            if _py_text_error(message[key], key, key, required=True):
                return (
                    f"field {label} has a message whose {key} is not text (found {_json_kind(message[key])})"
                )
    return None


def _json_kind(value: Any) -> str:
    kinds = ((type(None), "null"), (bool, "boolean"), (dict, "object"), (list, "array"), (str, "string"))
    return next((name for typ, name in kinds if isinstance(value, typ)), "number")


# --------------------------------------------------------------------------- chunk assembly


def _assemble(
    df: pl.DataFrame, ctx: _FileCtx, raw_of: Callable[[pl.DataFrame], list[str]], bad: list[_Bad]
) -> Chunk:
    """Map a parsed block onto the canonical schema; rows with content errors join `bad`."""
    if ctx.mapping is None and df.height == 0:
        rows = pl.DataFrame(schema={S.SOURCE: pl.String(), S.SOURCE_LINE: pl.Int64()})
        return Chunk(rows, _quarantine(ctx.file, bad))
    m = ctx.mapping_for(df.columns)
    df = _parse_message_strings(df, m)
    values, errors = _content_exprs(df.schema, m)
    if _ERR in df.columns:
        errors.insert(0, pl.col(_ERR))
    # with_columns, not select: a literal-only select would make one row of an empty frame
    error = df.with_columns(pl.coalesce(pl.lit(None, pl.String), *errors).alias(_ERR))[_ERR]
    ok = error.is_null()
    rejected = df.filter(~ok)
    for line, message, raw in zip(
        rejected.get_column(_LINE).to_list(), error.filter(~ok).to_list(), raw_of(rejected), strict=True
    ):
        bad.append(_Bad(line, message, raw))
    rows = df.filter(ok).select(
        pl.lit(ctx.file.source, pl.String).alias(S.SOURCE),
        pl.col(_LINE).cast(pl.Int64).alias(S.SOURCE_LINE),
        *(value.cast(S.CONTENT_DTYPES[name]).alias(name) for name, value in values.items()),
        *_carried(df.columns, m),
    )
    return Chunk(rows, _quarantine(ctx.file, bad))


def _quarantine(f: InputFile, bad: list[_Bad]) -> pl.DataFrame:
    bad = sorted(bad, key=lambda b: b.line)
    return pl.DataFrame(
        {
            S.SOURCE: [f.source] * len(bad),
            S.SOURCE_LINE: [b.line for b in bad],
            "error": [b.error for b in bad],
            "raw": [_decode_raw(b.raw) for b in bad],
        },
        schema=S.QUARANTINE_SCHEMA,
    )


def _decode_raw(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode("utf-8", "backslashreplace")


def _json_raws(rejected: pl.DataFrame) -> list[str]:
    """Raw text for rows of formats without lines: the row as a JSON object."""
    rows = rejected.drop(_LINE, _ERR, strict=False).to_dicts()
    return [json.dumps(row, ensure_ascii=False, default=str) for row in rows]


# --------------------------------------------------------------------------- JSON Lines


def _read_jsonl(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    ctx, seen = _FileCtx(f, cfg), False
    with _open_bytes(f.path) as fh:
        for block in _line_blocks(fh, cfg):
            seen = True
            yield _json_block_chunk(block, ctx)
    if not seen:
        raise _empty_error(f)


def _open_bytes(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")  # noqa: SIM115


def _line_blocks(fh: IO[bytes], cfg: ReadConfig) -> Iterator[list[tuple[int, bytes]]]:
    """Non-blank lines with their 1-based physical numbers, in blocks of bounded size."""
    block: list[tuple[int, bytes]] = []
    size = 0
    for number, line in enumerate(fh, 1):
        if number == 1:
            line = line.removeprefix(_BOM)
        if not line or line.isspace():
            continue
        line = line.rstrip(b"\r\n")
        block.append((number, line))
        size += len(line)
        if len(block) >= cfg.chunk_rows or size >= cfg.chunk_bytes:
            yield block
            block, size = [], 0
    if block:
        yield block


def _json_block_chunk(block: list[tuple[int, bytes]], ctx: _FileCtx) -> Chunk:
    """Parse a block of JSON lines: a fast polars pass, per-line Python only where it fails."""
    lines, bad = _split_invalid_utf8(block)
    df, lines, objects = _parse_json_lines(lines, bad)
    if df.height:
        df = _flag_non_text(df, ctx.mapping_for(df.columns), objects, [raw for _, raw in lines])

    def raw_of(rejected: pl.DataFrame) -> list[str]:
        wanted = rejected.get_column(_LINE).to_list()
        if not wanted:
            return []
        keep = set(wanted)
        raws = {line: raw for line, raw in lines if line in keep}
        return [_decode_raw(raws[line]) for line in wanted]

    return _assemble(df, ctx, raw_of, bad)


def _split_invalid_utf8(block: list[tuple[int, bytes]]) -> tuple[list[tuple[int, bytes]], list[_Bad]]:
    joined = b"\n".join(raw for _, raw in block)
    if joined.isascii():
        return block, []
    try:
        joined.decode("utf-8")
        return block, []
    except UnicodeDecodeError:
        pass
    good, bad = [], []
    for line, raw in block:
        try:
            raw.decode("utf-8")
            good.append((line, raw))
        except UnicodeDecodeError as exc:
            bad.append(_Bad(line, f"invalid UTF-8 at byte {exc.start + 1}", raw))
    return good, bad


def _parse_json_lines(
    lines: list[tuple[int, bytes]], bad: list[_Bad]
) -> tuple[pl.DataFrame, list[tuple[int, bytes]], list[dict[str, Any]] | None]:
    """Frame of the usable lines, those lines, and the parsed objects when Python parsed them."""
    df = _ndjson_frame(lines)
    if df is not None:
        return df, lines, None
    kept, objects = [], []
    for line, raw in lines:
        obj = _loads_object(line, raw, bad)
        if obj is not None:
            kept.append((line, raw))
            objects.append(obj)
    df = _ndjson_frame(kept)
    if df is None:
        df = _frame_from_objects(objects, [n for n, _ in kept])
    return df, kept, objects


def _ndjson_frame(lines: list[tuple[int, bytes]]) -> pl.DataFrame | None:
    """polars' NDJSON parser on the block, or None when it refuses or miscounts rows."""
    numbers = pl.Series(_LINE, [n for n, _ in lines], dtype=pl.Int64)
    if not lines:
        return pl.DataFrame([numbers])
    try:
        df = pl.read_ndjson(b"\n".join(raw for _, raw in lines), infer_schema_length=None)
    except (Exception, pl.exceptions.PanicException):  # any refusal: the per-line path decides
        return None
    if df.height != len(lines):
        return None
    return df.insert_column(0, numbers) if _LINE not in df.columns else None


def _loads_object(line: int, raw: bytes, bad: list[_Bad]) -> dict[str, Any] | None:
    try:
        obj = json.loads(raw, strict=False)
    except json.JSONDecodeError as exc:
        bad.append(_Bad(line, f"invalid JSON: {exc.msg} at column {exc.colno}", raw))
        return None
    except RecursionError:
        bad.append(_Bad(line, "invalid JSON: nested too deeply", raw))
        return None
    if not isinstance(obj, dict):
        bad.append(_Bad(line, f"expected a JSON object, found {_json_kind(obj)}", raw))
        return None
    return obj


def _frame_from_objects(objects: list[dict[str, Any]], numbers: list[int]) -> pl.DataFrame:
    """Last resort when polars cannot type a block: columns it cannot type become JSON text."""
    names = list(dict.fromkeys(key for obj in objects for key in obj))
    columns = [pl.Series(_LINE, numbers, dtype=pl.Int64)]
    columns += [_loose_series(name, [obj.get(name) for obj in objects]) for name in names if name != _LINE]
    return pl.DataFrame(columns)


def _loose_series(name: str, values: list[Any]) -> pl.Series:
    try:
        series = pl.Series(name, values, strict=False)
        if series.dtype != pl.Object:
            return series
    except Exception:  # polars cannot build it: fall through to JSON text
        pass
    text = [v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]
    return pl.Series(name, text, dtype=pl.String)


def _flag_non_text(
    df: pl.DataFrame, m: _Mapping, objects: list[dict[str, Any]] | None, raws: list[bytes]
) -> pl.DataFrame:
    """Find content values polars silently turned into text (objects, arrays, booleans).

    polars' NDJSON reader types a column holding strings and objects as String, so a
    `{"prompt": {"a": 1}}` row would pass as the text '{"a": 1}'. Only rows whose text looks
    like that are re-read with `json` and checked; on the slow path every object is checked.
    """
    if objects is not None:
        return _with_errors(df, [_py_content_error(obj, m) for obj in objects])
    suspects = _suspect_rows(df, m)
    if not suspects:
        return df
    errors: list[str | None] = [None] * df.height
    for i in suspects:
        errors[i] = _py_content_error(json.loads(raws[i], strict=False), m)
    return _with_errors(df, errors)


def _suspect_rows(df: pl.DataFrame, m: _Mapping) -> list[int]:
    checks: list[pl.Expr] = []
    for column in m.sources:
        dtype = df.schema.get(column)
        if dtype == pl.String:
            checks.append(_looks_coerced(pl.col(column)))
        elif _message_keys(dtype) is not None:
            keys = _message_keys(dtype)
            inner = {f.name: f.dtype for f in dtype.inner.fields}  # type: ignore[union-attr]
            for key in keys or ():
                if inner[key] == pl.String:
                    element = _looks_coerced(pl.element().struct.field(key))
                    checks.append(pl.col(column).list.eval(element).list.any())
    if not checks:
        return []
    mask = df.select(pl.any_horizontal(*checks).fill_null(False)).to_series()
    return mask.arg_true().to_list()


def _looks_coerced(value: pl.Expr) -> pl.Expr:
    return value.str.starts_with("{") | value.str.starts_with("[") | value.is_in(["true", "false"])


# --------------------------------------------------------------------------- JSON documents


def _read_json(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    """A JSON array of objects, loaded whole; a .json file holding JSON Lines is read as such."""
    if _holds_json_lines(f.path):
        yield from _read_jsonl(f, cfg)
        return
    data = _load_json_document(f)
    if isinstance(data, dict):
        raise InputError(
            f"{f.path} holds one JSON object, not rows (keys: {', '.join(list(data)[:10])})",
            hint="write the rows as a JSON array of objects, or as JSON Lines (one object per line)",
        )
    if not isinstance(data, list):
        raise InputError(f"{f.path} holds a JSON {_json_kind(data)}, not an array of objects")
    if not data:
        raise _empty_error(f)
    ctx = _FileCtx(f, cfg)
    for start in range(0, len(data), cfg.chunk_rows):
        part = data[start : start + cfg.chunk_rows]
        block = [(start + i + 1, json.dumps(item).encode()) for i, item in enumerate(part)]
        yield _json_block_chunk(block, ctx)


def _holds_json_lines(path: Path) -> bool:
    """True when the first non-blank line is a complete JSON object on its own."""
    with _open_bytes(path) as fh:
        for line in fh:
            text = line.removeprefix(_BOM).strip()
            if text:
                try:
                    return text.startswith(b"{") and isinstance(json.loads(text), dict)
                except (ValueError, RecursionError):
                    return False
    return False


def _load_json_document(f: InputFile) -> Any:
    with _open_bytes(f.path) as fh:
        data = fh.read().removeprefix(_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"invalid UTF-8 in {f.path} at line {line} (byte {exc.start + 1})",
            hint="re-save the file as UTF-8",
        ) from exc
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON in {f.path} at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            hint="fix the file, or write it as JSON Lines so that bad rows are quarantined instead",
        ) from exc


# --------------------------------------------------------------------------- CSV / TSV


class _CsvFeed:
    """Feeds decoded lines to `csv.reader` while remembering the current record's lines.

    This is how a record gets its physical start line and raw text, and how a line with
    invalid UTF-8 is quarantined without breaking the record structure around it.
    """

    def __init__(self, fh: IO[bytes]) -> None:
        self._lines = enumerate(fh, 1)
        self.begin()

    def begin(self) -> None:
        self.start: int | None = None
        self.pieces: list[bytes] = []
        self.utf8_error: str | None = None

    def __iter__(self) -> _CsvFeed:
        return self

    def __next__(self) -> str:
        number, raw = next(self._lines)
        if number == 1:
            raw = raw.removeprefix(_BOM)
        if self.start is None:
            self.start = number
        self.pieces.append(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            if self.utf8_error is None:
                where = "" if number == self.start else f" of line {number}"
                self.utf8_error = f"invalid UTF-8 at byte {exc.start + 1}{where}"
            return raw.decode("utf-8", "replace")

    def raw(self) -> bytes:
        return b"".join(self.pieces).rstrip(b"\r\n")


@dataclass
class _CsvBlock:
    lines: list[int] = field(default_factory=list)
    records: list[list[str]] = field(default_factory=list)
    bad: list[_Bad] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records) + len(self.bad)


def _read_csv(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    """Stream CSV/TSV with the `csv` module; every value stays a string."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))  # long texts are normal here
    delimiter = cfg.csv_delimiter or ("\t" if f.format == "tsv" else ",")
    ctx, seen = _FileCtx(f, cfg), False
    with open(f.path, "rb") as fh:
        feed = _CsvFeed(fh)
        reader = csv.reader(feed, delimiter=delimiter)
        header = _csv_header(reader, feed, f)
        for block in _csv_blocks(reader, feed, len(header), cfg):
            seen = True
            df = pl.DataFrame(block.records, schema=dict.fromkeys(header, pl.String()), orient="row")
            df = df.insert_column(0, pl.Series(_LINE, block.lines, dtype=pl.Int64))
            yield _assemble(df, ctx, _json_raws, block.bad)
    if not seen:
        raise _empty_error(f)


def _csv_header(reader: Any, feed: _CsvFeed, f: InputFile) -> list[str]:
    for record in reader:
        if feed.utf8_error:
            raise InputError(
                f"invalid UTF-8 in the header of {f.path} ({feed.utf8_error})",
                hint="re-save the file as UTF-8",
            )
        if record:
            names = [name.strip() or f"column_{i + 1}" for i, name in enumerate(record)]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise InputError(
                    f"duplicate column names in the header of {f.path}: {', '.join(duplicates)}",
                    hint="rename the columns so that each name is unique",
                )
            return names
        feed.begin()
    raise _empty_error(f)


def _csv_blocks(reader: Any, feed: _CsvFeed, width: int, cfg: ReadConfig) -> Iterator[_CsvBlock]:
    block = _CsvBlock()
    while True:
        feed.begin()
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            block.bad.append(_Bad(feed.start or 0, f"invalid CSV: {exc}", feed.raw()))
            record = None
        if record is not None and _csv_keep(record, feed, width, block):
            block.lines.append(feed.start or 0)
            block.records.append(record)
        if len(block) >= cfg.chunk_rows:
            yield block
            block = _CsvBlock()
    if len(block):
        yield block


def _csv_keep(record: list[str], feed: _CsvFeed, width: int, block: _CsvBlock) -> bool:
    """True for a usable record; a bad one is added to the block's quarantine, a blank one skipped."""
    if not record or (width > 1 and len(record) == 1 and not record[0].strip()):
        return False
    error = feed.utf8_error
    if error is None and len(record) != width:
        error = f"expected {width} fields, found {len(record)}"
    if error:
        block.bad.append(_Bad(feed.start or 0, error, feed.raw()))
        return False
    return True


# --------------------------------------------------------------------------- Arrow: parquet, HF


def _read_parquet(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    try:
        parquet = pq.ParquetFile(f.path)
    except (pa.ArrowException, ValueError) as exc:
        raise InputError(f"{f.path} is not a readable parquet file: {exc}") from exc
    if parquet.metadata.num_rows == 0:
        raise _empty_error(f)
    yield from _arrow_chunks(parquet.iter_batches(batch_size=cfg.chunk_rows), f, cfg)


def _read_hf(f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    """A `datasets.save_to_disk` folder: Arrow IPC stream files read batch by batch."""
    seen = False
    for chunk in _arrow_chunks(_hf_batches(f.path), f, cfg):
        seen = True
        yield chunk
    if not seen:
        raise _empty_error(f)


def _hf_batches(folder: Path) -> Iterator[pa.RecordBatch]:
    state = _read_json_file(folder / "state.json")
    names = [d["filename"] for d in state.get("_data_files", [])]
    paths = [folder / n for n in names] if names else sorted(folder.glob("*.arrow"))
    for path in paths:
        with pa.OSFile(str(path), "rb") as source:
            try:
                reader = pa.ipc.open_stream(source)
            except pa.ArrowInvalid as exc:
                raise InputError(f"{path} is not an Arrow stream file: {exc}") from exc
            yield from reader


def _arrow_chunks(batches: Iterator[pa.RecordBatch], f: InputFile, cfg: ReadConfig) -> Iterator[Chunk]:
    ctx, first = _FileCtx(f, cfg), 1
    for table in _rebatch(batches, cfg.chunk_rows):
        df = pl.from_arrow(table)
        assert isinstance(df, pl.DataFrame)
        numbers = pl.Series(_LINE, range(first, first + df.height), dtype=pl.Int64)
        first += df.height
        yield _assemble(df.insert_column(0, numbers), ctx, _json_raws, [])


def _rebatch(batches: Iterator[pa.RecordBatch], size: int) -> Iterator[pa.Table]:
    """Regroup record batches into tables of exactly `size` rows (the last may be shorter)."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in batches:
        while batch.num_rows:
            take = min(size - count, batch.num_rows)
            pending.append(batch.slice(0, take))
            batch, count = batch.slice(take), count + take
            if count == size:
                yield pa.Table.from_batches(pending)
                pending, count = [], 0
    if count:
        yield pa.Table.from_batches(pending)


_READERS: dict[str, Callable[[InputFile, ReadConfig], Iterator[Chunk]]] = {
    "jsonl": _read_jsonl,
    "json": _read_json,
    "csv": _read_csv,
    "tsv": _read_csv,
    "parquet": _read_parquet,
    "hf": _read_hf,
}
