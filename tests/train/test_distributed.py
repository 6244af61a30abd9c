"""Several processes, no code change: 2 CPU processes (gloo) x batch 2 give the losses of 1 process x batch 4."""

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
import json, sys
sys.path.insert(0, {root!r})
import torch
torch.set_num_threads(1)
from pathlib import Path
from tests.train.helpers import pair_frame, quick_config
from assay.train import load_train_config, train
cfg = load_train_config(json.loads(sys.argv[1]))
result = train(cfg, pair_frame(), Path(sys.argv[2]), progress=False)
print("RESULT", json.dumps({{"losses": result.manifest["losses"], "counts": result.manifest["counts"],
                            "processes": result.manifest["runtime"]["processes"]}}))
"""


def settings(base: Path, batch_size: int) -> dict:
    return quick_config(base, max_steps=None, epochs=2, eval_every=2, checkpoint_every=3, batch_size=batch_size)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None, reason="torchrun not found")
def test_two_processes_match_one_process_with_the_same_global_batch(tiny_base: Path, tmp_path: Path) -> None:
    script = tmp_path / "worker.py"
    script.write_text(SCRIPT.format(root=str(ROOT)))
    torchrun = str(Path(sys.executable).parent / "torchrun")
    env = os.environ | {"ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    cmd = [torchrun, "--nproc_per_node", "2", "--master_port", "29517", str(script),
           json.dumps(settings(tiny_base, 2)), str(tmp_path / "ddp")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    reports = [json.loads(line.split("RESULT ", 1)[1]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(reports) == 2 and reports[0] == reports[1] and reports[0]["processes"] == 2
    single = train(load_train_config(settings(tiny_base, 4)), pair_frame(), tmp_path / "single", progress=False)
    assert reports[0]["counts"] == single.manifest["counts"]
    for key, value in single.manifest["losses"].items():
        assert reports[0]["losses"][key] == pytest.approx(value, abs=1e-5)
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == len(single.metrics)
