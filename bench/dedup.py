r"""Near-dedup benchmark: assay's vectorised MinHash LSH against a plain datasketch loop.

Builds a corpus of English documents (sentences of GSM8K recombined, read at run time) with
10 % planted near-duplicates (1-4 word edits), then runs each engine as a fresh subprocess on
the same parquet file, so the reported rate is the whole process: interpreter start, imports,
reading, shingling, hashing, LSH and clustering. CPU time and peak RSS come from wait4() per
child; on a shared machine compare CPU seconds as well as wall time, and note the load printed.
Recall is scored per true Jaccard band of the planted pairs (word 5-grams of `\w+` tokens of the
lowercased text, the tokenisation both engines use here).

    .venv/bin/python bench/dedup.py                           # 100k documents, both engines
    .venv/bin/python bench/dedup.py --skip-datasketch --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GSM8K = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "train.jsonl"
)  # never copied into the repo
BANDS = [(0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.0001)]
WORD = re.compile(r"\w+")


# ---- corpus -------------------------------------------------------------------------------


def sentences(path: Path) -> list[str]:
    """Natural sentences from GSM8K questions and answers, without calculator annotations."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        text = re.sub(r"<<[^>]*>>", "", f"{row['question']}\n{row['answer']}")
        text = re.sub(r"####.*", "", text)
        out += [s.strip() for s in re.split(r"(?<=[.?!])\s+|\n+", text) if len(s.split()) >= 3]
    return out


def document(rng: random.Random, pool: list[str]) -> str:
    """Sentences drawn at random until the document is 750-1000 characters long."""
    target, parts, size = rng.randint(750, 1000), [], 0
    while size < target:
        parts.append(rng.choice(pool))
        size += len(parts[-1]) + 1
    return " ".join(parts)


def edit(rng: random.Random, text: str, vocab: list[str]) -> str:
    """1-4 random word edits: substitutions, insertions, deletions."""
    words = text.split()
    for _ in range(rng.randint(1, 4)):
        op, at = rng.choice("sid"), rng.randrange(len(words))
        if op == "s":
            words[at] = rng.choice(vocab)
        elif op == "i":
            words.insert(at, rng.choice(vocab))
        elif len(words) > 1:
            del words[at]
    return " ".join(words)


def corpus(n_docs: int, seed: int, path: Path = GSM8K) -> tuple[list[str], list[tuple[int, int]]]:
    """Documents in shuffled order and the planted (source, near-duplicate) position pairs."""
    rng = random.Random(seed)
    pool = sentences(path)
    vocab = sorted({w for s in pool[:5000] for w in s.split()})
    n_dup = n_docs // 10
    docs = [document(rng, pool) for _ in range(n_docs - n_dup)]
    sources = rng.sample(range(len(docs)), n_dup)
    docs += [edit(rng, docs[s], vocab) for s in sources]
    order = list(range(n_docs))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    pairs = [(position[s], position[n_docs - n_dup + k]) for k, s in enumerate(sources)]
    return [docs[i] for i in order], pairs


# ---- the two engines, each run in a child process ----------------------------------------


def run_assay(texts_path: str, out_path: str) -> None:
    start = time.perf_counter()
    import polars as pl

    from assay.curate.minhash import MinHashConfig, near_duplicates

    imported = time.perf_counter()
    texts = pl.read_parquet(texts_path)["text"]
    read = time.perf_counter()
    result = near_duplicates(texts, MinHashConfig())
    done = time.perf_counter()
    result.select("cluster", "duplicate_of").write_parquet(out_path)
    print(
        f"{'':>12}in the child: imports {imported - start:.2f} s, read {read - imported:.2f} s, "
        f"near_duplicates {done - read:.2f} s, write {time.perf_counter() - done:.2f} s"
    )


# The plain loop's settings: assay's MinHashConfig defaults (bench/curate.py checks that they agree).
DS_THRESHOLD, DS_NUM_PERM, DS_NGRAM = 0.8, 128, 5


