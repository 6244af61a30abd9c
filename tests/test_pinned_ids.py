"""Version ids of unchanged inputs and configs are pinned: a refactor must not change what a run produces.

If one of these fails, a change altered curation output (rows, rejects, quarantine or the resolved
config). That needs a deliberate decision (and PIPELINE_VERSION bumped), never a silent update.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from assay.curate.pipeline import curate
from tests.conftest import write_jsonl
from tests.curate.test_e2e_gsm8k import GSM8K, _planted

WORDS = ["river", "stone", "lamp", "garden", "winter", "bread", "violin", "cotton", "orbit", "meadow", "ladder", "copper", "signal", "harbor", "pencil", "thunder", "maple", "canvas", "engine", "silver"]


def _chat_and_text_rows(seed: int = 3) -> tuple[list[dict], list[dict]]:
    rng = random.Random(seed)

    def sentence(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n)) + " and the team went home."

    chats = [{"messages": [{"role": "user", "content": f"Question {i}: {sentence(8)}"},
                           {"role": "assistant", "content": sentence(20)}]} for i in range(120)]
    chats += [dict(chats[i]) for i in range(0, 120, 17)]  # exact copies
    chats.append({"messages": [{"role": "user", "content": "Write to me"},
                               {"role": "assistant", "content": "Mail jane.roe@mailbox.org or call 415-555-0199 today please."}]})
    texts = [{"text": f"{sentence(40)}\n\n{sentence(30)}"} for _ in range(80)]
    texts += [{"text": t["text"].replace("the team", "a team", 1)} for t in texts[:6]]  # near copies
    texts.append({"text": "buy buy buy buy buy buy buy buy buy buy buy buy"})
    return chats, texts


@pytest.mark.parametrize(("shape", "expected"), [("chat", "ds-a87008535162"), ("text", "ds-12448e29afb8")])
def test_synthetic_versions_keep_their_ids(ws, tmp_path: Path, shape: str, expected: str) -> None:
    chats, texts = _chat_and_text_rows()
    path = write_jsonl(tmp_path / "data" / f"{shape}.jsonl", chats if shape == "chat" else texts, extra_lines={5: "{broken"})
    assert curate(ws, [path]).version_id == expected


@pytest.mark.skipif(not GSM8K.exists(), reason="shared GSM8K data not present")
def test_gsm8k_versions_keep_their_ids(ws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    path, _ = _planted(tmp_path / "data")
    assert curate(ws, [path]).version_id == "ds-2d8dfe003231"
    # The eval path is part of the config (and so of the id): use the same relative path on every
    # machine, as a workspace's assay.toml would, not wherever the shared data happens to live.
    (tmp_path / "evals").mkdir()
    shutil.copyfile(GSM8K / "test.jsonl", tmp_path / "evals" / "gsm8k_test.jsonl")
    monkeypatch.chdir(tmp_path)
    cfg = ws.config.curate.model_copy(update={"decontaminate": ws.config.curate.decontaminate.model_copy(
        update={"evals": ["evals/gsm8k_test.jsonl"]})})
    assert curate(ws, [path], cfg).version_id == "ds-0ae9257eb9ee"
