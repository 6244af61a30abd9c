"""MinHash LSH near-duplicate detection over many texts at once (DESIGN §5, "MinHash near-dedup").

Stages, each a small function over arrays: signatures of every text (`minhash_signatures`,
tokens from `assay.curate.words`) -> exact copies grouped under their first copy -> LSH band
buckets of first copies -> candidate pairs (`minhash_lsh`) -> true Jaccard of the candidates'
shingle sets -> connected components of the verified pairs -> one kept row per component.
Every dropped row records the kept row it duplicates and their true Jaccard similarity, so
nothing is dropped silently.

    >>> frame = near_duplicates(["the cat sat on the mat today", "The cat sat on the mat today!"], MinHashConfig())
    >>> frame["duplicate_of"].to_list()
    [None, 0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, model_validator

from assay.curate.minhash_lsh import BandReader, band_keys, candidate_pairs, lsh_params
from assay.curate.minhash_signatures import signatures_of
from assay.curate.minhash_texts import LocalGraph, PairGraph, PairTexts, TextsOf, gather_texts
from assay.errors import ConfigError, InputError

Texts = Sequence[str] | pl.Series


class MinHashConfig(BaseModel):
    """Options of MinHash near-deduplication."""

    model_config = ConfigDict(extra="forbid")

    threshold: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="Jaccard similarity of shingle sets at or above which two rows are near-duplicates.",
    )
    num_perm: int = Field(
        128, ge=2, le=1024, description="Permutations per MinHash signature (more: finer estimates, slower)."
    )
    ngram: int = Field(5, ge=1, le=64, description="Shingle size in tokens (words or characters).")
    shingle: Literal["word", "char"] = Field(
        "word",
        description="`word`: lowercased runs of Unicode letters, marks, digits and `_` (punctuation, symbols "
        "and whitespace only separate); `char`: lowercased characters, whitespace runs as one space. "
        "A text shorter than `ngram` tokens is one shingle.",
    )
    seed: int = Field(
        42,
        ge=0,
        lt=2**32,
        description="Seed of the MinHash permutations (and of the text hash that breaks ties).",
    )
    verify: bool = Field(
        True, description="Check every LSH candidate pair by true Jaccard on shingle sets before merging it."
    )
    keep: Literal["first", "longest", "score"] = Field(
        "first",
        description="Row kept per cluster: `first` in input order, `longest` text (ties: content hash), "
        "or highest `score` (ties: longest, then content hash).",
    )
    bands: int | None = Field(None, ge=1, examples=[18], description="LSH bands; unset: chosen from threshold and num_perm (set together with `rows`).")
    rows: int | None = Field(None, ge=1, examples=[6], description="Rows per LSH band; set together with `bands`.")

    @model_validator(mode="after")
    def _bands_and_rows(self) -> MinHashConfig:
        if (self.bands is None) != (self.rows is None):
            raise ValueError(
                "set both `bands` and `rows`, or neither (then they are chosen from `threshold`)"
            )
        if self.bands is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(
                f"`bands` * `rows` = {self.bands * self.rows} exceeds `num_perm` = {self.num_perm}"
            )
        return self

    def lsh(self) -> tuple[int, int]:
        """(bands, rows): as set, else recall-biased when candidates are verified, else datasketch's balance."""
        if self.bands is not None and self.rows is not None:
            return self.bands, self.rows
        if self.verify:
            return lsh_params(self.threshold, self.num_perm)
        return lsh_params(self.threshold, self.num_perm, min_recall=0.0, fp_weight=0.5, fn_weight=0.5)


@dataclass(frozen=True)
class _Graph:
    """Verified near-duplicate edges between rows, and the texts they were measured on."""

    texts: PairTexts
    i: np.ndarray
    j: np.ndarray
    similarity: np.ndarray


