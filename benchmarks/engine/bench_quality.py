"""Attribution quality: LDS (retraining ground truth on random 50% subsets) and recall@1 on planted copies,
for our engine, TRAK (traker), EK-FAC influence (kronfluence) and plain gradient dot product, each tuned on a
validation split of the queries with the same protocol, and each also reported at its defaults.

    bash benchmarks/engine/setup_peers.sh
    .venv/bin/python benchmarks/engine/bench_quality.py --task digits
    .venv/bin/python benchmarks/engine/bench_quality.py --task text

Prints one JSON line per figure. Retraining ground truth is cached under .bench/engine/.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(ROOT), str(HERE)]

from peers import CheckpointEnsemble, KronfluencePeer, TrakPeer  # noqa: E402
from tasks import digits_task, lds_per_query, spearman_lds, text_task  # noqa: E402

from attribution.engine import GradientIndex, IndexConfig  # noqa: E402

CACHE = ROOT / ".bench" / "engine"
# the text task's Linear-only layer set leaves the embeddings and LayerNorms out on purpose
warnings.filterwarnings("ignore", message="attribution leaves out")
PROJECTIONS = (512, 1024, 2048, 4096)
# engine only: larger projections and no projection at all (1e9 keeps every gradient coordinate). K-FAC and
# EK-FAC never form a K x K matrix, so they reach dimensions where TRAK's kernel inverse (and traker's
# regenerated dense projector) cannot go; "trak" curvature is skipped there for the same reason.
ENGINE_ONLY_PROJECTIONS = (16384, 1_000_000_000)
# the checkpoint-ensemble sweep: the default projection and no projection (4096 was never the best)
ENSEMBLE_PROJECTIONS = (2048, 1_000_000_000)
RATIOS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
CURVATURES = ("ekfac", "kfac", "trak")
NORMS = ("none", "sqrt", "relative")
# the curvature's targets: the observed ones (empirical Fisher), or drawn from the model (true Fisher) once or
# four times per example (IndexConfig.fisher_samples)
FISHERS = ("empirical", "sampled", "sampled-x4")
SINGLE_MODEL_FISHERS = FISHERS[:2]  # four draws only where the ensembles are tuned (they cost 9 passes a build)


def fisher_build(task, fisher: str, **config) -> dict:
    """The GradientIndex.build keywords of one Fisher setting."""
    if fisher == "empirical":
        return {"config": IndexConfig(**config)}
    samples = int(fisher.partition("-x")[2] or 1)
    return {"config": IndexConfig(**config, fisher_samples=samples), "fisher_loss_fn": task.fisher_loss}
KF_DAMPINGS = (1e-8, None, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)  # 1e-8: its default; None: 0.1 x mean eig
# 2: text has 100 validation and 200 test generations (was 40 and 80), 64 subsets (was 32)
# 3: the outputs also cover the planted copies (their counterfactually most influential works)
GT_VERSION = 3


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def emit_paired(task_name: str, section: str, engine_test: np.ndarray, peers: dict[str, np.ndarray],
                masks: np.ndarray, out_test: np.ndarray) -> None:
    """The engine's test LDS minus each peer's, query by query: the mean difference and its standard error
    (same queries, same retrainings, so most of the noise cancels; within two standard errors is a tie)."""
    ours = lds_per_query(engine_test, masks, out_test)
    for name, scores in peers.items():
        diff = ours - lds_per_query(scores, masks, out_test)
        emit(task=task_name, figure="paired_test_lds", section=section, engine="tuned", peer=name,
             mean_difference=round(float(diff.mean()), 4),
             standard_error=round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 4), queries=len(diff))


def ground_truth(task, subsets: int) -> tuple[np.ndarray, np.ndarray]:
    """masks (M, N) and outputs (M, Qval + Qtest + Qplanted) = minus the query loss of a model retrained on each
    subset."""
    path = CACHE / f"gt_{task.name}_v{GT_VERSION}_{subsets}.npz"
    queries = _cat(_cat(task.val, task.test), task.planted)
    if path.exists():
        data = np.load(path)
        return data["masks"], data["outputs"]
    CACHE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1234)
    masks = np.zeros((subsets, task.n), dtype=np.float64)
    outputs = np.zeros((subsets, _count(queries)), dtype=np.float64)
    started = time.perf_counter()
    for s in range(subsets):
        rows = sorted(rng.choice(task.n, task.n // 2, replace=False).tolist())
        masks[s, rows] = 1
        model = task.train_fn(rows, seed=0)
        outputs[s] = -task.query_losses(model, queries)
        emit(task=task.name, stage="ground_truth", subset=s + 1, of=subsets,
             seconds=round(time.perf_counter() - started, 1))
    np.savez(path, masks=masks, outputs=outputs)
    return masks, outputs


def _cat(a, b):
    if isinstance(a, tuple):
        return tuple(torch.cat([x, y]) for x, y in zip(a, b, strict=True))
    return torch.cat([a, b])


def _count(queries) -> int:
    return len(queries[0]) if isinstance(queries, tuple) else len(queries)


def recall_at_1(scores: np.ndarray, rows: list[int]) -> float:
    return float(np.mean(scores.argmax(1) == np.asarray(rows)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=("digits", "text"), required=True)
    parser.add_argument("--subsets", type=int, default=None)
    args = parser.parse_args()
    task = digits_task() if args.task == "digits" else text_task()
    subsets = args.subsets or 64
    model = task.full_model if hasattr(task, "full_model") else task.train_fn(list(range(task.n)), seed=0)
    masks, outputs = ground_truth(task, subsets)
    n_val, n_test = _count(task.val), _count(task.test)
    out_val, out_test = outputs[:, :n_val], outputs[:, n_val:n_val + n_test]
    # Is a planted copy's original really the work whose presence raises the copy's output most? The
    # difference of mean outputs with and without each work, over the same retrainings, says.
    out_planted = outputs[:, n_val + n_test:]
    with_work = masks.T @ out_planted / masks.sum(0)[:, None]
    without = (1 - masks).T @ out_planted / (1 - masks).sum(0)[:, None]
    effect = with_work - without  # (N, Qplanted)
    true_rank = np.array([(effect[:, q] > effect[row, q]).sum() for q, row in enumerate(task.planted_rows)])
    emit(task=task.name, figure="copies_counterfactual", subsets=subsets,
         original_most_influential=round(float(np.mean(true_rank == 0)), 4),
         original_rank_median=float(np.median(true_rank)), original_rank_max=int(true_rank.max()))

    def paired(section: str, engine_test: np.ndarray, peers: dict[str, np.ndarray]) -> None:
        emit_paired(task.name, section, engine_test, peers, masks, out_test)

    def lds(scores_val: np.ndarray, scores_test: np.ndarray) -> tuple[float, float]:
        return spearman_lds(scores_val, masks, out_val), spearman_lds(scores_test, masks, out_test)

    results = []

    def report(method: str, setting: str, params: dict, val: float, test: float, recall: float | None,
               **extra) -> None:
        row = {"task": task.name, "method": method, "setting": setting, "params": params,
               "lds_val": round(val, 4), "lds_test": round(test, 4),
               "recall_at_1": None if recall is None else round(recall, 4), **extra}
        results.append(row)
        emit(**row)

    # ---- ours: featurise once per projection dim and Fisher (the empirical one of the observed targets, or
    # the true one of targets drawn from the model: only the curvature differs, the stored and query features
    # are the same), sweep curvature x damping x normalisation on val
    query_sets = {"val": task.val, "test": task.test, "planted": task.planted}
    best = None
    ours: dict[tuple, tuple[float, float]] = {}
    indexes = {}
    for k in PROJECTIONS + ENGINE_ONLY_PROJECTIONS:
        small = k in PROJECTIONS
        feats = None
        for fisher in SINGLE_MODEL_FISHERS:
            index = GradientIndex.build(model, task.loss_fn, task.train_batches(),
                                        **fisher_build(task, fisher, projection_dim=k, seed=0, keep_gram=small))
            if feats is None:
                feats = {name: index.query_features(model, task.loss_fn, task.query_batches(q)) for name, q in
                         query_sets.items()}
            indexes[(fisher, k)] = (index, feats)
            emit(task=task.name, stage="engine_featurised", fisher=fisher, projection_dim=k,
                 feature_dim=index.feature_dim)
            for curvature in CURVATURES if small else ("ekfac", "kfac"):
                for ratio in RATIOS:
                    for norm in NORMS:
                        view = index.with_curvature(curvature, damping_ratio=ratio, score_norm=norm)
                        val, test = lds(view.score_features(feats["val"]).numpy(),
                                        view.score_features(feats["test"]).numpy())
                        key = (fisher, k, curvature, ratio, norm)
                        ours[key] = (val, test)
                        if best is None or val > ours[best][0]:
                            best = key
    default = IndexConfig()

    def params(key: tuple) -> dict:
        return {"fisher": key[0], "projection_dim": key[1], "curvature": key[2], "damping_ratio": key[3],
                "score_norm": key[4]}

    def engine_recall(key: tuple) -> float:
        index, feats = indexes[key[:2]]
        view = index.with_curvature(key[2], damping_ratio=key[3], score_norm=key[4])
        return recall_at_1(view.score_features(feats["planted"]).numpy(), task.planted_rows)

    best_shared = max((c for c in ours if c[1] in PROJECTIONS), key=lambda c: ours[c][0])
    # copy mode: relative influence (a cosine in the curvature's metric), its best setting on validation LDS
    copy_key = max((c for c in ours if c[4] == "relative"), key=lambda c: ours[c][0])
    defaults = (2048, default.curvature, default.damping_ratio, default.score_norm)
    for setting, key in (("default", ("empirical", *defaults)), ("default-sampled-fisher", ("sampled", *defaults)),
                         ("tuned", best), ("tuned-k<=4096", best_shared), ("copy-mode", copy_key)):
        report("engine", setting, params(key), *ours[key], engine_recall(key))
    # the best of each Fisher x curvature x normalisation, for the record
    for fisher in SINGLE_MODEL_FISHERS:
        for curvature in CURVATURES:
            for norm in NORMS:
                key = max((c for c in ours if c[0] == fisher and c[2] == curvature and c[4] == norm),
                          key=lambda c: ours[c][0])
                report("engine", f"tuned-{fisher}-{curvature}-{norm}", params(key), *ours[key], engine_recall(key))
    # plain gradient dot product (no curvature, no normalisation) at the largest projection
    index, feats = indexes[("empirical", max(PROJECTIONS))]
    view = index.with_curvature("none", score_norm="none")
    report("grad_dot", "default", {"projection_dim": max(PROJECTIONS)},
           *lds(view.score_features(feats["val"]).numpy(), view.score_features(feats["test"]).numpy()),
           recall_at_1(view.score_features(feats["planted"]).numpy(), task.planted_rows))

    # ---- TRAK: featurise once per projection dim, sweep λ on val (ratio of the kernel's mean eigenvalue)
    trak_scores = {}
    for k in PROJECTIONS:
        peer = TrakPeer(task, model, k)
        for ratio in (None, *RATIOS):
            val, test = lds(peer.scores(task.val, ratio), peer.scores(task.test, ratio))
            trak_scores[(k, ratio)] = (val, test, peer)
            emit(task=task.name, stage="trak_sweep", projection_dim=k, ratio=ratio, lds_val=round(val, 4))
    tuned = max(trak_scores, key=lambda c: trak_scores[c][0])
    for setting, key in (("default", (2048, None)), ("tuned", tuned)):
        val, test, peer = trak_scores[key]
        report("traker", setting, {"projection_dim": key[0], "lambda_ratio": key[1] if key[1] else 0.0},
               val, test, recall_at_1(peer.scores(task.planted, key[1]), task.planted_rows))

    # ---- Kronfluence EK-FAC: factors once, sweep damping on val
    peer = KronfluencePeer(task, model)
    kf = {}
    for damping in KF_DAMPINGS:
        kf[damping] = lds(peer.scores(task.val, damping), peer.scores(task.test, damping))
        emit(task=task.name, stage="kronfluence_sweep", damping=damping, lds_val=round(kf[damping][0], 4))
    tuned_kf = max(kf, key=lambda d: kf[d][0])
    for setting, damping in (("default", 1e-8), ("tuned", tuned_kf)):
        report("kronfluence", setting, {"damping": damping if damping is not None else "0.1 x mean eig",
                                        "tracked_modules": len(peer.tracked)},
               *kf[damping], recall_at_1(peer.scores(task.planted, damping), task.planted_rows))
    index, feats = indexes[best[:2]]
    paired("single-model", index.with_curvature(best[2], damping_ratio=best[3], score_norm=best[4])
           .score_features(feats["test"]).numpy(),
           {"traker": trak_scores[tuned][2].scores(task.test, tuned[1]), "kronfluence": peer.scores(task.test, tuned_kf)})

    # ---- checkpoint ensembles: every method over the same snapshots of one training run, each tuned again on
    # validation (averaging over checkpoints changes which damping and normalisation work best)
    checkpoints = task.checkpoints()
    epochs = [*task.snapshot_epochs, "final"]
    ens: dict[tuple, tuple[float, float]] = {}
    ens_views = {}
    for k in ENSEMBLE_PROJECTIONS:
        # the layer sets the task offers (text: all, or its Linear layers alone, which is what kronfluence
        # can track), tried where the ensembles do best: without projection
        layer_sets = task.layer_sets if k == max(ENSEMBLE_PROJECTIONS) else {"all": ("*",)}
        for layers, include in layer_sets.items():
            feats = None
            for fisher in FISHERS:
                index = GradientIndex.build(checkpoints, task.loss_fn, task.train_batches(),
                                            **fisher_build(task, fisher, projection_dim=k, seed=0, include=include))
                if feats is None:
                    feats = {name: index.query_features(checkpoints, task.loss_fn, task.query_batches(q))
                             for name, q in query_sets.items()}
                for curvature in ("ekfac", "kfac"):
                    for ratio in RATIOS:
                        for norm in NORMS:
                            view = index.with_curvature(curvature, damping_ratio=ratio, score_norm=norm)
                            key = (fisher, k, curvature, ratio, norm, layers)
                            ens[key] = lds(view.score_features(feats["val"]).numpy(),
                                           view.score_features(feats["test"]).numpy())
                            ens_views[key] = (view, feats)
                emit(task=task.name, stage="engine_ensemble_swept", fisher=fisher, projection_dim=k, layers=layers)
    ens_best = max(ens, key=lambda c: ens[c][0])
    ens_copy = max((c for c in ens if c[4] == "relative"), key=lambda c: ens[c][0])
    for setting, key in (("default", ("empirical", *defaults, "all")),
                         ("default-sampled-fisher", ("sampled", *defaults, "all")),
                         ("tuned", ens_best), ("copy-mode", ens_copy),
                         *((f"tuned-{fisher}", max((c for c in ens if c[0] == fisher), key=lambda c: ens[c][0]))
                           for fisher in FISHERS),
                         *((f"tuned-layers-{layers}", max((c for c in ens if c[5] == layers),
                                                          key=lambda c: ens[c][0]))
                           for layers in task.layer_sets)):
        view, feats = ens_views[key]
        report("engine", f"ensemble-{setting}", {**params(key), "layers": key[5], "epochs": epochs},
               *ens[key], recall_at_1(view.score_features(feats["planted"]).numpy(), task.planted_rows))
    ens_trak = {}
    for k in (2048, 4096):
        peer = CheckpointEnsemble(lambda m, k=k: TrakPeer(task, m, k), checkpoints)
        for ratio in RATIOS:
            ens_trak[(k, ratio)] = (*lds(peer.scores(task.val, ratio), peer.scores(task.test, ratio)), peer)
    key = max(ens_trak, key=lambda c: ens_trak[c][0])
    val, test, peer = ens_trak[key]
    report("traker", "ensemble-tuned", {"projection_dim": key[0], "lambda_ratio": key[1], "epochs": epochs},
           val, test, recall_at_1(peer.scores(task.planted, key[1]), task.planted_rows))
    peer = CheckpointEnsemble(lambda m: KronfluencePeer(task, m), checkpoints)
    ens_kf = {damping: lds(peer.scores(task.val, damping), peer.scores(task.test, damping))
              for damping in KF_DAMPINGS}
    damping = max(ens_kf, key=lambda d: ens_kf[d][0])
    report("kronfluence", "ensemble-tuned", {"damping": damping if damping is not None else "0.1 x mean eig",
                                             "epochs": epochs},
           *ens_kf[damping], recall_at_1(peer.scores(task.planted, damping), task.planted_rows))
    view, feats = ens_views[ens_best]
    paired("ensemble", view.score_features(feats["test"]).numpy(),
           {"traker": ens_trak[key][2].scores(task.test, key[1]), "kronfluence": peer.scores(task.test, damping)})

    summary = {r["method"] + "/" + r["setting"]: r["lds_test"] for r in results
               if r["setting"] in ("default", "default-sampled-fisher", "tuned", "ensemble-default",
                                   "ensemble-default-sampled-fisher", "ensemble-tuned", "ensemble-tuned-layers-all")}
    recalls = {r["method"] + "/" + r["setting"]: r["recall_at_1"] for r in results
               if r["setting"] in ("default", "tuned", "copy-mode", "ensemble-tuned", "ensemble-copy-mode")}
    best_peer = max(summary.get("traker/tuned", -1), summary.get("kronfluence/tuned", -1))
    best_ensemble_peer = max(summary["traker/ensemble-tuned"], summary["kronfluence/ensemble-tuned"])
    emit(task=task.name, summary=summary, recall_at_1=recalls, subsets=subsets, queries_val=n_val,
         queries_test=_count(task.test), works=task.n,
         engine_tuned_beats_best_tuned_peer=summary["engine/tuned"] >= best_peer,
         engine_default_beats_best_tuned_peer=summary["engine/default"] >= best_peer,
         engine_ensemble_beats_best_ensemble_peer=summary["engine/ensemble-tuned"] >= best_ensemble_peer)
    (CACHE / f"quality_{task.name}.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
