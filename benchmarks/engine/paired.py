"""The paired test-LDS comparison of the last quality run's tuned settings, without the whole sweep.

    .venv/bin/python benchmarks/engine/paired.py --task text

Reads the settings `bench_quality.py` picked on validation (`.bench/engine/quality_<task>.json`), rebuilds only
those (the engine's, traker's and kronfluence's tuned settings, one model and checkpoint ensemble) and prints
`bench_quality.py`'s `paired_test_lds` lines: the engine's test LDS minus each peer's, query by query, with its
standard error. For a run made before the script printed them itself; ``--seeds`` also redraws the
engine's and kronfluence's tuned settings (their Fisher draws) to show how far a figure moves with the draw.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from bench_quality import CACHE, _count, emit, emit_paired, fisher_build, ground_truth  # noqa: E402
from peers import CheckpointEnsemble, KronfluencePeer, TrakPeer  # noqa: E402
from tasks import digits_task, spearman_lds, text_task  # noqa: E402

from attribution.engine import GradientIndex  # noqa: E402

warnings.filterwarnings("ignore", message="attribution leaves out")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--task", choices=("digits", "text"), required=True)
    parser.add_argument("--subsets", type=int, default=64, help="the ground truth the run used (default 64)")
    parser.add_argument("--results", type=Path, default=None,
                        help="the run's rows: its quality_<task>.json, or its printed JSON lines "
                             "(default .bench/engine/quality_<task>.json)")
    parser.add_argument("--sections", nargs="+", choices=("single-model", "ensemble"),
                        default=["single-model", "ensemble"])
    parser.add_argument("--seeds", type=int, nargs="*", default=[],
                        help="also rebuild the engine's and kronfluence's tuned settings with these seeds (the "
                             "engine's projections and Fisher draws, kronfluence's label draws) and print each "
                             "one's test LDS: how much of a difference is the draw")
    parser.add_argument("--skip-paired", action="store_true", help="only the --seeds figures")
    args = parser.parse_args()
    task = digits_task() if args.task == "digits" else text_task()
    text = (args.results or CACHE / f"quality_{task.name}.json").read_text()
    try:
        records = json.loads(text)
    except json.JSONDecodeError:  # printed lines: keep the result rows
        records = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    rows = {r["method"] + "/" + r["setting"]: r for r in records if "method" in r}
    masks, outputs = ground_truth(task, args.subsets)
    n_val, n_test = _count(task.val), _count(task.test)
    out_test = outputs[:, n_val:n_val + n_test]
    model = task.full_model if hasattr(task, "full_model") else task.train_fn(list(range(task.n)), seed=0)
    for section, suffix in (("single-model", ""), ("ensemble", "ensemble-")):
        if section not in args.sections:
            continue
        models = task.checkpoints() if suffix else model
        p = rows[f"engine/{suffix}tuned"]["params"]
        include = task.layer_sets[p.get("layers", "all")]
        damping = rows[f"kronfluence/{suffix}tuned"]["params"]["damping"]
        damping = None if isinstance(damping, str) else damping  # "0.1 x mean eig": its own heuristic
        if not args.skip_paired:
            index = GradientIndex.build(models, task.loss_fn, task.train_batches(),
                                        **fisher_build(task, p["fisher"], projection_dim=p["projection_dim"], seed=0,
                                                       include=include))
            view = index.with_curvature(p["curvature"], damping_ratio=p["damping_ratio"], score_norm=p["score_norm"])
            ours = view.score_features(index.query_features(models, task.loss_fn, task.query_batches(task.test)))
            t = rows[f"traker/{suffix}tuned"]["params"]
            ratio = t["lambda_ratio"] or None
            k = t["projection_dim"]
            trak = (CheckpointEnsemble(lambda m, k=k: TrakPeer(task, m, k), models) if suffix
                    else TrakPeer(task, models, k))
            kf = CheckpointEnsemble(lambda m: KronfluencePeer(task, m), models) if suffix else KronfluencePeer(task, models)
            emit_paired(task.name, section, ours.numpy(), {"traker": trak.scores(task.test, ratio),
                                                            "kronfluence": kf.scores(task.test, damping)}, masks, out_test)
        for seed in args.seeds:
            index = GradientIndex.build(models, task.loss_fn, task.train_batches(),
                                        **fisher_build(task, p["fisher"], projection_dim=p["projection_dim"],
                                                       seed=seed, include=include))
            view = index.with_curvature(p["curvature"], damping_ratio=p["damping_ratio"], score_norm=p["score_norm"])
            ours = view.score_features(index.query_features(models, task.loss_fn, task.query_batches(task.test)))
            kf = (CheckpointEnsemble(lambda m, seed=seed: KronfluencePeer(task, m, seed), models) if suffix
                  else KronfluencePeer(task, models, seed))
            emit(task=task.name, figure="seed_test_lds", section=section, seed=seed,
                 engine=round(spearman_lds(ours.numpy(), masks, out_test), 4),
                 kronfluence=round(spearman_lds(kf.scores(task.test, damping), masks, out_test), 4))


if __name__ == "__main__":
    main()
