"""Default curation pipeline at growing sizes: docs/s, wall time and peak RSS, 10k → 1M documents.

Documents are English sentences recombined from GSM8K (read at run time from ../shared/data,
never copied) with 10 % planted near-duplicates, written once as JSONL. Each size runs the real
command, `assay curate run FILE --json`, in a fresh workspace as its own process, so the numbers
are whole-process (interpreter start, imports, reading, every step, writing the version).
The baseline is the smallest size in the same command: the last column is how time per document
grows relative to it (1.0 = linear scaling).

Sizes above 1M are written in independent blocks of 1M documents (each with its own 10 % planted
near-duplicates), so the generator itself needs no more memory at 10M than at 1M.

    .venv/bin/python bench/curate.py                       # 10k, 100k, 1M
    .venv/bin/python bench/curate.py --sizes 10000 100000
    .venv/bin/python bench/curate.py --sizes 1000000 --baseline 8256357   # the same sizes with an older commit too
    .venv/bin/python bench/curate.py --sizes 100000 --steps near_dedup --datasketch  # the runner's own overhead
    .venv/bin/python bench/curate.py --sizes 100000 --steps near_dedup --step-alone --repeat 3  # ... against the step alone
    .venv/bin/python bench/curate.py --sizes 100000 --steps near_dedup --baseline cdd729b --repeat 3  # noisy machine
    .venv/bin/python bench/curate.py --sizes 10000000 --keep /tmp/corpus  # keep (and reuse) the corpus files
    .venv/bin/python bench/curate.py --sizes 100000 1000000 --engine ray  # the Ray engine beside the local one

With --engine ray each size also runs `assay curate run --engine ray` (a local Ray cluster started by
the command, every core) right after the local engine, and prints the time ratio and whether both wrote
the same version. Its peak RSS and CPU are the driver process's only (Ray's workers are other processes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedup import corpus, timed_child  # noqa: E402  (the corpus of the near-dedup benchmark)

ASSAY = Path(sys.executable).parent / "assay"


BLOCK = 1_000_000


def write_corpus(n: int, path: Path, seed: int) -> None:
    """n documents as JSONL; above 1M, in blocks of 1M generated independently (seed + block)."""
    with path.open("w", encoding="utf-8") as fh:
        for k, start in enumerate(range(0, n, BLOCK)):
            docs, _ = corpus(min(BLOCK, n - start), seed + k)
            fh.writelines(json.dumps({"text": doc}) + "\n" for doc in docs)


def assay_command(tree: Path | None) -> tuple[list[str], dict]:
    """How to run `assay`: this checkout's, or another commit's worktree on the same interpreter."""
    if tree is None:
        return [str(ASSAY)], dict(os.environ)
    return [sys.executable, "-m", "assay"], {**os.environ, "PYTHONPATH": str(tree)}


def run_once(data: Path, workdir: Path, tree: Path | None = None, steps: list[str] | None = None, engine: str = "local") -> dict:
    """One `assay curate run` in a fresh workspace; wall time and the child's own peak RSS."""
    ws = workdir / "ws"
    shutil.rmtree(ws, ignore_errors=True)
    cmd, env = assay_command(tree)
    subprocess.run([*cmd, "init", str(ws), "--json"], check=True, capture_output=True, env=env)
    if steps:
        (ws / "assay.toml").write_text(f"[curate]\nsteps = {json.dumps(steps)}\n")
    start = time.perf_counter()
    chosen = [] if engine == "local" else ["--engine", engine]  # an older baseline has no --engine
    proc = subprocess.Popen([*cmd, "curate", "run", str(data), "--workspace", str(ws), "--json", *chosen],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    if status != 0:
        raise SystemExit(f"assay curate run failed ({status}):\n{err}\n{out}")
    result = json.loads(out)
    return {"wall_s": wall, "peak_rss_gb": usage.ru_maxrss / 1024**2, "cpu_s": usage.ru_utime + usage.ru_stime,
            "counts": result["counts"], "version": result["version"]}


def worktree(ref: str, root: Path) -> Path:
    """A checkout of `ref` (for the baseline engine), made with git worktree under root."""
    path = root / f"tree-{ref}"
    repo = Path(__file__).resolve().parent.parent
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "--detach", "-f", str(path), ref], check=True, capture_output=True)
    return path


def datasketch_run(data: Path, workdir: Path) -> dict:
    """The plain datasketch loop (bench/dedup.py) on the same JSON Lines file, in its own process:
    interpreter start, reading, a MinHash per document with query-then-insert into MinHashLSH, writing
    the clusters. Its settings are assay's defaults (checked here), so only the engines differ."""
    from dedup import DS_NGRAM, DS_NUM_PERM, DS_THRESHOLD

    from assay.curate.minhash import MinHashConfig

    cfg = MinHashConfig()
    ours = (cfg.threshold, cfg.num_perm, cfg.ngram, cfg.shingle)
    if ours != (DS_THRESHOLD, DS_NUM_PERM, DS_NGRAM, "word"):
        raise SystemExit(f"the datasketch loop's settings differ from assay's defaults {ours}")
    wall, cpu, rss = timed_child("datasketch", str(data), str(workdir / "ds.parquet"))
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_gb": rss / 1024}


