"""Projected features are exact: equal to brute-force per-example gradients projected the same way."""

from __future__ import annotations

import pytest
import torch

from attribution.engine import IndexConfig
from attribution.engine.featurize import Featurizer
from attribution.engine.layers import make_plan

from .tiny import TinyConvNet, TinyLM, brute_force_features, image_data, lm_data, lm_loss, xy_loss

# float32 throughout; the hook path sums positions in another order than autograd's weight gradient.
ATOL = 1e-5
RTOL = 1e-4


@pytest.fixture
def lm() -> TinyLM:
    torch.manual_seed(0)
    return TinyLM()


@pytest.mark.parametrize("projection_dim", [64, 100_000])  # projected, and so large that all is kept exactly
def test_lm_features_equal_brute_force(lm, projection_dim):
    # given a model with every layer kind: tied embedding/head, HF Conv1D, LayerNorm, a bare Parameter
    data = lm_data(5)
    plan = make_plan(lm, IndexConfig(projection_dim=projection_dim, seed=3))
    # when
    feats = Featurizer(lm, plan, seed=3).features(lm_loss, data)
    reference = brute_force_features(lm, lm_loss, [data[i:i + 1] for i in range(5)], plan, seed=3)
    # then
    assert feats.shape == reference.shape == (5, plan.dim)
    torch.testing.assert_close(feats, reference, atol=ATOL, rtol=RTOL)


def test_conv2d_features_equal_brute_force():
    torch.manual_seed(0)
    model = TinyConvNet()
    x, y = image_data(4)
    plan = make_plan(model, IndexConfig(projection_dim=40, seed=1))
    assert [b.kind for b in plan.blocks] == ["lowrank", "lowrank"]  # the convolution is low-rank too
    feats = Featurizer(model, plan, seed=1).features(xy_loss, (x, y))
    reference = brute_force_features(model, xy_loss, [(x[i:i + 1], y[i:i + 1]) for i in range(4)], plan, seed=1)
    torch.testing.assert_close(feats, reference, atol=ATOL, rtol=RTOL)


class _TwiceMLP(torch.nn.Module):
    """One Linear applied twice per example (no sequence dimension): its two contributions must add up."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(6, 6)
        self.head = torch.nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.lin(torch.tanh(self.lin(x)))))


@pytest.mark.parametrize("projection_dim", [20, 100_000])
def test_a_layer_called_twice_per_example_equals_brute_force(projection_dim):
    torch.manual_seed(0)
    model = _TwiceMLP()
    generator = torch.Generator().manual_seed(2)
    x, y = torch.randn(5, 6, generator=generator), torch.randint(0, 3, (5,), generator=generator)
    plan = make_plan(model, IndexConfig(projection_dim=projection_dim, seed=4))
    feats = Featurizer(model, plan, seed=4).features(xy_loss, (x, y))
    reference = brute_force_features(model, xy_loss, [(x[i:i + 1], y[i:i + 1]) for i in range(5)], plan, seed=4)
    torch.testing.assert_close(feats, reference, atol=ATOL, rtol=RTOL)


def test_batch_size_one_and_eight_give_equal_features(lm):
    data = lm_data(8, seed=1)
    plan = make_plan(lm, IndexConfig(projection_dim=96, seed=0))
    featurizer = Featurizer(lm, plan, seed=0)
    together = featurizer.features(lm_loss, data)
    alone = torch.cat([featurizer.features(lm_loss, data[i:i + 1]) for i in range(8)])
    torch.testing.assert_close(together, alone, atol=ATOL, rtol=RTOL)


def test_tied_weight_is_one_block_and_every_kind_is_covered(lm):
    plan = make_plan(lm, IndexConfig(projection_dim=64))
    by_name = {b.name: b for b in plan.blocks}
    # the embedding and the output head share one block: the tied weight is counted once
    assert [u.module for u in by_name["wte.weight"].uses] == ["wte", "head"]
    assert "head.weight" not in by_name
    assert by_name["mix.weight"].rows_aug  # Conv1D: weight [in, out], its bias rides on the input rows
    assert by_name["proj.weight"].cols_aug  # Linear: bias is an extra input column
    assert by_name["ln.weight"].kind == "layernorm"
    assert by_name["gain"].kind == "dense"
    coverage = plan.coverage
    assert coverage["covered"] == coverage["total_trainable"] == sum(p.numel() for p in lm.parameters())
    assert coverage["share"] == 1.0
    assert coverage["excluded"] == []


def test_excluded_parameters_are_reported_and_warned(lm):
    with pytest.warns(UserWarning, match="leaves out 2 trainable"):
        plan = make_plan(lm, IndexConfig(projection_dim=64, exclude=("ln.*",)))
    assert {e["name"] for e in plan.coverage["excluded"]} == {"ln.weight", "ln.bias"}
    assert plan.coverage["share"] == pytest.approx(1 - 32 / sum(p.numel() for p in lm.parameters()))
    assert "ln.weight" not in {b.name for b in plan.blocks}


def test_include_patterns_select_layers(lm):
    with pytest.warns(UserWarning, match="matches no include"):
        plan = make_plan(lm, IndexConfig(projection_dim=64, include=("proj.*", "mix.*")))
    assert [b.name for b in plan.blocks] == ["mix.weight", "proj.weight"]
    with pytest.raises(ValueError, match="no trainable parameter"):
        make_plan(lm, IndexConfig(include=("nothing.*",)))


def test_projection_budget_is_respected_and_small_layers_are_exact(lm):
    plan = make_plan(lm, IndexConfig(projection_dim=64))
    assert plan.dim <= 64
    big = make_plan(lm, IndexConfig(projection_dim=100_000))
    assert big.dim == sum(b.full_dim for b in big.blocks)  # no projection at all when the budget allows


def test_features_depend_on_seed(lm):
    data = lm_data(3)
    plan = make_plan(lm, IndexConfig(projection_dim=64))
    a = Featurizer(lm, plan, seed=0).features(lm_loss, data)
    b = Featurizer(lm, plan, seed=0).features(lm_loss, data)
    c = Featurizer(lm, plan, seed=1).features(lm_loss, data)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_loss_fn_must_return_per_example_losses(lm):
    plan = make_plan(lm, IndexConfig(projection_dim=64))
    with pytest.raises(ValueError, match=r"per-example losses of shape \[B\]"):
        Featurizer(lm, plan, seed=0).features(lambda m, b: lm_loss(m, b).sum(), lm_data(2))


def test_config_rejects_zero_damping_and_unknown_curvature():
    with pytest.raises(ValueError, match="damping_ratio"):
        IndexConfig(damping_ratio=0.0)
    with pytest.raises(ValueError, match="curvature"):
        IndexConfig(curvature="newton")
