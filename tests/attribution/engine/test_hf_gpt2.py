"""A Hugging Face GPT-2 (randomly initialised, tiny, nothing downloaded) is featurised exactly and fully."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from attribution.engine import GradientIndex, IndexConfig
from attribution.engine.featurize import Featurizer
from attribution.engine.layers import make_plan

from .tiny import brute_force_features

ATOL = 1e-5
RTOL = 1e-4


def gpt2_loss(model, ids: torch.Tensor) -> torch.Tensor:
    """Per-sequence next-token NLL, (B,)."""
    logits = model(input_ids=ids).logits[:, :-1]  # (B, T-1, V)
    return F.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none").sum(1)


def tiny_gpt2() -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=40, n_positions=12, n_embd=16, n_layer=2, n_head=2, attn_pdrop=0.0,
                        resid_pdrop=0.0, embd_pdrop=0.0)
    return GPT2LMHeadModel(config).eval()


def test_gpt2_every_parameter_is_covered_once_and_features_are_exact():
    model = tiny_gpt2()
    plan = make_plan(model, IndexConfig(projection_dim=256, seed=2))
    # Conv1D layers are low-rank blocks; the input embedding and the tied lm_head are one block
    kinds = {b.name: b.kind for b in plan.blocks}
    assert kinds["transformer.h.0.attn.c_attn.weight"] == "lowrank"
    assert [u.module for b in plan.blocks if b.name == "transformer.wte.weight" for u in b.uses] == [
        "transformer.wte", "lm_head"]
    assert plan.coverage["share"] == 1.0
    assert not any(b.kind == "dense" for b in plan.blocks)  # no slow torch.func fallback for GPT-2
    ids = torch.randint(0, 40, (3, 10), generator=torch.Generator().manual_seed(1))
    feats = Featurizer(model, plan, seed=2).features(gpt2_loss, ids)
    reference = brute_force_features(model, gpt2_loss, [ids[i:i + 1] for i in range(3)], plan, seed=2)
    torch.testing.assert_close(feats, reference, atol=ATOL, rtol=RTOL)


def test_gpt2_index_ranks_a_verbatim_training_sequence_first():
    model = tiny_gpt2()
    works = torch.randint(0, 40, (20, 10), generator=torch.Generator().manual_seed(3))
    index = GradientIndex.build(model, gpt2_loss, [works[:8], works[8:16], works[16:]],
                                config=IndexConfig(projection_dim=512, score_norm="relative"))
    _, rows = index.top_k(model, gpt2_loss, [works[[4, 11, 19]]], k=1)
    assert rows[:, 0].tolist() == [4, 11, 19]
