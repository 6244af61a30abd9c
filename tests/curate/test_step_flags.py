"""Steps declare whether they may rewrite content; the engine compares content only after those."""

from __future__ import annotations

import polars as pl

from assay.curate import engine
from assay.curate.config import CurateConfig
from assay.curate.pipeline import run_steps
from assay.curate.steps import REGISTRY
from assay.schema import ID, SOURCE


def test_only_normalize_and_pii_may_rewrite_content():
    assert {name for name, s in REGISTRY.items() if s.rewrites_content} == {"normalize", "pii"}


def test_changed_rows_are_counted_for_rewriting_steps_only(monkeypatch):
    rows = pl.DataFrame({
        ID: ["a", "b", "c", "d"], SOURCE: ["f"] * 4,
        "text": ["mail me at jane.doe@acme-mail.org please", "plain  text  here", "plain  text  here", "caf\u0065\u0301 ok"],
    })
    compared = []
    real = engine.RunState._changed
    monkeypatch.setattr(engine.RunState, "_changed", lambda self, before, after: (compared.append(1), real(self, before, after))[1])
    steps = ["normalize", "pii", "quality", "exact_dedup", "near_dedup", "split"]
    _, _, stats = run_steps(rows, CurateConfig(steps=steps))
    changed = {s.step: s.changed for s in stats}
    assert len(compared) == 2  # normalize and pii, one block each
    assert changed["normalize"] >= 2 and changed["pii"] == 1
    assert all(changed[s] == 0 for s in ("quality", "exact_dedup", "near_dedup", "split"))
