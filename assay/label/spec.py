"""The Argilla dataset a version is reviewed in, as plain data: fields, questions, metadata, vectors.

A spec is built from the version's schema (no server needed), compared with what an existing Argilla
dataset holds (so a push into a dataset of another shape is refused with the differences named), and
turned into the server's own representation only by the review store (`argilla_rest.py`).
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import polars as pl

from assay.label.config import LabelConfig
from assay.schema import MESSAGES, PROMPT, RESPONSE, SOURCE, SPLIT, TEXT, content_columns

Spec = dict[str, Any]
DECISIONS = ["approve", "reject", "edit"]
RATINGS = [1, 2, 3, 4, 5]
VECTOR_NAME, VECTOR_DIMS = "embedding", 384
RECORD, REQUEST = "record", "request"  # the record's provenance line; a chat's last user turn
REVIEWS_NEEDED = "reviews_needed"  # metadata of records in a sampled overlap (see `overlap_sample`)
FIELD_TITLES = {RECORD: "Record", REQUEST: "Request (last user turn)", PROMPT: "Prompt", RESPONSE: "Response",
                MESSAGES: "Conversation", TEXT: "Text", "answer_a": "Answer A", "answer_b": "Answer B"}
# Metadata curators read in the UI (its "View metadata" table shows names, its filters titles), so both
# are words, not column names: `repeated_lines_share`, not `q_dup_line_frac`.
# version column → (metadata property name, title)
COLUMN_METADATA: dict[str, tuple[str, str]] = {
    SOURCE: ("source_file", "Source file"), SPLIT: ("split", "Split"), "q_chars": ("characters", "Characters"),
    "q_words": ("words", "Words"), "q_mean_word_len": ("mean_word_length", "Mean word length"),
    "q_dup_line_frac": ("repeated_lines_share", "Repeated lines (share)"),
    "q_dup_para_frac": ("repeated_paragraphs_share", "Repeated paragraphs (share)"),
    "q_symbol_ratio": ("symbols_per_word", "Symbols per word"), "q_symbols": ("symbols", "Symbols"),
    "q_alpha_ratio": ("words_with_letters_share", "Words with a letter (share)"), "q_stop_words": ("stop_words", "Stop words"),
}
_NGRAM_COLUMN = re.compile(r"q_(top|dup)_(\d+)gram_frac")
# metadata property derived from the review signals (signals.py) → (type, title)
DERIVED_METADATA: dict[str, tuple[str, str]] = {
    "personal_data": ("terms", "Personal data found"),
    "personal_data_hits": ("integer", "Personal data hits"),
    "copies": ("integer", "Copies (this row + removed duplicates)"),
    "quality_score": ("float", "Quality score (0.5 = on a threshold)"),
    "review_priority": ("float", "Review priority"),
}
METADATA_DIGITS = 3  # float metadata is rounded to this many decimals: curators read it, filters use it
# question → (title, description) shown to reviewers
QUESTION_TEXT: dict[str, tuple[str, str | None]] = {
    "decision": ("Decision", "approve, reject, or edit (then write the fix below)"),
    "corrected_response": ("Corrected response", "Only for `edit`: the full corrected response"),
    "corrected_text": ("Corrected text", "Only for `edit`: the full corrected text"),
    "quality": ("Quality", None),
    "issues": ("Issues", None),
    # blind side-by-side comparisons (`assay eval human`)
    "preference": ("Which answer is better?", "A, B, or tie when neither is better"),
    "rating_a": ("Rating of answer A", "1 = unusable … 5 = exemplary"),
    "rating_b": ("Rating of answer B", "1 = unusable … 5 = exemplary"),
    "comment": ("Comment", "Optional: what made the difference"),
}


def build_spec(schema: pl.Schema | dict, cfg: LabelConfig, *, vectors: bool) -> Spec:
    """What a review dataset for a version with this schema must look like."""
    content = content_columns(schema)
    if not content:
        from assay.errors import InputError

        raise InputError(
            f"the version has no content column (columns: {', '.join(schema)})",
            hint="push a curated version with prompt/response, messages or text",
        )
    return {
        "fields": fields_spec(content),
        "questions": {
            "decision": {"type": "label_selection", "options": list(DECISIONS), "required": True},
            correction_question(content): {"type": "text", "required": False},
            "quality": {"type": "rating", "options": list(RATINGS), "required": False},
            "issues": {"type": "multi_label_selection", "options": list(cfg.issues), "required": False},
        },
        "metadata": metadata_spec(schema) | ({REVIEWS_NEEDED: "integer"} if cfg.overlap_fraction else {}),
        "vectors": {VECTOR_NAME: VECTOR_DIMS} if vectors else {},
        "min_submitted": cfg.min_submitted,
        "overlap": overlap_spec(cfg),
    }


def fields_spec(content: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The record's provenance line first, then its content; a chat also gets its last user turn as text.

    Text before chat matters: the UI's similarity chip shows the first two fields as text, and a chat
    field there reads "[object Object]".
    """
    required = content in ((PROMPT, RESPONSE), (MESSAGES,), (TEXT,), (PROMPT,))  # mixed shapes: any may be empty
    fields = {RECORD: {"type": "text", "required": True}}
    if MESSAGES in content:
        fields[REQUEST] = {"type": "text", "required": False}
    return fields | {c: {"type": "chat" if c == MESSAGES else "text", "required": required} for c in content}