@dataclass(frozen=True)
class DocKeys:
    """What near-dedup needs of each document besides its text, computable a block at a time.

    `key` (the seeded text hash) and `key2` (a second one) group exact copies; `key` also breaks
    ties; `length` (characters) serves keep = "longest"; `bands` are the LSH band keys.
    """

    key: np.ndarray
    key2: np.ndarray
    length: np.ndarray
    bands: np.ndarray | BandReader  # (bands, n_docs) uint64, or read on demand

    def __len__(self) -> int:
        return len(self.key)

    @staticmethod
    def concat(parts: Sequence[DocKeys]) -> DocKeys:
        return DocKeys(
            np.concatenate([p.key for p in parts]),
            np.concatenate([p.key2 for p in parts]),
            np.concatenate([p.length for p in parts]),
            np.concatenate([p.bands for p in parts], axis=1),
        )


# The second text hash's seed: any fixed value other than the first's gives an independent 64 bits.
_KEY2_SALT = 0x9E3779B97F4A7C15


def doc_keys(texts: Texts, cfg: MinHashConfig) -> DocKeys:
    """Hashes, lengths and LSH band keys of texts; each row's keys depend on its text alone."""
    series = _as_series(texts, "texts")
    bands, per_band = cfg.lsh()
    sig = signatures_of(
        series, kind=cfg.shingle, n=cfg.ngram, num_perm=cfg.num_perm, seed=cfg.seed, used=bands * per_band
    )
    return DocKeys(
        series.hash(cfg.seed).to_numpy(),
        series.hash(cfg.seed ^ _KEY2_SALT).to_numpy(),
        series.str.len_chars().to_numpy().astype(np.int64),
        band_keys(sig, bands, per_band),
    )


def near_duplicates(texts: Texts, cfg: MinHashConfig, *, score: np.ndarray | None = None) -> pl.DataFrame:
    """One row per input, in input order: `cluster`, `keep`, `duplicate_of`, `similarity`.

    `cluster` is the index of the cluster's kept row (a row alone is its own cluster);
    `duplicate_of` is that index for dropped rows (null when kept) and `similarity` the true
    Jaccard of the dropped row's shingles with the kept row's. Clusters are connected
    components, so a dropped row reached through a chain can be less similar to the kept
    row than the threshold; `similarity` shows it.

    >>> near_duplicates(["a b c", "x y z", "a b c"], MinHashConfig(ngram=2))["duplicate_of"].to_list()
    [None, None, 0]
    """
    series = _as_series(texts, "texts")
    return near_duplicates_of_keys(doc_keys(series, cfg), gather_texts(series), cfg, score=score)


def near_duplicates_of_keys(
    keys: DocKeys,
    texts_of: TextsOf,
    cfg: MinHashConfig,
    *,
    score: np.ndarray | None = None,
    scratch: Path | None = None,
    backend: PairGraph | None = None,
) -> pl.DataFrame:
    """`near_duplicates` from precomputed keys; texts are read only for candidate rows, by `backend`
    (default: a `LocalGraph` over `texts_of` and `scratch`)."""
    _check_score(cfg, score, len(keys))
    backend = backend or LocalGraph(texts_of, scratch)
    graph = _near_duplicate_graph(keys, backend, cfg)
    try:
        label = backend.components(len(keys), graph.i, graph.j)
        # keep = "first" keeps each component's smallest row, which is its label: no sort needed
        kept = label if cfg.keep == "first" else _kept_rows(label, keys, cfg, score)
        return _decisions(kept, graph)
    finally:
        graph.texts.close()


def near_duplicates_against(
    new: Texts, existing: Texts, cfg: MinHashConfig, *, score: np.ndarray | None = None
) -> pl.DataFrame:
    """Dedup a new batch against an existing set and within itself; one row per `new` row, in order.

    Columns: `keep`; `duplicate_of_existing`, the index in `existing` of the row it matched
    (its most similar verified neighbour there, or the first existing row of its cluster when
    reached only through other new rows); `duplicate_of`, the index in `new` of the kept row
    of its cluster when the cluster holds no existing row; `similarity` to whichever of the two
    is set. Pairs within `existing` are never compared: it is taken as already curated.
    """
    old, fresh = _as_series(existing, "existing"), _as_series(new, "new")
    both = pl.concat([old, fresh])
    keys = DocKeys.concat([doc_keys(old, cfg), doc_keys(fresh, cfg)])
    return near_duplicates_against_keys(keys, len(old), LocalGraph(gather_texts(both)), cfg, score=score)


