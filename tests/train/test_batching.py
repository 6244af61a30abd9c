"""Packing: no attention across examples, so packed and unpacked per-token losses agree; data order."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.train import batching
from assay.train.formatting import IGNORE, Example, format_rows

from .helpers import build_model, pair_frame, text_frame


def per_token_losses(model, batch) -> torch.Tensor:
    """Cross-entropy of every target token, in row-major order of the batch."""
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}, use_cache=False).logits
    labels = batch["labels"][:, 1:]
    losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
    return losses[labels != IGNORE]


def examples(tokenizer, n=12):
    chat, _ = format_rows(pair_frame(n, 0), tokenizer, max_seq_len=64)
    text, _ = format_rows(text_frame(n), tokenizer, max_seq_len=64)
    return chat + text


def test_packed_and_unpacked_per_token_losses_agree(tokenizer) -> None:
    model = build_model(len(tokenizer)).eval()
    items = examples(tokenizer)
    rows = batching.pack(items, max_len=96, seed=3)
    assert max(len(r) for r in rows) > 2, "the test needs rows that really hold several examples"
    packed = torch.cat([per_token_losses(model, batching.collate(rows[i : i + 3], packed=True, pad_id=0))
                        for i in range(0, len(rows), 3)])
    order = [e for row in rows for e in row]
    single = torch.cat([per_token_losses(model, batching.collate([(e,) for e in order[i : i + 5]], packed=False, pad_id=0))
                        for i in range(0, len(order), 5)])
    assert packed.shape == single.shape == (sum(e.target_tokens for e in items),)
    torch.testing.assert_close(packed, single, atol=1e-5, rtol=1e-5)


def test_packing_without_position_ids_would_leak(tokenizer) -> None:
    """Guards the test above: dropping the restarted positions changes the losses."""
    model = build_model(len(tokenizer)).eval()
    rows = batching.pack(examples(tokenizer), max_len=96, seed=3)[:2]
    batch = batching.collate(rows, packed=True, pad_id=0)
    leaky = dict(batch)
    leaky.pop("position_ids")
    assert not torch.allclose(per_token_losses(model, batch), per_token_losses(model, leaky), atol=1e-4)


def test_pack_keeps_every_example_once_within_the_limit(tokenizer) -> None:
    items = examples(tokenizer)
    rows = batching.pack(items, max_len=80, seed=0)
    assert sorted(e.row_id for row in rows for e in row) == sorted(e.row_id for e in items)
    assert all(sum(len(e.input_ids) for e in row) <= 80 for row in rows)
    assert rows == batching.pack(items, max_len=80, seed=0)


def test_collate_padding_has_no_loss_and_its_own_positions(tokenizer) -> None:
    a, b = examples(tokenizer, 2)[:2]
    batch = batching.collate([(a,), (a, b)], packed=True, pad_id=0)
    width = len(a.input_ids) + len(b.input_ids)
    assert batch["input_ids"].shape == (2, width)
    assert (batch["labels"][0, len(a.input_ids) :] == IGNORE).all()
    assert batch["position_ids"][0, len(a.input_ids)] == 0 and batch["position_ids"][1, len(a.input_ids)] == 0
    assert "attention_mask" not in batch
    assert "attention_mask" in batching.collate([(a,), (b,)], packed=False, pad_id=0)


def test_epoch_plan_is_deterministic_and_covers_rows() -> None:
    plan = batching.epoch_plan(10, batch_size=3, grad_accum=2, world=1, seed=5, stage=0, epoch=0)
    assert plan == batching.epoch_plan(10, batch_size=3, grad_accum=2, world=1, seed=5, stage=0, epoch=0)
    assert plan != batching.epoch_plan(10, batch_size=3, grad_accum=2, world=1, seed=5, stage=0, epoch=1)
    assert sorted(i for step in plan for mb in step for i in mb) == list(range(10))
    assert len(plan) == batching.steps_per_epoch(10, batch_size=3, grad_accum=2, world=1) == 2


def test_epoch_plan_gives_every_process_a_micro_batch() -> None:
    plan = batching.epoch_plan(10, batch_size=2, grad_accum=1, world=2, seed=0, stage=0, epoch=0)
    assert all(len(step) == 2 for step in plan)
    assert len(plan) == batching.steps_per_epoch(10, batch_size=2, grad_accum=1, world=2) == 2


@given(lengths=st.lists(st.integers(min_value=1, max_value=40), min_size=1, max_size=30), limit=st.integers(40, 120),
       seed=st.integers(0, 10))
@settings(max_examples=60, deadline=None)
def test_packing_properties(lengths: list[int], limit: int, seed: int) -> None:
    """Every example lands in exactly one row; no row exceeds the limit; positions restart per example."""
    items = [Example(f"e{i}", list(range(1, n + 1)), [IGNORE, *range(2, n + 1)]) for i, n in enumerate(lengths)]
    rows = batching.pack(items, max_len=limit, seed=seed)
    assert sorted(e.row_id for row in rows for e in row) == sorted(e.row_id for e in items)
    assert all(sum(len(e.input_ids) for e in row) <= limit for row in rows)
    batch = batching.collate(rows, packed=True, pad_id=0)
    for i, row in enumerate(rows):
        starts = [sum(len(e.input_ids) for e in row[:k]) for k in range(len(row))]
        assert all(batch["position_ids"][i, s] == 0 for s in starts)
        assert int((batch["labels"][i] != IGNORE).sum()) == sum(e.target_tokens for e in row)
