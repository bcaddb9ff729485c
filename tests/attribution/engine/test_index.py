"""GradientIndex: determinism, save/load and refusal, top-k, checkpoints, curvature, planted copies."""

from __future__ import annotations

import json
import tempfile

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from attribution.engine import (
    GradientIndex,
    IndexConfig,
    IndexIntegrityError,
    IndexMismatchError,
    model_fingerprint,
    sampled_nll,
)

from .tiny import TinyLM, lm_data, lm_loss, xy_loss

ATOL = 1e-5
RTOL = 1e-4


def batches_of(data: torch.Tensor, size: int) -> list[torch.Tensor]:
    return [data[i:i + size] for i in range(0, len(data), size)]


@pytest.fixture
def lm() -> TinyLM:
    torch.manual_seed(0)
    return TinyLM()


@pytest.fixture
def train() -> list[torch.Tensor]:
    return batches_of(lm_data(24, seed=1), 5)  # 24 works, last batch short


@pytest.fixture
def queries() -> list[torch.Tensor]:
    return batches_of(lm_data(7, seed=2), 4)


def test_same_model_data_and_seed_give_the_same_scores(lm, train, queries):
    config = IndexConfig(projection_dim=64, seed=5)
    first = GradientIndex.build(lm, lm_loss, train, config=config).score(lm, lm_loss, queries)
    second = GradientIndex.build(lm, lm_loss, train, config=config).score(lm, lm_loss, queries)
    assert first.shape == (7, 24)
    assert torch.equal(first, second)
    other_seed = GradientIndex.build(lm, lm_loss, train, projection_dim=64, seed=6).score(lm, lm_loss, queries)
    assert not torch.allclose(first, other_seed)


def test_save_load_round_trip_gives_equal_scores(lm, train, queries, tmp_path):
    index = GradientIndex.build(lm, lm_loss, train, projection_dim=64, seed=0,
                                work_ids=[f"work-{i}" for i in range(24)])
    before = index.score(lm, lm_loss, queries)
    index.save(tmp_path / "idx")
    loaded = GradientIndex.load(tmp_path / "idx", expect_model_fingerprint=model_fingerprint(lm),
                                expect_work_ids=[f"work-{i}" for i in range(24)])
    assert torch.equal(loaded.score(lm, lm_loss, queries), before)
    assert loaded.work_ids[3] == "work-3"
    assert loaded.checksum == index.checksum
    assert loaded.fingerprint == model_fingerprint(lm)
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["config"]["seed"] == 0
    assert manifest["config"]["projection_dim"] == 64
    assert {b["name"] for b in manifest["plan"]["coverage"]["blocks"]} >= {"wte.weight", "mix.weight"}


def test_stale_or_foreign_index_is_refused(lm, train, queries, tmp_path):
    index = GradientIndex.build(lm, lm_loss, train, projection_dim=64, path=tmp_path / "idx")
    # the model was trained further after the build: its fingerprint changes
    with torch.no_grad():
        lm.proj.weight.add_(0.01)
    with pytest.raises(IndexMismatchError, match="stale"):
        GradientIndex.load(tmp_path / "idx", expect_model_fingerprint=model_fingerprint(lm))
    with pytest.raises(IndexMismatchError, match="fingerprint"):
        index.score(lm, lm_loss, queries)
    with pytest.raises(IndexMismatchError, match="works"):
        GradientIndex.load(tmp_path / "idx", expect_work_ids=list(range(23)))
    with pytest.raises(IndexMismatchError, match="seed"):
        GradientIndex.load(tmp_path / "idx", expect_config=IndexConfig(projection_dim=64, seed=9))
    with pytest.raises(IndexMismatchError, match="checkpoint"):
        index.score([lm, lm], lm_loss, queries, check_fingerprint=False)


def test_altered_or_missing_files_are_refused(lm, train, tmp_path):
    GradientIndex.build(lm, lm_loss, train, projection_dim=64, path=tmp_path / "idx")
    shard = next((tmp_path / "idx" / "ckpt0").glob("shard*.npy"))
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(IndexIntegrityError, match="corrupt"):
        GradientIndex.load(tmp_path / "idx")
    shard.unlink()
    with pytest.raises(IndexIntegrityError, match="missing"):
        GradientIndex.load(tmp_path / "idx")
    with pytest.raises(IndexIntegrityError, match="no attribution index"):
        GradientIndex.load(tmp_path / "nothing-here")


