"""Default curation pipeline at growing sizes: docs/s, wall time and peak RSS, 10k → 1M documents.

Documents are English sentences recombined from GSM8K (read at run time from ../shared/data,
never copied) with 10 % planted near-duplicates, written once as JSONL. Each size runs the real
command, `assay curate run FILE --json`, in a fresh workspace as its own process, so the numbers
are whole-process (interpreter start, imports, reading, every step, writing the version).
The baseline is the smallest size in the same command: the last column is how time per document
grows relative to it (1.0 = linear scaling).

    .venv/bin/python bench/curate.py                       # 10k, 100k, 1M
    .venv/bin/python bench/curate.py --sizes 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dedup import corpus  # noqa: E402  (the same corpus as the near-dedup benchmark)

ASSAY = Path(sys.executable).parent / "assay"


def write_corpus(n: int, path: Path, seed: int) -> None:
    docs, _ = corpus(n, seed)
    with path.open("w", encoding="utf-8") as fh:
        for doc in docs:
            fh.write(json.dumps({"text": doc}) + "\n")


def run_once(data: Path, workdir: Path) -> dict:
    """One `assay curate run` in a fresh workspace; wall time and the child's own peak RSS."""
    ws = workdir / "ws"
    subprocess.run([str(ASSAY), "init", str(ws), "--json"], check=True, capture_output=True)
    start = time.perf_counter()
    proc = subprocess.Popen([str(ASSAY), "curate", "run", str(data), "--workspace", str(ws), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out, err = proc.stdout.read(), proc.stderr.read()
    if status != 0:
        raise SystemExit(f"assay curate run failed ({status}):\n{err}\n{out}")
    result = json.loads(out)
    return {"wall_s": wall, "peak_rss_gb": usage.ru_maxrss / 1024**2, "cpu_s": usage.ru_utime + usage.ru_stime,
            "counts": result["counts"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}, load before: {os.getloadavg()[0]:.2f}")
    base_rate = None
    print(f"{'docs':>10} {'wall s':>8} {'docs/s':>9} {'cpu s':>8} {'peak RSS GB':>12} {'kept':>9}  time/doc vs smallest")
    for n in sorted(args.sizes):
        with tempfile.TemporaryDirectory(prefix="assay-bench-") as tmp:
            data = Path(tmp) / f"docs-{n}.jsonl"
            write_corpus(n, data, args.seed)
            r = run_once(data, Path(tmp))
        per_doc = r["wall_s"] / n
        base_rate = base_rate or per_doc
        steps = ", ".join(f"{s['step']} {s['seconds']:.1f}s" for s in r["counts"]["steps"])
        print(f"{n:>10,} {r['wall_s']:>8.1f} {n / r['wall_s']:>9,.0f} {r['cpu_s']:>8.1f} {r['peak_rss_gb']:>12.2f} "
              f"{r['counts']['kept']:>9,}  {per_doc / base_rate:.2f}x")
        print(f"{'':>10} steps: {steps}")


if __name__ == "__main__":
    main()
