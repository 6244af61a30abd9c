"""Review signals derived from curation: a quality score, duplicate-cluster size, PII counts, a priority.

They become Argilla metadata (filters and sorting in the UI), suggestions, and the push order, so that
curators see first the rows where a human decision matters most.

- quality score in [0, 1]: 0.5 + tanh(m) / 2, where m is the row's smallest relative margin to the
  quality thresholds its version was curated with (`config.quality` in the manifest): 0.5 = exactly on a
  threshold, towards 1 = far inside every bound. Unknown (null) without thresholds or q_* columns.
- borderline in [0, 1]: exp(-m / 0.1), 1 on a threshold, 0.37 at 10 % inside it, ~0 far from every bound.
- cluster size: how many rows it stands for, itself included (rows and rejected duplicates sharing its
  `dup_cluster`, and rejects whose `duplicate_of` names it).
- priority in [0, 1] per `LabelConfig.priority`; ties are broken by a seeded hash of the row id.
"""

from __future__ import annotations

import hashlib

import polars as pl

from assay.schema import DUP_CLUSTER, ID, TEXT

QUALITY, BORDERLINE, CLUSTER = "_quality", "_borderline", "_cluster_size"
PII_COUNT, PII_ANY, PRIORITY = "_pii_count", "_pii_flag", "_priority"
STRENGTH = {"low_quality": "_low_quality_strength", "formatting": "_formatting_strength"}  # issue → column
BORDER_SCALE = 0.1  # a row 10 % inside its nearest threshold is borderline at exp(-1) = 0.37
DUPLICATE_OF = "duplicate_of"
NGRAM_MIN_WORDS = 50  # the quality step's default `ngram_min_words`

# quality threshold key in the curate config → (q_* column, whether the threshold is a minimum, the
# quality check it feeds, the review issue it points to)
THRESHOLDS: dict[str, tuple[str, bool, str, str]] = {
    "min_chars": ("q_chars", True, "too_short", "low_quality"),
    "max_chars": ("q_chars", False, "too_long", "low_quality"),
    "min_words": ("q_words", True, "too_short", "low_quality"),
    "max_words": ("q_words", False, "too_long", "low_quality"),
    "min_mean_word_length": ("q_mean_word_len", True, "low_mean_word_length", "low_quality"),
    "max_mean_word_length": ("q_mean_word_len", False, "high_mean_word_length", "low_quality"),
    "max_duplicate_line_fraction": ("q_dup_line_frac", False, "duplicate_lines", "formatting"),
    "max_duplicate_paragraph_fraction": ("q_dup_para_frac", False, "duplicate_paragraphs", "formatting"),
    "max_symbol_word_ratio": ("q_symbol_ratio", False, "high_symbol_ratio", "formatting"),
    "min_alpha_word_ratio": ("q_alpha_ratio", True, "low_alpha_ratio", "low_quality"),
    "min_stop_words": ("q_stop_words", True, "no_stop_words", "low_quality"),
}
NGRAM_THRESHOLDS = {"top_ngram_max_fraction": "q_top_{n}gram_frac", "duplicate_ngram_max_fraction": "q_dup_{n}gram_frac"}


def _applies(check: str, frame: pl.DataFrame, quality: dict) -> pl.Expr:
    """Whether the quality step ran `check` on each row (it skips some checks per row shape)."""
    is_text = pl.col(TEXT).is_not_null() if TEXT in frame.columns else pl.lit(False)
    in_text, in_instruction = check in (quality.get("text_skip") or []), check in (quality.get("instruction_skip") or [])
    return pl.when(is_text).then(pl.lit(not in_text)).otherwise(pl.lit(not in_instruction))


def _margin(column: str, limit: float, is_min: bool) -> pl.Expr:
    """Relative distance to a threshold: 0 on it, positive inside, negative past it."""
    value = pl.col(column).cast(pl.Float64)
    return ((value - limit) if is_min else (limit - value)) / max(abs(float(limit)), 1e-9)


def threshold_margins(frame: pl.DataFrame, quality: dict) -> list[tuple[str, pl.Expr]]:
    """(issue, margin) for every threshold of the curate config that the row's q_* columns can measure;
    null where the quality step did not apply that check to the row."""
    out = []
    for key, (column, is_min, check, issue) in THRESHOLDS.items():
        limit = quality.get(key)
        if limit is not None and column in frame.columns:
            out.append((issue, pl.when(_applies(check, frame, quality)).then(_margin(column, limit, is_min))))
    enough_words = pl.col("q_words") >= quality.get("ngram_min_words", NGRAM_MIN_WORDS) if "q_words" in frame.columns else pl.lit(True)
    for key, pattern in NGRAM_THRESHOLDS.items():
        for n, limit in (quality.get(key) or {}).items():
            column = pattern.format(n=n)
            if column in frame.columns:
                applies = _applies("repeated_ngrams", frame, quality) & enough_words
                out.append(("low_quality", pl.when(applies).then(_margin(column, limit, False))))
    return out


