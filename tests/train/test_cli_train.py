"""`assay train run` and `assay models` through the real entry point, on a tiny local model."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli, run_json

from .helpers import pair_frame, quick_config


def _toml(cfg: dict) -> str:
    loop = "\n".join(f"{k} = {json.dumps(v)}" for k, v in cfg["loop"].items())
    lora = "\n".join(f"{k} = {json.dumps(v)}" for k, v in cfg["lora"].items())
    return f"[train.loop]\n{loop}\n[train.lora]\n{lora}\n"


def test_train_cli_refuses_unreviewed_then_trains_and_registers(tmp_path: Path, tiny_base: Path) -> None:
    from assay.workspace import Workspace

    ws, _ = Workspace.init(tmp_path / "ws")
    curated = ws.datasets.write(pair_frame(), kind="curated", config={}).version.id
    approved = ws.datasets.write(pair_frame(), kind="approved", config={}).version.id
    conf = tmp_path / "train.toml"
    conf.write_text(_toml(quick_config(tiny_base)))
    args = ["train", "run", "--base", str(tiny_base), "--config", str(conf), "-w", str(ws.root)]
    refused = run_cli(*args, "--data", curated, check=2)
    assert "not approved" in refused.stderr and "--allow-unreviewed" in refused.stderr
    res = run_json(*args, "--data", approved)
    assert res["ok"] and res["model"].startswith("mv-") and res["data"] == [approved]
    assert res["unreviewed_datasets"] == [] and res["counts"]["optimizer_steps"] == 4
    listed = run_json("models", "list", "-w", str(ws.root))["models"]
    assert [m["id"] for m in listed] == [res["model"]] and listed[0]["status"] == "candidate"
    shown = run_json("models", "show", res["model"][:8], "-w", str(ws.root))
    assert shown["manifest"]["base"]["sha256"] and shown["manifest"]["parents"] == [approved]
    again = run_json(*args, "--data", approved)
    assert again["model"] == res["model"], "same data, config and seed give the same weights and id"
