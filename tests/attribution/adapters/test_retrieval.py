"""Retrieval attribution: blocked cosine top-k over stored embeddings, MiniLM offline, planted near-duplicates."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from attribution.adapters import GenerationInput, WorkInput, adapter_load
from attribution.adapters.reference_image import digits_dataset, pixels_to_png
from attribution.adapters.scoring import index_top_k
from attribution.engine.retrieval import (
    EmbeddingIndex,
    EmbeddingIndexConfig,
    EmbeddingIndexError,
    EmbeddingIndexMismatchError,
)
from tests.attribution.adapters.corpus import make_texts

ATOL = 1e-3  # float16 storage


def _random_index(n=1000, d=48, seed=0, **config):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((n, d)).astype(np.float32)
    ids = rng.permutation(np.arange(10_000, 10_000 + n))
    return EmbeddingIndex.from_embeddings(emb, ids, config=EmbeddingIndexConfig(**config)), emb, ids


def test_blocked_top_k_equals_the_full_matrix_ranking():
    index, _, _ = _random_index(block_rows=97, score_block_bytes=4 * 5 * 150, query_block=5)  # 150-row blocks
    queries = np.random.default_rng(1).standard_normal((23, 48)).astype(np.float32)
    values, rows = index.top_k_for(queries, 10)
    full = index.scores_for(queries)  # (Q, N), the naive way
    best = torch.topk(full, 10, dim=1)
    torch.testing.assert_close(values, best.values, atol=1e-6, rtol=0)
    # Rows agree except where two scores tie exactly (none in random data).
    assert torch.equal(rows, best.indices)
    assert values.shape == rows.shape == (23, 10)
    # Cosine: queries are normalised too, so the scale of a query does not matter.
    _, rows_scaled = index.top_k_for(queries * 7.5, 10)
    assert torch.equal(rows_scaled, rows)


def test_k_larger_than_the_index_is_cut_and_bad_k_refused():
    index, _, _ = _random_index(n=6)
    values, rows = index.top_k_for(np.ones((2, 48), dtype=np.float32), 50)
    assert values.shape == (2, 6)
    assert sorted(rows[0].tolist()) == list(range(6))
    with pytest.raises(ValueError, match="k must be >= 1"):
        index.top_k_for(np.ones((1, 48), dtype=np.float32), 0)
    with pytest.raises(EmbeddingIndexError, match="dimension 48"):
        index.top_k_for(np.ones((1, 12), dtype=np.float32), 3)


def test_save_load_round_trip_and_stale_refusal(tmp_path):
    index, _, ids = _random_index(n=300)
    index.meta = {"manifest_hash": "abc", "checkpoint_fingerprint": "f1"}
    checksum = index.save(tmp_path / "idx")
    assert len(checksum) == 64
    loaded = EmbeddingIndex.load(tmp_path / "idx", expect={"manifest_hash": "abc", "checkpoint_fingerprint": "f1"})
    assert loaded.embeddings.dtype == np.float16
    np.testing.assert_array_equal(loaded.work_ids, ids)
    queries = np.random.default_rng(3).standard_normal((4, 48)).astype(np.float32)
    v1, r1 = index.top_k_for(queries, 5)
    v2, r2 = loaded.top_k_for(queries, 5)
    assert torch.equal(r1, r2)
    torch.testing.assert_close(v1, v2)
    with pytest.raises(EmbeddingIndexMismatchError, match="manifest_hash: index has 'abc', expected 'xyz'") as info:
        EmbeddingIndex.load(tmp_path / "idx", expect={"manifest_hash": "xyz", "checkpoint_fingerprint": "f1"})
    assert set(info.value.mismatches) == {"manifest_hash"}
    # A damaged file is caught by its recorded checksum.
    np.save(tmp_path / "idx" / "work_ids.npy", ids[::-1].copy())
    with pytest.raises(EmbeddingIndexError, match="does not match its recorded checksum"):
        EmbeddingIndex.load(tmp_path / "idx")
    with pytest.raises(EmbeddingIndexError, match="no embedding index"):
        EmbeddingIndex.load(tmp_path / "nothing-here")


def _edit(text: str, n_edits: int, seed: int) -> str:
    rng = random.Random(seed)
    words = text.split()
    for _ in range(n_edits):
        words[rng.randrange(len(words))] = rng.choice(["indeed", "perhaps", "softly", "again"])
    return " ".join(words)


def test_minilm_retrieval_finds_a_planted_near_duplicate_first(minilm_encoder):
    adapter, encoder = minilm_encoder
    texts = make_texts(32, seed=11, sentences=(3, 6))
    works = [WorkInput(id=200 + i, kind="text", text=t) for i, t in enumerate(texts)]
    index = EmbeddingIndex.build(encoder, adapter.work_batches(works, 16), work_ids=[w.id for w in works])
    assert index.dim == 384
    gens = [
        GenerationInput(id=1, prompt="tell me a story", output_text=_edit(texts[17], 4, seed=1)),
        GenerationInput(id=2, prompt="another", output_text=_edit(texts[29], 3, seed=2)),
    ]
    results = index_top_k(adapter, index, gens, 5, model=encoder)
    assert [r.works[0].work_id for r in results] == [217, 229]
    for result in results:
        assert result.works[0].score > result.works[1].score + 0.02
        assert result.works[0].score > 0.85


def test_long_works_are_embedded_from_all_their_chunks(minilm_encoder):
    adapter, encoder = minilm_encoder
    long_text = " ".join(make_texts(1, seed=5, sentences=(30, 30)))
    adapter_small = adapter_load("retrieval-text", "", {"chunk_words": 100}, "minilm@chunks")
    batch = next(iter(adapter_small.work_batches([WorkInput(id=1, kind="text", text=long_text)], 1)))
    assert len(batch[0]) == 3  # 30 sentences of 10 words, 100 words a chunk
    emb = encoder(batch)
    assert emb.shape == (1, 384)
    assert emb.norm().item() == pytest.approx(1.0, abs=1e-5)
    assert adapter_small.checkpoint_fingerprint() != adapter.checkpoint_fingerprint()  # chunking is in it


def test_image_retrieval_finds_a_planted_near_duplicate_first():
    images, labels = digits_dataset()
    works = [
        WorkInput(id=i, kind="image", data=pixels_to_png(images[i]), title=f"digit {labels[i]}") for i in range(400)
    ]
    adapter = adapter_load("retrieval-image", "", {}, "digits-bb@v1")
    encoder = adapter.load_model()
    index = EmbeddingIndex.build(encoder, adapter.work_batches(works, 128), work_ids=[w.id for w in works])
    rng = np.random.default_rng(0)
    gens = []
    for gid, source in enumerate((13, 250, 377)):
        noisy = np.clip(images[source] * 0.9 + 0.05 + rng.normal(0, 0.05, (8, 8)), 0, 1)
        gens.append(GenerationInput(id=gid, output_data=pixels_to_png(noisy, scale=6), output_mime_type="image/png"))
    results = index_top_k(adapter, index, gens, 3, model=encoder)
    assert [r.works[0].work_id for r in results] == [13, 250, 377]
