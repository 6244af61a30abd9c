"""`ReadConfig`: how input files are read and mapped onto the canonical columns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay import schema as S

CONTENT_KEYS = (S.PROMPT, S.RESPONSE, S.MESSAGES, S.TEXT)
COLUMN_KEYS = (*CONTENT_KEYS, S.SPLIT)


class ReadConfig(BaseModel):
    """How to read input files (`[curate.read]` in assay.toml)."""

    model_config = ConfigDict(extra="forbid")

    columns: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Canonical content column -> column in your files, e.g. "
            '{prompt = "instruction", response = "output"}. Keys: prompt, response, messages, text, '
            "and split (the column that holds each row's train/val/test split; default: a column named split). "
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
        examples=[";"],
        min_length=1,
        max_length=1,
        description='Field delimiter for CSV/TSV files; empty: "," for .csv and a tab for .tsv.',
    )

    @field_validator("columns")
    @classmethod
    def _check_columns(cls, value: dict[str, str]) -> dict[str, str]:
        """Reject unknown keys and mixed shapes up front, naming the offending key."""
        for key, column in value.items():
            if key not in COLUMN_KEYS:
                raise ValueError(f"unknown key `{key}` in columns (allowed: {', '.join(COLUMN_KEYS)})")
            if not column:
                raise ValueError(f"columns.{key} is empty; name a column of your files")
        shapes = [s for s in ({S.PROMPT, S.RESPONSE}, {S.MESSAGES}, {S.TEXT}) if s & value.keys()]
        if len(shapes) > 1:
            content = sorted(value.keys() - {S.SPLIT})
            raise ValueError(
                f"columns mixes content shapes ({', '.join(content)}); "
                "use prompt/response, or messages, or text"
            )
        return value
