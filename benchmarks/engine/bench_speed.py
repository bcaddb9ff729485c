"""Attribution speed: featurising vs a training step, vs TRAK's featurisation at the same projection, whole
build+score vs Kronfluence's EK-FAC, and scoring throughput with the top-k path's peak memory.

    bash benchmarks/engine/setup_peers.sh
    .venv/bin/python benchmarks/engine/bench_speed.py --task text
    .venv/bin/python benchmarks/engine/bench_speed.py --task digits

Prints one JSON line per figure. One thread per process (torch.set_num_threads(1) in tasks.py) for every
method alike, so that timings on a shared 2-core machine are comparable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

from peers import KronfluencePeer, TrakPeer  # noqa: E402
from tasks import CONTEXT, digits_task, text_task  # noqa: E402

from attribution.engine import GradientIndex, IndexConfig  # noqa: E402
from attribution.engine.featurize import Featurizer  # noqa: E402
from attribution.engine.layers import make_plan  # noqa: E402

PROJECTION = 2048
REPEATS = 3


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * 4096 / 2**20


class PeakRss:
    """Samples the resident set every 2 ms while the block runs (torch's allocations are invisible to tracemalloc)."""

    def __enter__(self) -> PeakRss:
        self.base = rss_mib()
        self.peak = self.base
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop:
            self.peak = max(self.peak, rss_mib())
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self._stop = True
        self._thread.join()
        self.peak = max(self.peak, rss_mib())


def best_of(fn, repeats: int = REPEATS) -> float:
    """Median wall time of ``repeats`` runs (the machine is shared: the median resists other jobs' bursts)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def paired_medians(first, second, min_seconds: float = 2.0) -> tuple[float, float, int]:
    """Median wall times of two functions run alternately, repeated until each has run ``min_seconds`` (at
    least REPEATS times): a pass over the digits works takes milliseconds, so three runs are noise there, and
    alternating keeps a burst of another job from landing on one side only."""
    a, b = [], []
    while len(a) < REPEATS or sum(a) < min_seconds or sum(b) < min_seconds:
        for fn, times in ((first, a), (second, b)):
            started = time.perf_counter()
            fn()
            times.append(time.perf_counter() - started)
    return statistics.median(a), statistics.median(b), len(a)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=("digits", "text"), required=True)
    parser.add_argument("--big-works", type=int, default=20_000)
    args = parser.parse_args()
    task = digits_task() if args.task == "digits" else text_task()
    model = task.full_model if hasattr(task, "full_model") else task.train_fn(list(range(task.n)), seed=0)
    batches = task.train_batches()
    n = task.n

    # 1. a training step (forward + backward of the mean loss) vs our featurisation, same model and batches
    def train_step() -> None:
        model.train()
        for batch in batches:
            model.zero_grad()
            task.loss_fn(model, batch).mean().backward()
        model.zero_grad()
        model.eval()

    plan = make_plan(model, IndexConfig(projection_dim=PROJECTION))
    featurizer = Featurizer(model, plan, seed=0)

    def featurize() -> None:
        for batch in batches:
            featurizer.features(task.loss_fn, batch)

    train_step()
    featurize()  # warm-up
    t_train, t_feat, runs = paired_medians(train_step, featurize)
    emit(task=task.name, figure="featurise_vs_training_step", works=n, batch=task.batch_size, runs=runs,
         projection_dim=plan.dim, train_step_ms_per_example=round(1000 * t_train / n, 4),
         featurise_ms_per_example=round(1000 * t_feat / n, 4), ratio=round(t_feat / t_train, 2), target="<= 2")

    # 2. featurisation vs traker (functorch per-sample gradients + CPU BasicProjector) at the same dim
    t_trak = statistics.median(TrakPeer(task, model, PROJECTION).featurize_seconds for _ in range(2))
    emit(task=task.name, figure="featurise_vs_traker", projection_dim=PROJECTION,
         engine_seconds=round(t_feat, 3), traker_seconds=round(t_trak, 3), speedup=round(t_trak / t_feat, 2),
         target=">= 3")

    # 3. whole build + score of the test generations vs kronfluence (EK-FAC factors + pairwise scores)
    def ours_build_score() -> None:
        index = GradientIndex.build(model, task.loss_fn, batches, config=IndexConfig(projection_dim=PROJECTION))
        index.score(model, task.loss_fn, task.query_batches(task.test))

    t_ours = best_of(ours_build_score, repeats=2)

    def ours_sampled_fisher_build_score() -> None:  # the true Fisher, as kronfluence fits it
        index = GradientIndex.build(model, task.loss_fn, batches, config=IndexConfig(projection_dim=PROJECTION),
                                    fisher_loss_fn=task.fisher_loss)
        index.score(model, task.loss_fn, task.query_batches(task.test))

    t_ours_sampled = best_of(ours_sampled_fisher_build_score, repeats=2)

    def kf_build_score() -> None:
        peer = KronfluencePeer(task, model)
        peer.scores(task.test, None)

    t_kf = best_of(kf_build_score, repeats=2)
    emit(task=task.name, figure="build_score_vs_kronfluence", queries=len(task.test[0]) if isinstance(
        task.test, tuple) else len(task.test), works=n, engine_seconds=round(t_ours, 3),
        engine_sampled_fisher_seconds=round(t_ours_sampled, 3), kronfluence_seconds=round(t_kf, 3),
        speedup=round(t_kf / t_ours, 2), speedup_sampled_fisher=round(t_kf / t_ours_sampled, 2), target=">= 1")

    # 4. scoring throughput and the top-k path's peak memory on a larger index of the same model
    big = args.big_works
    generator = torch.Generator().manual_seed(3)
    if task.train_y is None:
        def big_batches():
            for start in range(0, big, 256):
                count = min(256, big - start)
                ids = torch.randint(0, model.wte.num_embeddings, (count, CONTEXT + 1), generator=generator)
                yield torch.cat([torch.ones(count, 1, dtype=torch.int64), ids], dim=1)
    else:
        def big_batches():
            for start in range(0, big, 500):
                count = min(500, big - start)
                yield torch.rand(count, 64, generator=generator), torch.randint(0, 10, (count,), generator=generator)
    with tempfile.TemporaryDirectory() as path:
        started = time.perf_counter()
        index = GradientIndex.build(model, task.loss_fn, big_batches, path=Path(path) / "idx",
                                    config=IndexConfig(projection_dim=PROJECTION, shard_size=4096))
        t_build = time.perf_counter() - started
        feats = index.query_features(model, task.loss_fn, task.query_batches(task.test))
        # a night's worth of generations: the test generations repeated to 2,000 queries, so that the dense
        # [Q, N] matrix is large next to the top-k path's working set
        feats = feats.repeat(1, -(-2000 // feats.shape[1]), 1)[:, :2000]
        q = feats.shape[1]
        index.top_k_features(feats[:, :1], k=10)  # preconditioner and work norms: once per index, not per night
        # top_k never holds more than query_block x batch_rows scores (256 x 8192 floats = 8 MiB) at a time
        with PeakRss() as topk_mem:
            started = time.perf_counter()
            index.top_k_features(feats, k=10)
            t_topk = time.perf_counter() - started
        with PeakRss() as dense_mem:
            started = time.perf_counter()
            dense = index.score_features(feats)
            t_dense = time.perf_counter() - started
        del dense
        emit(task=task.name, figure="scoring", works=big, queries=q, projection_dim=index.feature_dim,
             build_seconds=round(t_build, 2), build_works_per_second=round(big / t_build, 1),
             topk_pairs_per_second=round(q * big / t_topk), dense_pairs_per_second=round(q * big / t_dense),
             topk_peak_extra_mib=round(topk_mem.peak - topk_mem.base, 1),
             dense_peak_extra_mib=round(dense_mem.peak - dense_mem.base, 1),
             dense_matrix_mib=round(q * big * 4 / 2**20, 1),
             index_mib_on_disk=round(sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20, 1))


if __name__ == "__main__":
    main()