def near_duplicates_against_keys(
    keys: DocKeys, n_old: int, backend: PairGraph, cfg: MinHashConfig, *, score: np.ndarray | None = None
) -> pl.DataFrame:
    """`near_duplicates_against` from the keys of existing rows followed by new ones (the first n_old);
    `backend` measures pairs and joins clusters over the same rows."""
    _check_score(cfg, score, len(keys) - n_old)
    graph = _near_duplicate_graph(keys, backend, cfg, n_old=n_old)
    try:
        return _against_decisions(keys, n_old, graph, backend.components(len(keys), graph.i, graph.j), cfg, score)
    finally:
        graph.texts.close()


def _against_decisions(
    keys: DocKeys, n_old: int, graph: _Graph, label: np.ndarray, cfg: MinHashConfig, score: np.ndarray | None
) -> pl.DataFrame:
    n_new = len(keys) - n_old
    target = _existing_targets(graph, label, n_old)[n_old:]
    kept = _kept_rows(label[n_old:], _slice_keys(keys, n_old), cfg, score)
    rows = np.arange(n_new)
    within = np.where((target < 0) & (kept != rows), kept, -1)
    dropped = (target >= 0) | (within >= 0)
    sim = np.full(n_new, np.nan)
    pointed = np.where(target >= 0, target, within + n_old)
    sim[dropped] = _similarity(graph, rows[dropped] + n_old, pointed[dropped])
    return pl.DataFrame(
        {
            "keep": ~dropped,
            "duplicate_of_existing": _index_or_null(target),
            "duplicate_of": _index_or_null(within),
            "similarity": pl.Series(sim).fill_nan(None),
        }
    )


def _slice_keys(keys: DocKeys, start: int) -> DocKeys:
    """The keys of rows from `start` on, without band keys (picking kept rows needs none)."""
    return DocKeys(keys.key[start:], keys.key2[start:], keys.length[start:], np.zeros((0, len(keys) - start), np.uint64))


def _near_duplicate_graph(keys: DocKeys, backend: PairGraph, cfg: MinHashConfig, *, n_old: int = 0) -> _Graph:
    """Exact copies joined to their first copy, plus verified LSH pairs among first copies.

    Pairs with both rows below `n_old` (both in an existing set) are dropped before verification.
    """
    rows = np.arange(len(keys))
    first = _first_copy(keys)
    i, j = _lsh_candidates(keys.bands, np.flatnonzero(first == rows), keys.key)
    i, j = i[j >= n_old], j[j >= n_old]
    copies = np.flatnonzero((first != rows) & (rows >= n_old))
    texts = backend.pair_texts(np.concatenate([i, j, copies, first[copies]]), cfg)
    sim = texts.jaccard(i, j)
    if cfg.verify:
        i, j, sim = i[sim >= cfg.threshold], j[sim >= cfg.threshold], sim[sim >= cfg.threshold]
    return _Graph(
        texts,
        np.concatenate([i, first[copies]]),
        np.concatenate([j, copies]),
        np.concatenate([sim, np.ones(len(copies))]),
    )


def _first_copy(keys: DocKeys) -> np.ndarray:
    """Index of the first row with the same text (the row itself when it is the first).

    Rows are grouped by two independent 64-bit text hashes, so telling copies from a collision
    needs no text (a 128-bit collision between two different texts is not a practical concern).
    """
    frame = pl.DataFrame({"key": keys.key, "key2": keys.key2}).with_row_index("row")
    return frame.select(pl.col("row").first().over("key", "key2")).to_series().to_numpy().astype(np.int64)