def correction_question(content: tuple[str, ...]) -> str:
    """`corrected_text` for plain-text versions (there is no response to correct), else `corrected_response`."""
    return "corrected_text" if content == (TEXT,) else "corrected_response"


def overlap_spec(cfg: LabelConfig) -> dict[str, Any] | None:
    """The sampled overlap a dataset is created with (None: every record needs `min_submitted`)."""
    if cfg.overlap_fraction is None:
        return None
    return {"fraction": cfg.overlap_fraction, "min_submitted": cfg.overlap_min_submitted, "seed": cfg.seed}


def overlap_sample(row_id: str, overlap: dict[str, Any] | None) -> bool:
    """Whether a row is in the dataset's overlap sample: a seeded hash of its id, so a later push of more
    rows and the pull agree on every row without storing a list."""
    if not overlap:
        return False
    digest = hashlib.blake2b(f"{overlap['seed']}:overlap:{row_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") < overlap["fraction"] * 2**64


def reviews_needed(row_id: str, overlap: dict[str, Any] | None, min_submitted: int) -> int:
    return overlap["min_submitted"] if overlap_sample(row_id, overlap) else min_submitted


def metadata_columns(schema: pl.Schema | dict) -> dict[str, str]:
    """Metadata property name → the version column it shows: source and split, every numeric q_* column."""
    columns = [c for c in (SOURCE, SPLIT) if c in schema]
    columns += [c for c, dtype in schema.items() if c.startswith("q_") and dtype.is_numeric()]
    return {column_metadata(c)[0]: c for c in columns}


def column_metadata(column: str) -> tuple[str, str]:
    """(metadata property name, title) for a version column."""
    if column in COLUMN_METADATA:
        return COLUMN_METADATA[column]
    ngram = _NGRAM_COLUMN.fullmatch(column)
    if ngram:
        kind, n = ngram.groups()
        return _ngram_metadata(kind == "top", n)
    name = column.removeprefix("q_")
    return name, name.replace("_", " ").capitalize()


def _ngram_metadata(top: bool, n: str) -> tuple[str, str]:
    return (f"top_{n}gram_share", f"Most repeated {n}-gram (share)") if top else (
        f"repeated_{n}grams_share", f"Repeated {n}-grams (share)")


_NGRAM_NAME = re.compile(r"top_(\d+)gram_share|repeated_(\d+)grams_share")
_TITLES = {name: title for name, title in COLUMN_METADATA.values()} | {
    name: title for name, (_, title) in DERIVED_METADATA.items()} | {REVIEWS_NEEDED: "Reviews needed"}


