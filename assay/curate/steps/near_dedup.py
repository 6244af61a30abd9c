"""MinHash near-deduplication as a curation step (the engine lives in `assay.curate.minhash`).

Every row gets `dup_cluster` (the id of its cluster's kept row), so the split keeps clusters
together; dropped rows record the id they duplicate and the true Jaccard similarity. Rows can
also be checked against existing versions (`against`), which the runner loads.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl
from pydantic import Field

from assay.curate.minhash import (
    DocKeys,
    MinHashConfig,
    doc_keys,
    near_duplicates_against_keys,
    near_duplicates_of_keys,
)
from assay.curate.minhash_texts import LocalGraph
from assay.curate.steps.base import (
    DETAIL,
    DUPLICATE_OF,
    REASON,
    CorpusInput,
    CorpusStep,
    StepContext,
    corpus_step,
    ids_at,
)
from assay.errors import ConfigError
from assay.schema import DUP_CLUSTER, ID, content_text
from assay.store.blocks import Blocks, as_blocks

# StepContext.extra key: the rows to dedup against, as `id` and `text` (a DataFrame, or Blocks read a block at a time)
EXISTING_KEY = "near_dedup.existing"


class NearDedupConfig(MinHashConfig):
    """Options of the `near_dedup` step (MinHash LSH; see MinHashConfig for the scheme)."""

    action: Literal["drop", "flag"] = Field(
        "drop", description="drop: reject near-duplicates; flag: keep every row, only set dup_cluster."
    )
    score_column: str | None = Field(
        None, examples=["q_alpha_ratio"], description="Numeric column used when keep = \"score\" (highest kept), e.g. a q_* signal."
    )
    against: list[str] = Field(
        default_factory=list, description="Dataset versions (ids or tags) whose rows new rows must not near-duplicate."
    )


def _score(df: pl.DataFrame, cfg: NearDedupConfig) -> np.ndarray | None:
    if cfg.keep != "score":
        return None
    if not cfg.score_column or cfg.score_column not in df.columns:
        raise ConfigError(f"near_dedup: keep = \"score\" needs score_column naming a numeric column (got {cfg.score_column!r})",
                          hint="set [curate.near_dedup] score_column, e.g. \"q_alpha_ratio\"")
    return df.get_column(cfg.score_column).cast(pl.Float64).fill_null(float("-inf")).to_numpy()


# Decisions are held for a whole pass (every row of the corpus at once), so they are compact: the kept
# row's id only where a row is not kept itself (null elsewhere), the similarity, and the reason as a
# two-value enum. `_merge` spells them out into the decision columns a block at a time;
# four string columns per row (the kept id on every row) took ~1.3 GB at 10M rows.
_REASONS = pl.Enum(["near_duplicate", "near_duplicate_of_existing"])
_EMPTY = {"_nd_rep": pl.String, "_nd_sim": pl.Float64, "_nd_reason": _REASONS}


def _decide(dec: pl.DataFrame, cfg: NearDedupConfig) -> pl.DataFrame:
    """Compact decisions from `rep_id` (the kept row's id; null when the row is kept), `similarity` and
    `reason` (null when kept)."""
    return dec.select(
        pl.col("rep_id").alias("_nd_rep"),
        pl.col("similarity").cast(pl.Float64).alias("_nd_sim"),
        (pl.col("reason") if cfg.action == "drop" else pl.lit(None)).cast(_REASONS).alias("_nd_reason"),
    )


def _merge(df: pl.DataFrame, decisions: pl.DataFrame) -> pl.DataFrame:
    """The block with `dup_cluster` (its own id when kept) and the decision columns spelled out."""
    rep, dropped = pl.col("_nd_rep"), pl.col("_nd_rep").is_not_null()
    return pl.concat([df.drop(DUP_CLUSTER, strict=False), decisions], how="horizontal").with_columns(
        pl.coalesce(rep, pl.col(ID)).alias(DUP_CLUSTER),
        pl.col("_nd_reason").cast(pl.String).alias(REASON),
        rep.alias(DUPLICATE_OF),
        pl.when(dropped).then(pl.format("jaccard {} with {}", pl.col("_nd_sim").round(3), rep)).alias(DETAIL),
    ).drop(list(_EMPTY))


_KEY_COLUMNS = ("_key", "_key2", "_len")


def _keys(df: pl.DataFrame, cfg: NearDedupConfig, ctx: StepContext) -> pl.DataFrame:
    """Per row: id, text hashes, length and LSH band keys (and the score when keep = "score")."""
    keys = doc_keys(df.select(content_text(ctx.content_columns)).to_series(), cfg)
    score = _score(df, cfg)
    return pl.DataFrame(
        {
            ID: df.get_column(ID),
            "_key": keys.key,
            "_key2": keys.key2,
            "_len": keys.length,
            **{f"_b{b}": keys.bands[b] for b in range(keys.bands.shape[0])},
            **({"_score": score} if score is not None else {}),
        }
    )


class BandColumns:
    """Band keys read a band at a time from the key blocks (`BandReader`), so no more than a band
    per core of a large corpus is held."""

    def __init__(self, keys: Blocks, docs: np.ndarray | None = None) -> None:
        self.keys, self.docs = keys, docs
        n_bands = sum(c.startswith("_b") for c in keys.schema.names())
        self.shape = (n_bands, keys.height if docs is None else len(docs))

    def __getitem__(self, bands: np.ndarray) -> np.ndarray:
        names = [f"_b{b}" for b in bands]
        matrix = np.stack([pl.concat([f.get_column(n) for f in self.keys.frames([n])]).to_numpy() for n in names])
        return matrix if self.docs is None else matrix[:, self.docs]

    def take_docs(self, docs: np.ndarray) -> BandColumns:
        return type(self)(self.keys, docs if self.docs is None else self.docs[docs])


def _doc_keys(data: CorpusInput, *, materialize: bool = False) -> DocKeys:
    """The rows' DocKeys; band keys stay in the key blocks unless `materialize` (read by the engine's
    band reader when it has one)."""
    arrays = [data.frame([c]).to_series().to_numpy() for c in _KEY_COLUMNS]
    bands = (data.band_reader or BandColumns)(data.keys)
    return DocKeys(*arrays, bands[np.arange(bands.shape[0])] if materialize else bands)


def _decide_all(data: CorpusInput, cfg: NearDedupConfig, ctx: StepContext) -> pl.DataFrame:
    existing: pl.DataFrame | Blocks | None = ctx.extra.get(EXISTING_KEY)
    if data.keys.height == 0:
        return pl.DataFrame(schema=_EMPTY)
    score = data.frame(["_score"]).to_series().to_numpy() if "_score" in data.keys.schema else None
    if existing is not None and existing.height:
        return _against(_doc_keys(data, materialize=True), score, as_blocks(existing), data, cfg)
    d = near_duplicates_of_keys(
        _doc_keys(data), data.texts_of, cfg, score=score, scratch=data.scratch, backend=data.pair_graph
    )
    dropped = ~d.get_column("keep").to_numpy()
    return _decide(d.with_columns(
        rep_id=ids_at(data.keys, d.get_column("cluster").to_numpy(), dropped),
        reason=pl.when(~pl.col("keep")).then(pl.lit("near_duplicate")),
    ), cfg)


def _against(
    keys: DocKeys, score: np.ndarray | None, existing: Blocks, data: CorpusInput, cfg: NearDedupConfig
) -> pl.DataFrame:
    """Decisions against existing rows (`existing`: blocks of id and text, read a block at a time: their
    keys are computed per block, then only candidate rows' texts and ids are read again)."""
    both = DocKeys.concat([*(doc_keys(f.to_series(), cfg) for f in existing.frames(["text"])), keys])
    backend = (data.pair_graph or LocalGraph(data.texts_of, data.scratch)).leading(existing)
    d = near_duplicates_against_keys(both, existing.height, backend, cfg, score=score)
    of_old, of_new = d.get_column("duplicate_of_existing"), d.get_column("duplicate_of")
    has_old, has_new = of_old.is_not_null(), of_new.is_not_null()
    old = ids_at(existing, of_old.fill_null(0).to_numpy(), has_old.to_numpy())
    new = ids_at(data.keys, of_new.fill_null(0).to_numpy(), (has_new & ~has_old).to_numpy())
    return _decide(d.with_columns(
        rep_id=pl.coalesce(old, new),
        reason=pl.when(has_old).then(pl.lit("near_duplicate_of_existing")).when(has_new).then(pl.lit("near_duplicate")),
    ), cfg)


near_dedup = corpus_step(
    "near_dedup", NearDedupConfig, CorpusStep(_keys, _decide_all, _merge),
    "Reject (or flag) MinHash near-duplicates, keeping one row per cluster by the keep rule.", is_filter=True,
)
