"""Near-dedup's corpus-wide work as Ray tasks: band buckets, candidate verification and clusters.

The driver holds per-row keys and the pair lists; texts stay in the blocks of Ray's object store:

- **Band buckets** (`RayBands`): a shuffle of band columns, a task per band finding its buckets' pairs.
- **Verification** (`RayGraph.pair_texts`): candidate pairs are cut into groups; a task per block
  sends each group the texts of its rows there (a shuffle), and a task per group measures its pairs.
  No process reads every candidate's text. Dedup against existing versions reads their texts on the
  driver a block at a time (`RayGraph.leading`) and shuffles the blocks holding candidates the same way.
- **Clusters** (`RayGraph.components`): large-star/small-star rounds over edge partitions
  (`minhash_lsh.star_components`), a task per partition and round.

Each stage runs the local engine's functions on its share (`bucket_pairs`, `measure_pairs`,
`star_round`), so the decisions are the local ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from assay.curate.minhash import MinHashConfig
from assay.curate.minhash_lsh import bucket_pairs, star_components, star_round
from assay.curate.minhash_texts import VERIFY_BATCH, measure_pairs
from assay.curate.ray_common import frame_of, get, ray_module
from assay.curate.spill import Parts
from assay.curate.steps.near_dedup import BandColumns
from assay.schema import TEXT, content_columns, content_text
from assay.store.blocks import Blocks

# Pairs measured by one task (in `VERIFY_BATCH`es): its texts are at most twice this many rows.
PAIRS_PER_TASK = 4 * VERIFY_BATCH
# Edges per partition of the cluster rounds: each task holds about this many edges (both directions).
EDGES_PER_PART = 250_000
# Leading rows' blocks hold their text as is (content_text of a lone `text` column is that column).
_LEAD_SCHEMA = pl.Schema({TEXT: pl.String})


class RayBands(BandColumns):
    """LSH band keys in Ray's object store, for near-dedup's decision (read on the driver as locally).

    Bucket pairs are found by a shuffle: a task per key block splits it into one column per band (the
    map side), then a task per band gathers that band's column from every block and finds its buckets'
    pairs (`bucket_pairs`, the local engine's function).
    """

    def bucket_pairs(self, docs: np.ndarray, anchor: np.ndarray) -> pl.DataFrame:
        ray = ray_module()
        split = ray.remote(_band_columns)
        names = [f"_b{b}" for b in range(self.shape[0])]
        blocks = [e for e in self.keys.entries if e.height]
        columns = [split.options(num_returns=len(names)).remote(e.ref, names) for e in blocks]
        columns = [c if isinstance(c, list) else [c] for c in columns]  # one band: a single ref
        shared = ray.put((self.docs, docs, anchor))
        pairs = ray.remote(_band_pairs)
        calls = [pairs.remote(shared, *(c[b] for c in columns)) for b in range(len(names))]
        return pl.concat([get(ray, c) for c in calls])


def _band_columns(table: pa.Table, names: list[str]) -> tuple | pa.Array:
    """The map side of the band shuffle: a key block's band columns, one output each."""
    out = tuple(table.column(n).combine_chunks() for n in names)
    return out if len(out) > 1 else out[0]


def _band_pairs(shared: tuple, *parts: pa.Array) -> pl.DataFrame:
    """The reduce side: one band's keys from every block, in row order, and its bucket pairs."""
    subset, docs, anchor = shared
    keys = np.concatenate([p.to_numpy(zero_copy_only=False) for p in parts]) if parts else np.zeros(0, np.uint64)
    if subset is not None:
        keys = keys[subset]
    return bucket_pairs(keys[None, :], docs, anchor)


@dataclass
class RayGraph:
    """Candidate pairs measured, and clusters joined, by tasks (a `minhash.PairGraph`) over the blocks
    of a pass (`Parts` of Ray object references)."""

    blocks: Parts
    pairs_per_task: int = PAIRS_PER_TASK
    edges_per_part: int = EDGES_PER_PART
    # Rows before the blocks' (existing versions' texts: blocks with a `text` column, on the driver).
    lead: Blocks | None = None

    def leading(self, texts: Blocks) -> RayGraph:
        """The graph over `texts`' rows followed by the blocks' rows: when pairs are measured, the driver
        reads `texts` a block at a time and hands the text shuffle the blocks that hold candidates."""
        return replace(self, lead=texts)

    def pair_texts(self, rows: np.ndarray, cfg: MinHashConfig) -> _RayPairTexts:
        return _RayPairTexts(self, cfg)  # each group of pairs gets its own rows' texts, so `rows` is not needed

    def components(self, n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        ray = ray_module()
        task = ray.remote(star_round)
        parts = max(2, -(-2 * len(i) // self.edges_per_part))

        def submit(kind: str, parts: int, *routed: Any) -> list:
            return task.options(num_returns=parts + 1).remote(kind, parts, *routed)

        return star_components(n, i, j, parts=parts, submit=submit, fetch=lambda ref: get(ray, ref))


@dataclass
class _RayPairTexts:
    """Pairs measured where the texts are: a shuffle of candidate texts from blocks to pair groups."""

    graph: RayGraph
    cfg: MinHashConfig

    def jaccard(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        if not len(i):
            return np.zeros(0)
        ray = ray_module()
        step = self.graph.pairs_per_task
        groups = [(i[s : s + step], j[s : s + step]) for s in range(0, len(i), step)]
        rows = [np.unique(np.concatenate(g)) for g in groups]
        texts = self._send_texts(ray, rows)
        measure = ray.remote(_measure)
        calls = [measure.remote(self.cfg, *groups[k], rows[k], *(t[k] for t in texts)) for k in range(len(groups))]
        return np.concatenate([get(ray, c) for c in calls])

    def _send_texts(self, ray: Any, rows: list[np.ndarray]) -> list[list]:
        """Per block holding a wanted row: a task sending each group its texts there (refs, group order)."""
        gather = ray.remote(_block_texts)
        sent, start = [], 0
        for height, schema, block in self._sources():
            cuts = [np.searchsorted(r, [start, start + height]) for r in rows]
            wanted = [r[lo:hi] - start for r, (lo, hi) in zip(rows, cuts, strict=True)]
            start += height
            if any(len(w) for w in wanted):
                refs = gather.options(num_returns=len(rows)).remote(block(), schema, wanted)
                sent.append(refs if len(rows) > 1 else [refs])
        return sent

    def _sources(self) -> Iterator[tuple[int, pl.Schema, Callable[[], Any]]]:
        """Every block of rows in order, leading ones first: its height, its content schema, and how to
        get it (a leading block is put in the object store only when it holds a candidate)."""
        if self.graph.lead is not None:
            for frame in self.graph.lead.frames([TEXT]):
                yield frame.height, _LEAD_SCHEMA, lambda frame=frame: frame.to_arrow()
        parts = self.graph.blocks
        content = pl.Schema({c: parts.schema[c] for c in content_columns(parts.schema)})
        for entry in parts.entries:
            yield entry.height, content, lambda entry=entry: entry.ref

    def close(self) -> None:
        pass  # the texts live in the tasks that measured them


def _block_texts(table: pa.Table, schema: pl.Schema, wanted: list[np.ndarray]) -> tuple | pa.Array:
    """The map side of the text shuffle: one block's content texts at each group's positions."""
    block = frame_of(table.select([c for c in schema.names() if c in table.column_names]), schema)
    texts = block.select(content_text(list(schema.names()))).to_series()
    out = tuple(texts.gather(w).to_arrow() for w in wanted)
    return out if len(out) > 1 else out[0]


def _measure(cfg: MinHashConfig, i: np.ndarray, j: np.ndarray, rows: np.ndarray, *texts: pa.Array) -> np.ndarray:
    """The reduce side: a group's pairs measured on its rows' texts (sent block by block, in row order)."""
    series = pl.concat([pl.Series(t, dtype=pl.String) for t in texts]) if texts else pl.Series(dtype=pl.String)
    return measure_pairs(series, rows, i, j, cfg)
