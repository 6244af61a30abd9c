"""The step contract: a small function over a LazyFrame with a typed config.

A *transform* returns the frame with changed or added columns. A *filter* also adds
`_reason` (null keeps the row) and may add `_detail` and `_duplicate_of`; the runner turns
those into rejects, so a step never drops a row itself and never touches disk.

Most steps look at one row at a time, so the engine runs them on each block of rows. A step that
needs the whole corpus (dedup, split) is a `CorpusStep`: small per-row keys from each block, one
decision over all keys, then the decision merged into each block; its whole-frame function is
that composition, so the two ways of running it cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl
from pydantic import BaseModel

from assay.schema import ID, content_text
from assay.store.blocks import Blocks, FrameBlocks, values_at

if TYPE_CHECKING:
    from assay.curate.minhash_lsh import BandReader
    from assay.curate.minhash_texts import PairGraph

REASON, DETAIL, DUPLICATE_OF = "_reason", "_detail", "_duplicate_of"
DECISION_COLUMNS = (REASON, DETAIL, DUPLICATE_OF)


@dataclass(frozen=True)
class StepContext:
    """What a step may know besides its config: the run's seed and the frame's content columns."""

    seed: int = 0
    content_columns: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict)


StepFn = Callable[[pl.LazyFrame, BaseModel, StepContext], pl.LazyFrame]
# The content text of some rows of a step's input (sorted, unique positions), in that order, in pieces.
TextsOf = Callable[[np.ndarray], Iterator[pl.Series]]


@dataclass(frozen=True)
class CorpusInput:
    """What a corpus step decides from: every row's keys (as blocks, maybe spilled), the input's
    schema and a text reader."""

    keys: Blocks
    schema: pl.Schema
    texts_of: TextsOf
    scratch: Path | None = None  # a folder for large intermediate files (the run's spill folder)
    # How near-dedup reads LSH band keys from `keys` (None: from the blocks, a band at a time); the Ray
    # engine's reader also finds each band's bucket pairs in a task of its own.
    band_reader: Callable[[Blocks], BandReader] | None = None
    # Where near-dedup measures candidate pairs and joins clusters (None: in this process, from `texts_of`).
    pair_graph: PairGraph | None = None

    def frame(self, columns: list[str] | None = None) -> pl.DataFrame:
        """The keys (or some of their columns) as one frame."""
        return pl.concat(list(self.keys.frames(columns)))


def ids_at(keys: Blocks, rows: np.ndarray, where: np.ndarray) -> pl.Series:
    """Per row k, the id of the row at position `rows[k]` of the key blocks where `where[k]`, else null.

    Only the ids asked for are taken (block by block), so a corpus step's decisions need not hold every
    row's id: decisions name other rows (the row a duplicate copies) for a few rows only.
    """
    wanted = np.unique(rows[where])
    taken = pl.concat([pl.Series(ID, [], dtype=pl.String), *values_at(keys, wanted, ID)]).gather(np.searchsorted(wanted, rows[where]))
    return pl.repeat(None, len(rows), dtype=pl.String, eager=True).scatter(np.flatnonzero(where), taken).alias(ID)


@dataclass(frozen=True)
class CorpusStep:
    """A step over the whole corpus, split so that only small per-row keys are held at once.

    `keys(block)` -> per-row keys; `decide(all keys)` -> per-row decision columns, in row order;
    `merge(block, its decisions)` -> the block as the whole-frame step would have returned it.
    """

    keys: Callable[[pl.DataFrame, BaseModel, StepContext], pl.DataFrame]
    decide: Callable[[CorpusInput, BaseModel, StepContext], pl.DataFrame]
    merge: Callable[[pl.DataFrame, pl.DataFrame], pl.DataFrame]

    def whole(self, lf: pl.LazyFrame, cfg: BaseModel, ctx: StepContext) -> pl.LazyFrame:
        """The step on one frame holding every row."""
        df = lf.collect()
        texts = df.select(content_text(ctx.content_columns)).to_series() if ctx.content_columns else None

        def texts_of(rows: np.ndarray) -> Iterator[pl.Series]:
            assert texts is not None, "a step asked for texts of a frame without content columns"
            yield texts.gather(rows)

        keys = FrameBlocks(self.keys(df, cfg, ctx))
        decisions = self.decide(CorpusInput(keys, df.schema, texts_of), cfg, ctx)
        return self.merge(df, decisions).lazy()


@dataclass(frozen=True)
class Step:
    name: str
    config: type[BaseModel]
    fn: StepFn
    is_filter: bool
    doc: str
    corpus: CorpusStep | None = None
    # Whether the step may rewrite content columns (the engine counts the rows it changed only then).
    rewrites_content: bool = False


REGISTRY: dict[str, Step] = {}


def step(
    name: str, config: type[BaseModel], *, is_filter: bool = False, rewrites_content: bool = True
) -> Callable[[StepFn], StepFn]:
    """Register a row-wise step function under a name the pipeline config can list.

    `rewrites_content=False` declares that the step never changes content columns (it only adds
    columns or decides), so the engine skips comparing them before and after it.
    """

    def wrap(fn: StepFn) -> StepFn:
        REGISTRY[name] = Step(name, config, fn, is_filter, _first_line(fn.__doc__), rewrites_content=rewrites_content)
        return fn

    return wrap


def corpus_step(name: str, config: type[BaseModel], spec: CorpusStep, doc: str, *, is_filter: bool = False) -> StepFn:
    """Register a corpus step; returns its whole-frame function (corpus steps never rewrite content)."""
    REGISTRY[name] = Step(name, config, spec.whole, is_filter, doc, spec)
    return spec.whole


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0]
