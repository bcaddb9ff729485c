"""Retrieval top-k latency at 100,000 works: EmbeddingIndex (blocked, float16 storage) vs a naive numpy baseline.

The embeddings are synthetic (seeded Gaussian rows, L2-normalised) with MiniLM's real dimension (384): latency
depends on N, D and k, not on what the vectors mean. The baseline is what one writes without the index: the
full float32 score matrix ``E @ Q.T`` followed by ``argpartition`` + sort per query. Both answers are checked
to agree (same rows; scores within float16 storage error).

    .venv/bin/python benchmarks/adapters_retrieval.py [--works 100000] [--dim 384] [--k 10] [--repeats 30]

Prints one JSON line per (method, batch size).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attribution.engine.retrieval import EmbeddingIndex, EmbeddingIndexConfig  # noqa: E402


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def naive_top_k(emb32: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ emb32.T  # (Q, N): the whole matrix
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-top, axis=1)
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(part, order, axis=1)


def timed(fn, repeats: int) -> tuple[list[float], object]:
    fn()  # warm-up (caches, thread pools)
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
        "mean_ms": round(1000 * statistics.fmean(ordered), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--works", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100, 1000])
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    raw = rng.standard_normal((args.works, args.dim)).astype(np.float32)
    index = EmbeddingIndex.from_embeddings(raw, np.arange(args.works))
    streaming = EmbeddingIndex(  # same float16 rows, no float32 copy: converts a block at a time
        embeddings=index.embeddings, work_ids=index.work_ids, config=EmbeddingIndexConfig(float32_cache_bytes=0)
    )
    emb32 = index.embeddings.astype(np.float32)  # the baseline gets float32 rows, its best case
    emit(
        bench="retrieval_setup",
        works=args.works,
        dim=args.dim,
        k=args.k,
        torch_threads=torch.get_num_threads(),
        index_bytes=int(index.embeddings.nbytes),
        baseline_bytes=int(emb32.nbytes),
    )
    for q in args.batches:
        queries = rng.standard_normal((q, args.dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        repeats = max(3, args.repeats if q <= 100 else args.repeats // 10)
        t_index, (values, rows) = timed(lambda queries=queries: index.top_k_for(queries, args.k), repeats)
        t_stream, (_, s_rows) = timed(lambda queries=queries: streaming.top_k_for(queries, args.k), repeats)
        t_naive, (n_values, n_rows) = timed(lambda queries=queries: naive_top_k(emb32, queries, args.k), repeats)
        agree = float((rows.numpy() == n_rows).mean())
        max_diff = float(np.abs(values.numpy() - n_values).max())
        qb = min(q, index.config.query_block)
        rows_per_block = max(index.config.block_rows, index.config.score_block_bytes // (4 * qb))
        largest_block = qb * min(args.works, rows_per_block) * 4
        emit(
            bench="retrieval_top_k",
            method="EmbeddingIndex (float32 cache)",
            queries=q,
            **summary(t_index),
            per_query_ms=round(1000 * statistics.median(t_index) / q, 3),
            rows_agree_with_naive=agree,
            max_score_diff=max_diff,
            largest_score_block_bytes=largest_block,
        )
        emit(
            bench="retrieval_top_k",
            method="EmbeddingIndex (float16 streamed)",
            queries=q,
            **summary(t_stream),
            per_query_ms=round(1000 * statistics.median(t_stream) / q, 3),
            rows_agree_with_naive=float((s_rows.numpy() == n_rows).mean()),
        )
        emit(
            bench="retrieval_top_k",
            method="naive numpy full matrix",
            queries=q,
            **summary(t_naive),
            per_query_ms=round(1000 * statistics.median(t_naive) / q, 3),
            score_matrix_bytes=q * args.works * 4,
        )


if __name__ == "__main__":
    main()