def step_alone_run(data: Path, workdir: Path) -> dict:
    """`near_duplicates` alone on the same texts, in its own process (bench/dedup.py's assay child):
    interpreter start, imports, reading the texts from Parquet, the MinHash LSH step, writing its
    clusters. What the whole `assay curate run` adds to the step is the runner's overhead."""
    texts = workdir / f"{data.stem}-texts.parquet"
    if not texts.exists():
        import polars as pl

        pl.read_ndjson(data).select("text").write_parquet(texts)
    wall, cpu, rss = timed_child("assay", str(texts), str(workdir / "step.parquet"))
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_gb": rss / 1024}


def report(label: str, n: int, r: dict, base: float) -> None:
    per_doc = r["wall_s"] / n
    steps = ", ".join(f"{s['step']} {s['seconds']:.1f}s" for s in r["counts"]["steps"])
    print(f"{label:>10} {n:>11,} {r['wall_s']:>8.1f} {n / r['wall_s']:>9,.0f} {r['cpu_s']:>8.1f} {r['peak_rss_gb']:>12.2f} "
          f"{r['counts']['kept']:>10,}  {per_doc / base:.2f}x  {r['version']}")
    print(f"{'':>10} steps: {steps}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", metavar="REF", help="also run this git commit's engine on every size, right after ours")
    parser.add_argument("--steps", nargs="+", help="run only these steps (e.g. near_dedup)")
    parser.add_argument("--datasketch", action="store_true", help="also time the plain datasketch loop on each corpus")
    parser.add_argument("--step-alone", action="store_true", help="also time the near_dedup step alone on each corpus "
                        "(after each run of ours), and print the whole process's rate as a share of the step's")
    parser.add_argument("--keep", type=Path, help="write the corpora here and reuse them on later runs")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (alternating with the baseline); "
                        "comparisons use each side's fastest run")
    parser.add_argument("--engine", choices=["ray"], help="also run this engine on every size, right after the local one")
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load before: {os.getloadavg()[0]:.2f}")
    base_rate = None
    print(f"{'engine':>10} {'docs':>11} {'wall s':>8} {'docs/s':>9} {'cpu s':>8} {'peak RSS GB':>12} {'kept':>10}  time/doc vs first  version")
    with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
        root = Path(tmp)
        tree = worktree(args.baseline, root) if args.baseline else None
        for n in sorted(args.sizes):
            folder = args.keep or root
            folder.mkdir(parents=True, exist_ok=True)
            data = folder / f"docs-{n}-seed{args.seed}.jsonl"
            if not data.exists():
                write_corpus(n, data, args.seed)
            ours, theirs, alone = [], [], []
            kinds = ["this", *(["alone"] if args.step_alone else []), *(["base"] if tree is not None else [])]
            # Ours and the others alternate, so all see the same load, and which runs first rotates: the
            # first run after a pause measured 0.2-0.4 s slower than the same code run right after it.
            for k in range(args.repeat):
                print(f"{'':>10} load {os.getloadavg()[0]:.2f}")
                for kind in kinds[k % len(kinds):] + kinds[: k % len(kinds)]:
                    if kind == "this":
                        ours.append(run_once(data, root, steps=args.steps))
                        base_rate = base_rate or ours[-1]["wall_s"] / n
                        report("this", n, ours[-1], base_rate)
                    elif kind == "alone":
                        alone.append(step_alone_run(data, root))
                        print(f"{'step alone':>10} {n:>11,} {alone[-1]['wall_s']:>8.1f} {n / alone[-1]['wall_s']:>9,.0f} "
                              f"{alone[-1]['cpu_s']:>8.1f} {alone[-1]['peak_rss_gb']:>12.2f}  (near_duplicates on the same texts)")
                    else:
                        theirs.append(run_once(data, root, tree, steps=args.steps))
                        report(args.baseline[:10], n, theirs[-1], base_rate)
            r = min(ours, key=lambda x: x["wall_s"])
            if tree is not None:
                b = min(theirs, key=lambda x: x["wall_s"])
                best = f"best of {args.repeat}, " if args.repeat > 1 else ""
                print(f"{'':>10} this / {args.baseline[:10]} ({best}{n / r['wall_s']:,.0f} vs {n / b['wall_s']:,.0f} docs/s): "
                      f"time {r['wall_s'] / b['wall_s']:.2f}x, peak RSS {r['peak_rss_gb'] / b['peak_rss_gb']:.2f}x, "
                      f"same version: {all(x['version'] == b['version'] for x in ours + theirs)}")
            if alone:
                a = min(alone, key=lambda x: x["wall_s"])
                print(f"{'':>10} whole process / step alone (best runs): {n / r['wall_s']:,.0f} / {n / a['wall_s']:,.0f} "
                      f"docs/s = {a['wall_s'] / r['wall_s']:.2f} of the step's rate")
            if args.engine:
                e = run_once(data, root, steps=args.steps, engine=args.engine)
                report(args.engine, n, e, base_rate)
                print(f"{'':>10} {args.engine} / local: time {e['wall_s'] / r['wall_s']:.2f}x, same version: "
                      f"{e['version'] == r['version']} (RSS and CPU: the driver process only)")
            if args.datasketch:
                print(f"{'':>10} load {os.getloadavg()[0]:.2f}")
                d = datasketch_run(data, root)
                print(f"{'datasketch':>10} {n:>11,} {d['wall_s']:>8.1f} {n / d['wall_s']:>9,.0f} {d['cpu_s']:>8.1f} "
                      f"{d['peak_rss_gb']:>12.2f}  (plain MinHash + MinHashLSH loop, threshold 0.8, 128 permutations, "
                      f"word 5-grams; this run is {d['wall_s'] / r['wall_s']:.1f}x its rate)")
        if tree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], capture_output=True)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