def _lsh_candidates(
    bands: np.ndarray | BandReader, reps: np.ndarray, doc_keys: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs (i < j, row indices) among the first copies; later copies join via their first."""
    if len(reps) < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(reps) < bands.shape[1]:
        bands = bands[:, reps] if isinstance(bands, np.ndarray) else bands.take_docs(reps)
    return candidate_pairs(bands, reps, doc_keys)


def _existing_targets(graph: _Graph, label: np.ndarray, n_old: int) -> np.ndarray:
    """Per row, the existing row it duplicates (-1 for none): best direct match, else its cluster's first."""
    # A cluster's label is its smallest row, an existing one whenever the cluster holds any.
    target = np.where(label < n_old, label, -1)
    direct = pl.DataFrame({"new": graph.j, "old": graph.i, "sim": graph.similarity}).filter(
        pl.col("old") < n_old
    )
    best = direct.sort(["sim", "old"], descending=[True, False]).unique("new", keep="first")
    target[best["new"].to_numpy()] = best["old"].to_numpy()
    return target


def _kept_rows(label: np.ndarray, keys: DocKeys, cfg: MinHashConfig, score: np.ndarray | None) -> np.ndarray:
    """Per row, the index of the row its component keeps, by the configured rule.

    Only `first` looks at input positions; `longest` and `score` break ties by a hash of the
    text (Polars' `hash`, fixed for a Polars version), so they pick the same text whatever the
    input order.
    """
    _, component = np.unique(label, return_inverse=True)
    order_keys: list[np.ndarray] = [np.arange(len(label))]
    if cfg.keep != "first":
        order_keys += [keys.key, -keys.length]
    if cfg.keep == "score":
        order_keys.append(-np.nan_to_num(np.asarray(score, np.float64), nan=-np.inf))
    order = np.lexsort([*order_keys, component])
    leaders = np.ones(len(order), bool)
    leaders[1:] = component[order][1:] != component[order][:-1]
    winner = np.empty(component.max() + 1 if len(component) else 0, np.int64)
    winner[component[order][leaders]] = order[leaders]
    return winner[component]


def _decisions(kept: np.ndarray, graph: _Graph) -> pl.DataFrame:
    rows = np.arange(len(kept))
    dropped = kept != rows
    sim = np.full(len(kept), np.nan)
    sim[dropped] = _similarity(graph, rows[dropped], kept[dropped])
    return pl.DataFrame(
        {
            "cluster": pl.Series(kept, dtype=pl.Int64),
            "keep": ~dropped,
            "duplicate_of": _index_or_null(np.where(dropped, kept, -1)),
            "similarity": pl.Series(sim).fill_nan(None),
        }
    )


def _similarity(graph: _Graph, rows: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """True Jaccard of rows[k] and targets[k]: looked up when the two share an edge, else measured."""
    edges = pl.DataFrame({"a": graph.i, "b": graph.j, "sim": graph.similarity}).unique(["a", "b"])
    asked = pl.DataFrame({"a": np.minimum(rows, targets), "b": np.maximum(rows, targets)})
    sim = (
        asked.join(edges, on=["a", "b"], how="left", maintain_order="left")["sim"]
        .to_numpy()
        .astype(np.float64)
    )
    missing = np.isnan(sim)
    sim[missing] = graph.texts.jaccard(rows[missing], targets[missing])
    return sim


def _index_or_null(values: np.ndarray) -> pl.Series:
    """Row indices as Int64, with -1 (no row) as null."""
    return pl.Series(values, dtype=pl.Int64).replace(-1, None)


def _as_series(texts: Texts, name: str) -> pl.Series:
    series = texts if isinstance(texts, pl.Series) else pl.Series(name, list(texts), dtype=pl.String)
    if series.dtype != pl.String:
        raise InputError(
            f"`{name}` must hold strings, got {series.dtype}", hint="pass the text column itself"
        )
    if series.null_count():
        first = series.is_null().arg_max()
        raise InputError(
            f"`{name}` has {series.null_count()} null text(s), the first at index {first}",
            hint="fill nulls with an empty string or filter those rows before near-dedup",
        )
    return series


def _check_score(cfg: MinHashConfig, score: np.ndarray | None, n: int) -> None:
    if cfg.keep == "score" and score is None:
        raise ConfigError(
            'keep = "score" needs a score per row', hint="pass score=..., or set keep to first or longest"
        )
    if cfg.keep != "score" and score is not None:
        raise ConfigError(f'a score was given but keep = "{cfg.keep}" ignores it', hint='set keep = "score"')
    if score is not None and len(score) != n:
        raise InputError(
            f"score has {len(score)} values for {n} texts", hint="pass one score per text, in order"
        )
