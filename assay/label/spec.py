"""The Argilla dataset a version is reviewed in, as plain data: fields, questions, metadata, vectors.

A spec is built from the version's schema (no server needed), compared with what an existing Argilla
dataset holds (so a push into a dataset of another shape is refused with the differences named), and
turned into the server's own representation only by the review store (`argilla_rest.py`).
"""

from __future__ import annotations

from typing import Any

import polars as pl

from assay.label.config import LabelConfig
from assay.schema import MESSAGES, PROMPT, RESPONSE, SOURCE, SPLIT, TEXT, content_columns

Spec = dict[str, Any]
DECISIONS = ["approve", "reject", "edit"]
RATINGS = [1, 2, 3, 4, 5]
VECTOR_NAME, VECTOR_DIMS = "embedding", 384
# metadata names derived from the signals (signals.py) besides the q_* columns, with their types
DERIVED_METADATA = {"pii_any": "terms", "pii_count": "integer", "cluster_size": "integer", "quality_score": "float", "priority": "float"}
FIELD_TITLES = {PROMPT: "Prompt", RESPONSE: "Response", MESSAGES: "Conversation", TEXT: "Text",
                "answer_a": "Answer A", "answer_b": "Answer B"}
# question → (title, description) shown to reviewers
QUESTION_TEXT: dict[str, tuple[str, str | None]] = {
    "decision": ("Decision", "approve, reject, or edit (then fill in corrected_response)"),
    "corrected_response": ("Corrected response", "Only for `edit`: the full corrected text"),
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
    required = content in ((PROMPT, RESPONSE), (MESSAGES,), (TEXT,), (PROMPT,))  # mixed shapes: any may be empty
    fields = {c: {"type": "chat" if c == MESSAGES else "text", "required": required} for c in content}
    return {
        "fields": fields,
        "questions": {
            "decision": {"type": "label_selection", "options": list(DECISIONS), "required": True},
            "corrected_response": {"type": "text", "required": False},
            "quality": {"type": "rating", "options": list(RATINGS), "required": False},
            "issues": {"type": "multi_label_selection", "options": list(cfg.issues), "required": False},
        },
        "metadata": metadata_spec(schema),
        "vectors": {VECTOR_NAME: VECTOR_DIMS} if vectors else {},
        "min_submitted": cfg.min_submitted,
    }


def metadata_spec(schema: pl.Schema | dict) -> dict[str, str]:
    """Metadata properties: source and split (terms), every numeric q_* column, and the derived signals."""
    out = {c: "terms" for c in (SOURCE, SPLIT) if c in schema}
    for name, dtype in schema.items():
        if name.startswith("q_") and dtype.is_numeric():
            out[name] = "integer" if dtype.is_integer() else "float"
    return {**out, **DERIVED_METADATA}


def differences(server: Spec, wanted: Spec) -> list[str]:
    """Human-readable differences between an existing dataset's spec and the one a push needs.

    A wanted `min_submitted` of None accepts whatever the dataset has (records do not carry it).
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
    if wanted.get("min_submitted") is not None and server.get("min_submitted") != wanted["min_submitted"]:
        out.append(f"min_submitted differs: Argilla has {server.get('min_submitted')}, this push needs {wanted.get('min_submitted')}")
    return out


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def guidelines(version_id: str, cfg: LabelConfig, content: tuple[str, ...]) -> str:
    """Reviewer guidelines shown in the UI; the last line links the dataset to its assay version."""
    target = "the last assistant turn" if content == (MESSAGES,) else ("the text" if content == (TEXT,) else "the response")
    parts = [
        "## How to review",
        f"- **decision**: `approve` keeps the row as it is; `reject` removes it from training; `edit` keeps it "
        f"with your fix: paste the corrected version of {target} into **corrected_response**.",
        "- **quality** (optional): 1 = unusable … 5 = exemplary.",
        f"- **issues** (optional): tag what is wrong ({', '.join(cfg.issues)}).",
        f"- Suggestions by `{cfg.suggestion_agent}` come from automatic curation signals: check them, do not trust them.",
        "- Rows that matter most come first when you sort by the metadata property `priority` (descending): "
        "flagged personal data, borderline quality scores, representatives of large duplicate clusters.",
    ]
    if cfg.guidelines:
        parts += ["", cfg.guidelines]
    parts += ["", f"_assay version: {version_id}_"]
    return "\n".join(parts)