def run_datasketch(texts_path: str, out_path: str) -> None:
    """The plain loop: one MinHash per document, query-then-insert, first occurrence kept.

    Reads a Parquet file of texts, or a JSON Lines file with a `text` field (the file `assay curate run`
    reads, so both processes start from the same input)."""
    import polars as pl
    from datasketch import MinHash, MinHashLSH

    read = pl.read_ndjson if texts_path.endswith(".jsonl") else pl.read_parquet
    texts = read(texts_path)["text"].to_list()
    lsh = MinHashLSH(threshold=DS_THRESHOLD, num_perm=DS_NUM_PERM)
    duplicate_of: list[int | None] = []
    for i, text in enumerate(texts):
        words = WORD.findall(text.lower())
        grams = [" ".join(words[k : k + DS_NGRAM]) for k in range(max(len(words) - DS_NGRAM + 1, 1))]
        m = MinHash(num_perm=DS_NUM_PERM)
        m.update_batch([g.encode("utf-8") for g in grams])
        hits = lsh.query(m)
        duplicate_of.append(min(hits) if hits else None)
        if not hits:
            lsh.insert(i, m)
    cluster = [i if d is None else d for i, d in enumerate(duplicate_of)]
    pl.DataFrame(
        {"cluster": cluster, "duplicate_of": duplicate_of},
        schema={"cluster": pl.Int64, "duplicate_of": pl.Int64},
    ).write_parquet(out_path)


def timed_child(engine: str, texts_path: str, out_path: str) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system) and peak RSS (MiB) of one engine in a fresh interpreter."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--engine", engine, texts_path, out_path])
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{engine} child failed with status {status}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


# ---- scoring -------------------------------------------------------------------------------


def grams(text: str) -> set[str]:
    words = WORD.findall(text.lower())
    return {" ".join(words[k : k + 5]) for k in range(max(len(words) - 4, 1))}


def jaccard(a: str, b: str) -> float:
    x, y = grams(a), grams(b)
    return len(x & y) / len(x | y)


def score(texts: list[str], pairs: list[tuple[int, int]], out_path: str) -> dict:
    """Recall of planted pairs per true-Jaccard band, and merges whose true Jaccard is < 0.5."""
    import polars as pl

    result = pl.read_parquet(out_path)
    cluster, dup_of = result["cluster"].to_list(), result["duplicate_of"].to_list()
    recall = {}
    for lo, hi in BANDS:
        hits = [cluster[s] == cluster[d] for s, d in pairs if lo <= jaccard(texts[s], texts[d]) < hi]
        recall[f"[{lo},{min(hi, 1.0)}]"] = (sum(hits) / len(hits) if hits else float("nan"), len(hits))
    merged = [(i, k) for i, k in enumerate(dup_of) if k is not None]
    false_merges = sum(jaccard(texts[i], texts[k]) < 0.5 for i, k in merged)
    return {"recall": recall, "dropped": len(merged), "false_merges": false_merges}


def report(name: str, n_docs: int, wall: float, cpu: float, rss: float, quality: dict) -> None:
    bands = "  ".join(f"J{band}: {r:.4f} (n={n})" for band, (r, n) in quality["recall"].items())
    print(
        f"{name:>10}: {n_docs / wall:9,.0f} docs/s  wall {wall:6.2f} s  cpu {cpu:6.2f} s  peak RSS {rss:6.0f} MiB"
    )
    print(f"{'':>10}  recall {bands}")
    print(
        f"{'':>10}  dropped {quality['dropped']}, merged pairs with true J < 0.5: {quality['false_merges']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=100_000, help="number of documents (default 100000)")
    parser.add_argument("--seed", type=int, default=0, help="corpus seed")
    parser.add_argument("--gsm8k", type=Path, default=GSM8K, help=f"GSM8K train.jsonl (default {GSM8K})")
    parser.add_argument(
        "--skip-datasketch", action="store_true", help="run only assay (the loop takes ~1 min)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of the assay side (each reported)")
    parser.add_argument("--engine", choices=["assay", "datasketch"], help=argparse.SUPPRESS)
    parser.add_argument("paths", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine:
        return {"assay": run_assay, "datasketch": run_datasketch}[args.engine](*args.paths)

    import polars as pl

    texts, pairs = corpus(args.docs, args.seed, args.gsm8k)
    print(
        f"corpus: {len(texts)} docs, mean {sum(map(len, texts)) / len(texts):.0f} chars, {len(pairs)} planted pairs"
    )
    print(
        f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} on {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as tmp:
        texts_path = f"{tmp}/texts.parquet"
        pl.DataFrame({"text": texts}).write_parquet(texts_path)
        rates: dict[str, float] = {}
        runs = ["assay"] * args.repeat + ([] if args.skip_datasketch else ["datasketch"])
        for engine in runs:
            out_path = f"{tmp}/{engine}.parquet"
            wall, cpu, rss = timed_child(engine, texts_path, out_path)
            rates[engine] = max(rates.get(engine, 0.0), len(texts) / wall)
            report(engine, len(texts), wall, cpu, rss, score(texts, pairs, out_path))
            print(f"{'':>12}load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if len(rates) == 2:
        print(
            f"     ratio: assay (best run) is {rates['assay'] / rates['datasketch']:.1f}x the datasketch loop"
        )


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
