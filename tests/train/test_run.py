"""Training against a workspace: unreviewed versions are refused unless allowed; the model is registered."""

from __future__ import annotations

from pathlib import Path

import pytest

from assay.errors import ConfigError
from assay.train import load_train_config
from assay.train.run import run_training

from .helpers import pair_frame, quick_config, text_frame

# peft 0.21 reads transformers' deprecated `is_gradient_checkpointing` when loading an adapter.
pytestmark = pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")

@pytest.fixture
def workspace(tmp_path: Path):
    from assay.workspace import Workspace

    ws, _ = Workspace.init(tmp_path / "ws")
    return ws


def add(ws, frame, kind: str) -> str:
    return ws.datasets.write(frame, kind=kind, config={"test": kind}).version.id


def test_version_that_is_not_approved_is_refused(workspace, tiny_base: Path) -> None:
    curated = add(workspace, pair_frame(), "curated")
    with pytest.raises(ConfigError, match=f"not approved: {curated} \\(curated\\)") as info:
        run_training(workspace, curated, str(tiny_base), load_train_config(quick_config(tiny_base)), progress=False)
    assert "allow_unreviewed" in info.value.hint
    assert not list(workspace.layout.runs.iterdir()), "refused before any work"


def test_unreviewed_replay_data_is_refused_too(workspace, tiny_base: Path) -> None:
    approved, general = add(workspace, pair_frame(), "approved"), add(workspace, text_frame(), "raw")
    raw = quick_config(tiny_base) | {"stages": [{"name": "sft", "replay": {"data": general, "share": 0.2}}]}
    with pytest.raises(ConfigError, match=f"{general} \\(raw\\)"):
        run_training(workspace, approved, None, load_train_config(raw), progress=False)


def test_trains_and_registers_with_version_ids(workspace, tiny_base: Path, monkeypatch) -> None:
    if not hasattr(workspace, "models"):
        pytest.skip("the model store (ws.models) does not exist yet")
    curated = add(workspace, pair_frame(), "curated")
    cfg = load_train_config(quick_config(tiny_base) | {"allow_unreviewed": True})
    model_id = run_training(workspace, curated, None, cfg, progress=False)
    manifest = workspace.models.get(model_id).manifest
    assert manifest["allow_unreviewed"] is True and manifest["unreviewed_datasets"] == [curated]
    assert manifest["stages"][0]["data"] == curated and manifest["data"] == [curated]
    assert not list((workspace.root / "runs").iterdir())


def test_registered_model_is_verified_and_leaves_no_staging(workspace, tiny_base: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from assay.workspace import doctor

    curated = add(workspace, pair_frame(), "curated")
    cfg = load_train_config(quick_config(tiny_base) | {"allow_unreviewed": True})
    model = workspace.models.get(run_training(workspace, curated, None, cfg, progress=False))
    assert model.id.startswith("mv-") and model.status == "candidate"
    assert [e.id for e in workspace.models.list()] == [model.id]
    assert not list((workspace.root / "tmp").iterdir()), "no staging leftovers"
    report = doctor(workspace)
    assert report.ok and report.checked == 2
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_base), model.path)


def test_same_run_in_two_workspaces_gives_one_id_and_a_moved_workspace_loads(tmp_path: Path) -> None:
    """Model ids hash the base's sha256, never its (workspace-local) path; a moved workspace still loads."""
    import json
    import shutil

    from peft import PeftModel

    from assay.train.models import load_model, locate_base
    from assay.workspace import Workspace

    from .helpers import build_model, build_tokenizer, write_gguf

    tokenizer = build_tokenizer()
    gguf = write_gguf(build_model(len(tokenizer), seed=5).eval(), tokenizer, tmp_path / "tiny.gguf")
    ids = []
    for where in ("a", "b"):
        ws, _ = Workspace.init(tmp_path / where / "ws")
        approved = add(ws, pair_frame(), "approved")
        ids.append(run_training(ws, approved, str(gguf), load_train_config(quick_config(gguf)), progress=False))
        adapter = json.loads((ws.models.get(ids[-1]).path / "adapter_config.json").read_text())
        assert adapter["base_model_name_or_path"] == "tiny.gguf", "no workspace path in the adapter config"
    assert ids[0] == ids[1]
    moved = tmp_path / "elsewhere" / "ws"
    shutil.move(tmp_path / "a" / "ws", moved)
    gguf.unlink()  # the conversion cached inside the workspace is enough
    ws = Workspace.open(moved)
    model = ws.models.get(ids[0])
    base = locate_base(model.manifest["base"], cache_dir=ws.layout.model_cache)
    assert base.path.is_relative_to(moved) and base.sha256 == model.manifest["base"]["sha256"]
    PeftModel.from_pretrained(load_model(base, dtype=None), model.path)


def test_train_cli_works_on_a_fresh_workspace_config(tmp_path: Path, tiny_base: Path) -> None:
    """The generated assay.toml (empty [train.prompt_tuning] and [train.full] tables) does not block training."""
    from assay.workspace import Workspace
    from tests.conftest import run_json

    ws, _ = Workspace.init(tmp_path / "ws")
    approved = add(ws, pair_frame(), "approved")
    res = run_json("-w", str(ws.root), "train", "run", "--data", approved, "--base", str(tiny_base), "--name", "first")
    assert res["ok"] and ws.models.get("first").id == res["model"]