@pytest.mark.parametrize("curvature", ["ekfac", "kfac", "trak", "none"])
def test_top_k_equals_dense_reference(lm, train, queries, curvature):
    # small shards and row batches so that the streaming top-k merges many chunks
    config = IndexConfig(projection_dim=64, curvature=curvature, shard_size=7, batch_rows=3, query_block=2)
    index = GradientIndex.build(lm, lm_loss, train, config=config)
    dense = index.score(lm, lm_loss, queries)
    values, rows = index.top_k(lm, lm_loss, queries, k=5)
    ref_values, _ = torch.topk(dense, 5, dim=1)
    torch.testing.assert_close(values, ref_values, atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(torch.gather(dense, 1, rows), values, atol=ATOL, rtol=RTOL)
    assert rows.dtype == torch.int64
    assert rows.shape == (7, 5)


def test_scores_are_preconditioned_dot_products(lm, train, queries):
    """score = φ_q (F + λI)⁻¹ φ_iᵀ with F = ΦᵀΦ/N and λ = ratio x mean eigenvalue (TRAK, the documented rule)."""
    index = GradientIndex.build(lm, lm_loss, train, config=IndexConfig(projection_dim=48, curvature="trak",
                                                                       dtype="float32", score_norm="none"))
    phi = index.train_features().double()
    q = index.query_features(lm, lm_loss, queries)[0].double()
    fisher = phi.T @ phi / phi.shape[0]
    lam = 0.1 * torch.linalg.eigvalsh(fisher).clamp_min(0).mean()
    expected = q @ torch.linalg.solve(fisher + lam * torch.eye(fisher.shape[0], dtype=torch.float64), phi.T)
    torch.testing.assert_close(index.score(lm, lm_loss, queries).double(), expected, atol=1e-4, rtol=1e-3)
    assert index.dampings[0]["*"] == pytest.approx(float(lam), rel=1e-6)
    plain = index.with_curvature("none").score(lm, lm_loss, queries).double()
    torch.testing.assert_close(plain, q @ phi.T, atol=1e-4, rtol=1e-4)
    # relative influence divides each work's score by √(φ_iᵀ C⁻¹ φ_i)
    relative = index.with_curvature(score_norm="relative").score(lm, lm_loss, queries).double()
    precond = torch.linalg.solve(fisher + lam * torch.eye(fisher.shape[0], dtype=torch.float64), phi.T)
    self_influence = (phi.T * precond).sum(0).sqrt()
    torch.testing.assert_close(relative, expected / self_influence, atol=1e-4, rtol=1e-3)
    halfway = index.with_curvature(score_norm="sqrt").score(lm, lm_loss, queries).double()
    torch.testing.assert_close(halfway, expected / self_influence.sqrt(), atol=1e-4, rtol=1e-3)


def test_feature_level_scoring_equals_the_model_level_path(lm, train, queries):
    index = GradientIndex.build(lm, lm_loss, train, config=IndexConfig(projection_dim=64, batch_rows=5))
    feats = index.query_features(lm, lm_loss, queries)
    assert feats.shape == (1, 7, index.feature_dim)
    torch.testing.assert_close(index.score_features(feats), index.score(lm, lm_loss, queries), atol=ATOL, rtol=RTOL)
    values, rows = index.top_k_features(feats, k=4)
    ref_values, ref_rows = index.top_k(lm, lm_loss, queries, k=4)
    torch.testing.assert_close(values, ref_values, atol=ATOL, rtol=RTOL)
    assert torch.equal(rows, ref_rows)
    with pytest.raises(ValueError, match="query_features must be"):
        index.score_features(feats[0])


def test_float16_storage_is_close_to_float32(lm, train, queries):
    half = GradientIndex.build(lm, lm_loss, train, config=IndexConfig(projection_dim=64, dtype="float16"))
    full = GradientIndex.build(lm, lm_loss, train, config=IndexConfig(projection_dim=64, dtype="float32"))
    a, b = half.train_features(), full.train_features()
    assert float((a - b).abs().max() / b.abs().max()) < 1e-3


def test_checkpoint_ensemble_averages_the_checkpoints(lm, train, queries):
    torch.manual_seed(1)
    other = TinyLM()
    config = IndexConfig(projection_dim=64)
    both = GradientIndex.build([lm, other], lm_loss, train, config=config).score([lm, other], lm_loss, queries)
    one = GradientIndex.build(lm, lm_loss, train, config=config).score(lm, lm_loss, queries)
    two = GradientIndex.build(other, lm_loss, train, config=config).score(other, lm_loss, queries)
    torch.testing.assert_close(both, (one + two) / 2, atol=ATOL, rtol=RTOL)


def test_progress_callback_and_work_id_checks(lm, train, queries):
    calls = []
    index = GradientIndex.build(lm, lm_loss, train, projection_dim=64, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 5) for i in range(1, 6)]
    scored = []
    index.top_k(lm, lm_loss, queries, k=2, progress=lambda d, t: scored.append((d, t)))
    assert scored == [(1, 2), (2, 2)]
    with pytest.raises(ValueError, match="work_ids has 3 ids for 24"):
        GradientIndex.build(lm, lm_loss, train, projection_dim=64, work_ids=[1, 2, 3])
    with pytest.raises(ValueError, match="unique"):
        GradientIndex.build(lm, lm_loss, train, projection_dim=64, work_ids=[0] * 24)


