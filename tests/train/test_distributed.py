"""Several processes, no code change: 2 CPU processes (gloo) x batch 2 give the losses of 1 process x batch 4.

The workers report through one JSON file per rank, not through stdout: both ranks leave the last
barrier of `train` together and print into torchrun's one stdout, and where PYTHONUNBUFFERED=1 is set
(as in many shells and CI images) `print("RESULT", x)` is four write() calls, so the two lines
interleave ("RESULTRESULT  {..}{..}") and no line starts with RESULT although torchrun exits 0.
torchrun picks a free port itself (`--standalone`), and the workers get a clean environment.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assay.train import load_train_config, train

from .helpers import pair_frame, quick_config

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, os, sys
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from pathlib import Path
from tests.train.helpers import pair_frame
from assay.train import load_train_config, train
cfg, out = load_train_config(json.loads(sys.argv[1])), Path(sys.argv[2])
result = train(cfg, pair_frame(), out / "run", progress=False)
report = {{"losses": result.manifest["losses"], "counts": result.manifest["counts"],
          "processes": result.manifest["runtime"]["processes"]}}
(out / f"result-{{os.environ['RANK']}}.json").write_text(json.dumps(report))
"""
# What the workers may inherit: where programs and caches are, nothing of the test process's own state
# (RANK, MASTER_PORT, ACCELERATE_*, PYTHON* variables or whatever imported libraries set).
INHERITED = ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "ASSAY_CACHE_DIR")
TORCHRUN = Path(sys.executable).parent / "torchrun"


def settings(base: Path, batch_size: int) -> dict:
    return quick_config(base, max_steps=None, epochs=2, eval_every=2, checkpoint_every=3, batch_size=batch_size)


def worker_env() -> dict[str, str]:
    inherited = {name: os.environ[name] for name in INHERITED if name in os.environ}
    # Unbuffered so that a failing worker's traceback and output arrive complete and in order.
    return inherited | {"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def test_workers_inherit_no_process_group_or_python_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"RANK": "3", "WORLD_SIZE": "4", "MASTER_PORT": "29500", "ACCELERATE_MIXED_PRECISION": "bf16",
                        "PYTHONPATH": "/elsewhere", "KMP_INIT_AT_FORK": "FALSE"}.items():
        monkeypatch.setenv(name, value)
    env = worker_env()
    assert not {"RANK", "WORLD_SIZE", "MASTER_PORT", "ACCELERATE_MIXED_PRECISION", "PYTHONPATH", "KMP_INIT_AT_FORK"} & set(env)
    assert env["PATH"] == os.environ["PATH"] and env["ACCELERATE_USE_CPU"] == "1"


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=str(TORCHRUN.parent)) is None, reason="torchrun not found")
def test_two_processes_match_one_process_with_the_same_global_batch(tiny_base: Path, tmp_path: Path) -> None:
    script, out = tmp_path / "worker.py", tmp_path / "ddp"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    out.mkdir()
    cmd = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", str(script), json.dumps(settings(tiny_base, 2)), str(out)]
    proc = subprocess.run(cmd, env=worker_env(), cwd=tmp_path, capture_output=True, text=True, timeout=240)
    files = sorted(out.glob("result-*.json"))
    assert proc.returncode == 0 and len(files) == 2, f"rc {proc.returncode}, {files}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    reports = [json.loads(path.read_text()) for path in files]
    assert reports[0] == reports[1] and reports[0]["processes"] == 2
    single = train(load_train_config(settings(tiny_base, 4)), pair_frame(), tmp_path / "single", progress=False)
    assert reports[0]["counts"] == single.manifest["counts"]
    for key, value in single.manifest["losses"].items():
        assert reports[0]["losses"][key] == pytest.approx(value, abs=1e-5)
    assert len((out / "run" / "metrics.jsonl").read_text().splitlines()) == len(single.metrics)
