"""LSH banding, candidate pairs, exact verification and connected components, vectorised.

The stages follow datatrove's split (signatures -> buckets -> clusters -> filter), each a plain
function over arrays so it can be tested alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import polars as pl

from assay.curate.minhash_signatures import Shingles
from assay.curate.threads import cores, parallel_map

# A bucket with more members than this gets a star of pairs around one anchor, not all pairs.
MAX_ALL_PAIRS = 32
_MIX = np.uint64(0xBF58476D1CE4E5B9)
# Pairs measured in one go by `jaccard`: 24 bits of pair number leave 40 bits of shingle hash.
_MAX_PAIRS = 1 << 24
# Below these sizes a second thread costs more than it saves.
_MIN_KEYS, _MIN_PAIRS = 200_000, 5_000


def lsh_params(
    threshold: float,
    num_perm: int,
    *,
    min_recall: float = 0.995,
    fp_weight: float = 0.1,
    fn_weight: float = 0.9,
) -> tuple[int, int]:
    """Bands and rows for a Jaccard threshold, biased toward recall because candidates are verified.

    datasketch's `_optimal_param` minimises `fp_weight * FP + fn_weight * FN` (areas under the
    candidate-probability curve below and above the threshold). We keep its objective but only
    among (b, r) whose chance of making a pair *at* the threshold a candidate is >= `min_recall`
    (falling back to the most likely one when none is); verification then removes what the
    generous bands let through. With `min_recall=0` this is datasketch's choice exactly.
    """
    b, r = _grid(num_perm)
    nodes, weights = np.polynomial.legendre.leggauss(num_perm // 2 + 1)  # exact: P(s) has degree <= num_perm
    fp = _integral(lambda s: 1 - (1 - s**r) ** b, 0.0, threshold, nodes, weights)
    fn = _integral(lambda s: (1 - s**r) ** b, threshold, 1.0, nodes, weights)
    error = fp * fp_weight + fn * fn_weight
    at_threshold = 1 - (1 - threshold ** r.astype(float)) ** b
    feasible = at_threshold >= min_recall
    best = np.argmin(np.where(feasible, error, np.inf)) if feasible.any() else np.argmax(at_threshold)
    return int(b[best]), int(r[best])


def _grid(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (bands, rows) with bands * rows <= num_perm, in datasketch's search order."""
    pairs = [(b, r) for b in range(1, num_perm + 1) for r in range(1, num_perm // b + 1)]
    b, r = np.array(pairs).T
    return b, r


def _integral(f, lo: float, hi: float, nodes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Gauss-Legendre integral of f over [lo, hi], vectorised over f's broadcast (b, r) grid."""
    s = (hi - lo) / 2 * nodes[:, None] + (hi + lo) / 2
    return (hi - lo) / 2 * (weights[:, None] * f(s)).sum(axis=0)


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One uint64 per (band, document): the band's rows folded together, salted by the band number."""
    keys = np.repeat((np.arange(1, bands + 1, dtype=np.uint64) * _MIX)[:, None], sig.shape[1], axis=1)
    grouped = sig[: bands * rows].reshape(bands, rows, sig.shape[1])
    for j in range(rows):
        keys ^= grouped[:, j, :]
        keys *= _MIX
        keys ^= keys >> np.uint64(31)
    return keys


class BandReader(Protocol):
    """Band keys read on demand (e.g. from spilled blocks): `reader[bands]` -> (len(bands), n_docs)."""

    shape: tuple[int, int]

    def __getitem__(self, bands: np.ndarray) -> np.ndarray: ...

    def take_docs(self, docs: np.ndarray) -> BandReader: ...


@runtime_checkable
class BucketPairs(Protocol):
    """A band-key reader that finds bucket pairs where the bands are (e.g. a Ray task per band)."""

    def bucket_pairs(self, docs: np.ndarray, anchor: np.ndarray) -> pl.DataFrame: ...


def candidate_pairs(
    keys: np.ndarray | BandReader, docs: np.ndarray, anchor: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Unique (i < j) document pairs sharing a band bucket; bands are split over the cores.

    Keys from a `BandReader` are read one band per work unit, so only a band per core is held.

    Small buckets give all their pairs; a bucket over MAX_ALL_PAIRS members gives a star around
    the member with the smallest `anchor` value (a content hash), so hundreds of near-identical
    templates cost linear work and the pairs do not depend on input order.
    """
    if isinstance(keys, BucketPairs):
        pairs = keys.bucket_pairs(docs, anchor).unique()
        return pairs["i"].to_numpy(), pairs["j"].to_numpy()
    n_bands, n_docs = keys.shape
    shares = _shares(n_bands * n_docs, _MIN_KEYS, n_bands) if isinstance(keys, np.ndarray) else n_bands
    groups = np.array_split(np.arange(n_bands), shares)
    parts = parallel_map(lambda g: bucket_pairs(keys[groups[g]], docs, anchor), len(groups))
    pairs = pl.concat(parts).unique()
    return pairs["i"].to_numpy(), pairs["j"].to_numpy()


def _shares(size: int, min_share: int, most: int) -> int:
    """How many threads' worth of work `size` is: one per core, each at least `min_share`."""
    return max(1, min(cores(), most, size // min_share))


def bucket_pairs(keys: np.ndarray, docs: np.ndarray, anchor: np.ndarray) -> pl.DataFrame:
    """Pairs (i < j) of documents sharing a bucket in any of these bands (keys are band-salted)."""
    flat = keys.ravel()
    shared = pl.Series(flat).is_duplicated().to_numpy()
    doc = np.tile(docs, keys.shape[0])[shared]
    members = pl.DataFrame({"key": flat[shared], "doc": doc, "anchor": anchor[doc]})
    members = members.with_columns(size=pl.len().over("key"))
    small = members.filter(pl.col("size") <= MAX_ALL_PAIRS).select("key", "doc")
    every = small.join(small, on="key", suffix="_r").filter(pl.col("doc") < pl.col("doc_r"))
    star = members.filter(pl.col("size") > MAX_ALL_PAIRS).with_columns(
        doc_r=pl.col("doc").sort_by("anchor", "doc").first().over("key")
    )
    return pl.concat(
        [
            every.select(i="doc", j="doc_r"),
            star.filter(pl.col("doc") != pl.col("doc_r")).select(
                i=pl.min_horizontal("doc", "doc_r"), j=pl.max_horizontal("doc", "doc_r")
            ),
        ]
    )


def jaccard(shingles: Shingles, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """True Jaccard similarity of the shingle *sets* of documents i[k] and j[k], for every k.

    Pairs are split over the cores; see `_jaccard` for how one share is measured.
    """
    step = max(1, min(_MAX_PAIRS, -(-len(i) // _shares(len(i), _MIN_PAIRS, len(i)))))
    starts = range(0, len(i), step)
    parts = parallel_map(
        lambda k: _jaccard(shingles, i[starts[k] : starts[k] + step], j[starts[k] : starts[k] + step]),
        len(starts),
    )
    return np.concatenate(parts) if parts else np.zeros(0)


def _jaccard(shingles: Shingles, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Each shingle becomes one uint64 key: the pair number in the high bits, the shingle hash
    in the rest (at least 40 bits, so two distinct shingles of a pair collide with odds below
    1e-7). Set sizes and the union then come from three hash `unique`s, with no join.
    """
    shift = np.uint64(64 - max(int(len(i)).bit_length(), 1))
    set_a, set_b = _pair_set(shingles, i, shift), _pair_set(shingles, j, shift)
    union = pl.Series(np.concatenate([set_a, set_b])).unique().to_numpy()
    n_a, n_b, n_union = (
        np.bincount((s >> shift).astype(np.int64), minlength=len(i)) for s in (set_a, set_b, union)
    )
    return (n_a + n_b - n_union) / np.maximum(n_union, 1)


def _pair_set(shingles: Shingles, docs: np.ndarray, shift: np.uint64) -> np.ndarray:
    """Distinct keys `pair << shift | shingle hash >> (64 - shift)` of docs[pair], for every pair."""
    positions, offsets = shingles.segments(docs)
    pair = np.repeat(np.arange(len(docs), dtype=np.uint64), np.diff(offsets))
    keys = (pair << shift) | (shingles.hashes[positions] >> (np.uint64(64) - shift))
    return pl.Series(keys).unique().to_numpy()


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected components of n nodes and edges (i, j): each node's label is its component's smallest node.

    Vectorised union-find: hook every edge's larger root under its smaller root, compress paths
    by pointer jumping, repeat until no edge joins two roots. Labels only ever decrease, so the
    loop ends, and the smallest node of a component is its only root.
    """
    parent = np.arange(n)
    while True:
        ri, rj = parent[i], parent[j]
        lo, hi = np.minimum(ri, rj), np.maximum(ri, rj)
        joins = lo < hi
        if not joins.any():
            return parent
        np.minimum.at(parent, hi[joins], lo[joins])
        while True:
            jumped = parent[parent]
            if np.array_equal(jumped, parent):
                break
            parent = jumped


# ---- connected components over edge partitions: alternating large-star and small-star rounds ------
#
# `components` above holds every node in one array. For a graph spread over machines, assay runs the
# large-star/small-star method (Kiveris et al., "Connected Components in MapReduce and Beyond", 2014):
# each round groups the edges by one endpoint, so a round is one shuffle of edge partitions, and each
# partition holds its share of the edges only. Both rounds keep the components and lower labels, and
# the rounds end in one star per component around its smallest node: the same labels as `components`.
# Edges are frames of Int64 node ids: undirected (lo < hi), or directed (u, v) grouped at u.


def large_star(directed: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Link each node's larger neighbours to the smallest of it and its neighbours.

    `directed` holds each edge once per endpoint, at the partition of its `u`. Returns the new
    undirected edges and how many nodes are not yet in star shape (neither a centre, all of whose
    neighbours are larger, nor a leaf with one smaller neighbour): 0 means the edges are stars, and
    then the new edges are the old ones.
    """
    nodes = directed.group_by("u").agg(m=pl.col("v").min(), n=pl.len())
    unfinished = nodes.filter((pl.col("m") < pl.col("u")) & (pl.col("n") > 1)).height
    edges = (
        directed.filter(pl.col("v") > pl.col("u"))
        .join(nodes.select("u", "m"), on="u")
        .select(lo=pl.min_horizontal("u", "m"), hi=pl.col("v"))
        .unique()
    )
    return edges, unfinished


def small_star(directed: pl.DataFrame) -> pl.DataFrame:
    """Link each node, and its smaller neighbours, to the smallest of those neighbours.

    `directed` holds each edge once, as (u = its larger end, v = its smaller end), at u's partition.
    """
    least = directed.group_by("u").agg(m=pl.col("v").min())
    return pl.concat(
        [
            directed.join(least, on="u").filter(pl.col("v") != pl.col("m")).select(lo="m", hi="v"),
            least.select(lo="m", hi="u"),
        ]
    ).unique()


def route(edges: pl.DataFrame, parts: int, *, both: bool) -> list[pl.DataFrame]:
    """Undirected edges as directed ones for the next round, one frame per partition (by u mod parts):
    both ends for a large-star round, the larger end for a small-star one."""
    directed = [edges.select(u="hi", v="lo")] + ([edges.select(u="lo", v="hi")] if both else [])
    frame = pl.concat(directed).with_columns(_p=pl.col("u") % parts)
    found = {p: f.drop("_p") for (p,), f in frame.partition_by("_p", as_dict=True).items()}
    empty = pl.DataFrame(schema={"u": pl.Int64, "v": pl.Int64})
    return [found.get(p, empty) for p in range(parts)]


def star_round(kind: str, parts: int, *routed: pl.DataFrame) -> tuple:
    """One partition's share of a round, from the frames every partition routed to it: its new edges
    routed for the next round (a small-star after a large-star, and back), then, for a large-star
    round, its count of nodes not yet in star shape (0 after a small-star round)."""
    directed = pl.concat(routed)
    if kind == "large":
        edges, unfinished = large_star(directed)
        return (*route(edges, parts, both=False), unfinished)
    return (*route(small_star(directed), parts, both=True), 0)


def star_components(
    n: int,
    i: np.ndarray,
    j: np.ndarray,
    *,
    parts: int = 1,
    submit: Callable[..., Sequence[Any]] = star_round,
    fetch: Callable[[Any], Any] = lambda x: x,
) -> np.ndarray:
    """`components` by large-star/small-star rounds over `parts` edge partitions.

    `submit(kind, parts, *routed)` runs `star_round` for one partition (here, or as a cluster task
    returning references) and `fetch` reads what it returned; the driver holds only the counts, and
    the final stars, which give every node in an edge its label.
    """
    label = np.arange(n)
    if not len(i):
        return label
    edges = pl.DataFrame({"lo": np.minimum(i, j), "hi": np.maximum(i, j)}, schema={"lo": pl.Int64, "hi": pl.Int64})
    routed = [route(edges.unique(), parts, both=True)]  # routed[source][partition]
    kind = "large"
    while True:
        out = [submit(kind, parts, *(r[p] for r in routed)) for p in range(parts)]
        routed = [list(o[:parts]) for o in out]
        if kind == "large" and sum(fetch(o[parts]) for o in out) == 0:
            break
        kind = "small" if kind == "large" else "large"
    # Stars: each leaf u (routed for a small-star round, at u) points at its centre v.
    for frame in (fetch(f) for r in routed for f in r):
        label[frame.get_column("u").to_numpy()] = frame.get_column("v").to_numpy()
    return label