@pytest.mark.parametrize("curvature", ["ekfac", "trak"])
def test_planted_copy_is_ranked_first(curvature):
    # given a small classifier trained on 300 digits, and queries that are slightly perturbed training images
    digits = load_digits()
    x = torch.tensor(digits.data[:300] / 16.0, dtype=torch.float32)
    y = torch.tensor(digits.target[:300])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    planted = [5, 77, 150, 222, 299]
    noise = 0.02 * torch.randn(len(planted), 64, generator=torch.Generator().manual_seed(0))
    queries = [(x[planted] + noise, y[planted])]
    # when
    index = GradientIndex.build(model, xy_loss, [(x[i:i + 64], y[i:i + 64]) for i in range(0, 300, 64)],
                                config=IndexConfig(projection_dim=512, curvature=curvature, keep_gram=True,
                                                   score_norm="relative"))
    _, rows = index.top_k(model, xy_loss, queries, k=1)
    # then every copy credits its original first (relative influence: the copy-ranking mode)
    assert rows[:, 0].tolist() == planted


def test_index_files_are_float16_shards_with_scales(lm, train, tmp_path):
    index = GradientIndex.build(lm, lm_loss, train, config=IndexConfig(projection_dim=64, shard_size=10),
                                path=tmp_path / "idx")
    shards = sorted((tmp_path / "idx" / "ckpt0").glob("shard*.npy"))
    assert len(shards) == 3  # 24 rows in shards of 10
    first = np.load(shards[0], mmap_mode="r")
    assert first.dtype == np.float16
    assert first.shape == (10, index.feature_dim)
    assert set(index.manifest["files"]) >= {"work_ids.json", "ckpt0/curvature.npz", "ckpt0/shard00000.npy",
                                            "ckpt0/scale00002.npy"}