def _score(margin: pl.Expr) -> pl.Expr:
    return 0.5 + margin.tanh() / 2


def _strength(margin: pl.Expr) -> pl.Expr:
    return (-(margin.clip(lower_bound=0) / BORDER_SCALE)).exp()


def quality_signals(frame: pl.DataFrame, thresholds: dict) -> list[pl.Expr]:
    """Quality score (0.5 + tanh(m) / 2) and borderline-ness (exp(-m / 0.1)) from the smallest relative
    margin m to a threshold, and the same strength per issue (low_quality, formatting); the score and
    borderline-ness are null when nothing can be measured, a strength is then 0."""
    margins = threshold_margins(frame, thresholds)
    if not margins:
        nothing = [pl.lit(None, pl.Float64).alias(QUALITY), pl.lit(None, pl.Float64).alias(BORDERLINE)]
        return nothing + [pl.lit(0.0).alias(column) for column in STRENGTH.values()]
    margin = pl.min_horizontal([m for _, m in margins])
    out = [_score(margin).round(4).alias(QUALITY), _strength(margin).round(4).alias(BORDERLINE)]
    for issue, column in STRENGTH.items():
        mine = [m for group, m in margins if group == issue]
        out.append(_strength(pl.min_horizontal(mine)).fill_null(0).round(4).alias(column) if mine else pl.lit(0.0).alias(column))
    return out


def cluster_sizes(frame: pl.DataFrame, rejects: pl.DataFrame) -> pl.Expr:
    """How many rows (itself included) each kept row represents after deduplication.

    A row's cluster is its `dup_cluster` (else its id); a rejected duplicate joins the cluster of its
    `dup_cluster`, else that of the row its `duplicate_of` names.
    """
    own = pl.col(ID) if DUP_CLUSTER not in frame.columns else pl.coalesce(pl.col(DUP_CLUSTER).cast(pl.String), pl.col(ID))
    keys = frame.select(pl.col(ID), own.alias("key"))
    lookup = dict(keys.iter_rows())
    rejected = []
    if DUPLICATE_OF in rejects.columns or DUP_CLUSTER in rejects.columns:
        clusters = rejects.get_column(DUP_CLUSTER).cast(pl.String).to_list() if DUP_CLUSTER in rejects.columns else [None] * rejects.height
        pointed = rejects.get_column(DUPLICATE_OF).to_list() if DUPLICATE_OF in rejects.columns else [None] * rejects.height
        rejected = [c if c is not None else lookup.get(p, p) for c, p in zip(clusters, pointed, strict=True)]
    every = pl.Series("key", keys.get_column("key").to_list() + [k for k in rejected if k is not None], dtype=pl.String)
    sizes = dict(every.value_counts(name="n").iter_rows())
    return own.replace_strict(sizes, default=1, return_dtype=pl.Int64).alias(CLUSTER)


def pii_signals(frame: pl.DataFrame) -> list[pl.Expr]:
    """Total PII hits over the `pii_<kind>` count columns, and whether any was found."""
    kinds = [c for c, t in frame.schema.items() if c.startswith("pii_") and c != "pii_any" and t.is_integer()]
    total = pl.sum_horizontal(pl.col(c).fill_null(0) for c in kinds).cast(pl.Int64) if kinds else pl.lit(0, pl.Int64)
    flag = pl.col("pii_any").fill_null(False) if "pii_any" in frame.columns else total > 0
    return [total.alias(PII_COUNT), (flag | (total > 0)).alias(PII_ANY)]


def priority(mode: str) -> pl.Expr:
    """The push-order priority in [0, 1] for a `LabelConfig.priority` mode (needs the signal columns)."""
    borderline = pl.col(BORDERLINE).fill_null(0)
    dedup = 1 - 1 / pl.col(CLUSTER).cast(pl.Float64)
    pii = pl.col(PII_ANY).cast(pl.Float64)
    chosen = {
        "quality": borderline,
        "dedup": dedup,
        "pii": pii,
        "none": pl.lit(0.0),
        "default": pl.max_horizontal(pii, borderline, dedup),
    }[mode]
    return chosen.round(4).alias(PRIORITY)


def with_signals(frame: pl.DataFrame, rejects: pl.DataFrame, curate_config: dict, mode: str) -> pl.DataFrame:
    """The version's rows with the review signals added as `_`-prefixed columns."""
    thresholds = (curate_config or {}).get("quality") or {}
    out = frame.with_columns(*quality_signals(frame, thresholds), cluster_sizes(frame, rejects), *pii_signals(frame))
    return out.with_columns(priority(mode))


def push_order(frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Rows by descending priority; ties in a seeded pseudo-random order that does not depend on row order."""
    keys = [hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).hexdigest() for i in frame.get_column(ID).to_list()]
    return (
        frame.with_columns(pl.Series("_tie", keys))
        .sort([PRIORITY, "_tie"], descending=[True, False])
        .drop("_tie")
    )