def metadata_title(name: str) -> str:
    """What the UI's filters show for a metadata property (the inverse of the names above)."""
    if name in _TITLES:
        return _TITLES[name]
    ngram = _NGRAM_NAME.fullmatch(name)
    if ngram:
        return _ngram_metadata(ngram.group(1) is not None, ngram.group(1) or ngram.group(2))[1]
    return name.replace("_", " ").capitalize()


def metadata_spec(schema: pl.Schema | dict) -> dict[str, str]:
    """Metadata properties (name → type): source and split (terms), every numeric q_* column, the signals."""
    out = {}
    for name, column in metadata_columns(schema).items():
        dtype = schema[column]
        out[name] = "terms" if column in (SOURCE, SPLIT) else ("integer" if dtype.is_integer() else "float")
    return out | {name: kind for name, (kind, _) in DERIVED_METADATA.items()}


def differences(server: Spec, wanted: Spec) -> list[str]:
    """Human-readable differences between an existing dataset's spec and the one a push needs.

    A wanted `min_submitted` of None accepts whatever overlap the dataset has (`min_submitted` and any
    sampled overlap).
    """
    out = []
    for part, noun in (("fields", "field"), ("questions", "question"), ("metadata", "metadata property"), ("vectors", "vector")):
        have, want = server.get(part, {}), wanted.get(part, {})
        for name in sorted(set(have) | set(want)):
            if name not in have:
                out.append(f"{noun} `{name}` is not in the Argilla dataset (this push needs {_show(want[name])})")
            elif name not in want:
                out.append(f"{noun} `{name}` is in the Argilla dataset ({_show(have[name])}) but not in this push")
            elif have[name] != want[name]:
                out.append(f"{noun} `{name}` differs: Argilla has {_show(have[name])}, this push needs {_show(want[name])}")
    if wanted.get("min_submitted") is None:
        return out
    if server.get("min_submitted") != wanted["min_submitted"]:
        out.append(f"min_submitted differs: Argilla has {server.get('min_submitted')}, this push needs {wanted.get('min_submitted')}")
    if server.get("overlap") != wanted.get("overlap"):
        out.append(f"sampled overlap differs: Argilla has {_show(server.get('overlap'))}, this push needs {_show(wanted.get('overlap'))}")
    return out


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def guidelines(version_id: str, cfg: LabelConfig, content: tuple[str, ...]) -> str:
    """Reviewer guidelines shown in the UI; the last line links the dataset to its assay version."""
    target = "the last assistant turn" if content == (MESSAGES,) else ("the text" if content == (TEXT,) else "the response")
    question = correction_question(content)
    parts = [
        "## How to review",
        f"- **decision**: `approve` keeps the row as it is; `reject` removes it from training; `edit` keeps it "
        f"with your fix: paste the corrected version of {target} into **{question}**.",
        "- **quality** (optional): 1 = unusable … 5 = exemplary.",
        f"- **issues** (optional): tag what is wrong ({', '.join(cfg.issues)}).",
        f"- Pre-filled answers are suggestions by `{cfg.suggestion_agent}`, made from automatic curation signals "
        "(personal data found, quality checks that nearly fired): check each one, change what is wrong. "
        + ("A decision is suggested only where the signals are strong." if cfg.suggest.decision else "No decision is suggested: it is yours."),
        "- **Record** names the source file, line and assay row id; fields are shown as plain text, exactly as "
        "the model will see them (markers such as `#### 42` included).",
        "- Rows that matter most come first when you sort by the metadata property `review_priority` (descending): "
        "flagged personal data, borderline quality scores, representatives of large duplicate clusters.",
    ]
    if cfg.overlap_fraction:
        parts.append(f"- About {cfg.overlap_fraction:.0%} of the records are also reviewed by {cfg.overlap_min_submitted - 1} "
                     "other curator(s) (metadata `reviews_needed`), so agreement can be measured: answer them on your own.")
    if cfg.guidelines:
        parts += ["", cfg.guidelines]
    parts += ["", f"_assay version: {version_id}_"]
    return "\n".join(parts)