def test_failed_build_leaves_no_temporary_files(lm, train, tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def broken(model, batch):
        raise RuntimeError("loss exploded")

    with pytest.raises(RuntimeError, match="loss exploded"):
        GradientIndex.build(lm, broken, train, projection_dim=64)
    assert list(tmp_path.iterdir()) == []


def lm_fisher_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """``lm_loss`` with every next token drawn from the model's own prediction."""
    return sampled_nll(model(batch[:, :-1])).sum(1)


def test_sampled_fisher_changes_only_the_curvature_and_is_deterministic(lm, train, queries, tmp_path):
    config = IndexConfig(projection_dim=64, seed=3)
    empirical = GradientIndex.build(lm, lm_loss, train, config=config)
    state = torch.random.get_rng_state()
    sampled = GradientIndex.build(lm, lm_loss, train, config=config, fisher_loss_fn=lm_fisher_loss,
                                  path=tmp_path / "idx")
    # the build draws under its own seeded state: the caller's random stream is untouched
    assert torch.equal(torch.random.get_rng_state(), state)
    again = GradientIndex.build(lm, lm_loss, train, config=config, fisher_loss_fn=lm_fisher_loss)
    # the stored features are those of loss_fn either way; only the curvature differs
    assert torch.equal(sampled.train_features(), empirical.train_features())
    assert torch.equal(sampled.score(lm, lm_loss, queries), again.score(lm, lm_loss, queries))
    assert not torch.allclose(sampled.score(lm, lm_loss, queries), empirical.score(lm, lm_loss, queries))
    assert sampled.manifest["config"]["fisher"] == sampled.config.fisher == "sampled"
    assert empirical.manifest["config"]["fisher"] == "empirical"
    # the eigenvalue draw's temporary shards are gone, and the saved index loads and scores the same
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["ckpt0", "manifest.json", "work_ids.json"]
    loaded = GradientIndex.load(tmp_path / "idx", expect_model_fingerprint=model_fingerprint(lm))
    assert torch.equal(loaded.score(lm, lm_loss, queries), again.score(lm, lm_loss, queries))
    # more draws per example: the curvature averages them (n counts every draw), the features stay the same
    two = GradientIndex.build(lm, lm_loss, train, config=IndexConfig(projection_dim=64, seed=3, fisher_samples=2),
                              fisher_loss_fn=lm_fisher_loss)
    assert two._checkpoint_stats()[0].n == 2 * sampled._checkpoint_stats()[0].n == 48
    assert torch.equal(two.train_features(), sampled.train_features())
    assert not torch.allclose(two.score(lm, lm_loss, queries), sampled.score(lm, lm_loss, queries))


def test_sampled_fisher_curvature_estimates_the_models_own_fisher():
    # given a softmax classifier that predicts confidently, and observed labels that are all class 0
    torch.manual_seed(0)
    model = nn.Linear(6, 4)
    with torch.no_grad():
        model.weight.mul_(4.0)
    x = torch.randn(4000, 6, generator=torch.Generator().manual_seed(1))
    y = torch.zeros(4000, dtype=torch.long)
    batches = [(x[i:i + 500], y[i:i + 500]) for i in range(0, 4000, 500)]

    def fisher_loss(m, batch):
        return sampled_nll(m(batch[0]))

    # when the index is built unprojected, with and without sampled targets
    config = IndexConfig(projection_dim=10_000)
    sampled = GradientIndex.build(model, xy_loss, batches, config=config, fisher_loss_fn=fisher_loss)
    empirical = GradientIndex.build(model, xy_loss, batches, config=config)
    # then the output-side Kronecker factor Σ δδᵀ / N is the Fisher E_x[diag(p) - ppᵀ] (to sampling noise)
    # with sampled targets, and the observed labels' E_x[(p - e_0)(p - e_0)ᵀ] without them
    with torch.no_grad():
        p = F.softmax(model(x), -1).double()
    true_fisher = (torch.diag_embed(p) - p[:, :, None] * p[:, None, :]).mean(0)
    observed = p - F.one_hot(y, 4).double()
    empirical_fisher = (observed[:, :, None] * observed[:, None, :]).mean(0)
    block = sampled.plan.blocks[0].name
    rows_sampled = sampled._checkpoint_stats()[0].rows[block] / 4000
    rows_empirical = empirical._checkpoint_stats()[0].rows[block] / 4000
    torch.testing.assert_close(rows_empirical, empirical_fisher, atol=1e-6, rtol=1e-5)
    assert float((rows_sampled - true_fisher).norm() / true_fisher.norm()) < 0.08
    assert float((empirical_fisher - true_fisher).norm() / true_fisher.norm()) > 0.5


def test_fisher_loss_fn_must_give_one_loss_per_example(lm, train):
    def short(model, batch):
        return lm_fisher_loss(model, batch)[:-1]

    with pytest.raises(ValueError, match=r"fisher_loss_fn: .* returned 4 losses"):
        GradientIndex.build(lm, lm_loss, train, projection_dim=64, fisher_loss_fn=short)
    with pytest.raises(ValueError, match=r"config\.fisher is 'sampled': pass fisher_loss_fn"):
        GradientIndex.build(lm, lm_loss, train, config=IndexConfig(projection_dim=64, fisher="sampled"))
    with pytest.raises(ValueError, match="fisher must be one of"):
        IndexConfig(fisher="true")
    with pytest.raises(ValueError, match="fisher_samples must be a positive integer"):
        IndexConfig(fisher_samples=0)
