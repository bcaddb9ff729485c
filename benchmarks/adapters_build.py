"""Index build time per 1,000 works for each adapter, against the plain cost of one pass over the same works.

For a gradient adapter the index build (per-example projected gradients, curvature, float16 shards; the
engine's default options) is compared with a plain training-style pass: forward + backward of the summed loss
over the same batches, which any attribution method needs at least once. For a retrieval adapter the build
is compared with calling the embedding library directly on the raw texts/images. The copy-detection indexes
(built alongside every index) are timed too. Reference models are first trained on the same works, and their
training time is reported (the demo trains them on the catalog).

Works: synthetic English-like texts (tests/attribution/adapters/corpus.py, ~100 words each) and
scikit-learn's bundled 8x8 digits (as 32x32 PNGs). Nothing is downloaded.

    .venv/bin/python benchmarks/adapters_build.py [--works 1000] [--only hf-tiny reference-text ...]

Prints one JSON line per adapter.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attribution.adapters import WorkInput, adapter_load  # noqa: E402
from attribution.engine import GradientIndex, IndexConfig  # noqa: E402
from attribution.engine.copy_detection import CopyIndex  # noqa: E402
from attribution.engine.retrieval import EmbeddingIndex  # noqa: E402
from tests.attribution.adapters.corpus import make_texts  # noqa: E402
from tests.attribution.adapters.tiny_models import build_tiny_gpt2  # noqa: E402

ADAPTERS = ("hf-tiny", "hf-small", "reference-text", "reference-image", "retrieval-text", "retrieval-image")


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def per_1000(seconds: float, n: int) -> float:
    return round(seconds * 1000 / n, 2)


def plain_pass_seconds(adapter, model, works, batch_size: int) -> float:
    """Forward + backward of the summed loss over every batch: the floor any gradient method pays."""
    start = time.perf_counter()
    for batch in adapter.work_batches(works, batch_size):
        model.zero_grad(set_to_none=True)
        adapter.loss_fn(model, batch).sum().backward()
    return time.perf_counter() - start


def gradient_row(name: str, adapter, works, batch_size: int, extra: dict) -> None:
    model = adapter.load_model()
    baseline = plain_pass_seconds(adapter, model, works, batch_size)
    config = IndexConfig()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        index = GradientIndex.build(
            model,
            adapter.loss_fn,
            lambda: adapter.work_batches(works, batch_size),
            config=config,
            work_ids=[w.id for w in works],
            path=Path(tmp) / "index",
        )
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in (Path(tmp) / "index").rglob("*") if p.is_file())
    params = sum(p.numel() for p in model.parameters())
    emit(
        bench="index_build",
        adapter=name,
        method="gradient",
        works=len(works),
        seconds=round(seconds, 2),
        seconds_per_1000_works=per_1000(seconds, len(works)),
        plain_pass_seconds=round(baseline, 2),
        ratio_to_plain_pass=round(seconds / baseline, 2),
        projection_dim=config.projection_dim,
        curvature=config.curvature,
        feature_dim=index.feature_dim,
        coverage_share=round(index.coverage["share"], 4),
        parameters=params,
        index_bytes=size,
        batch_size=batch_size,
        **extra,
    )


def copy_row(name: str, works, *, images: bool) -> None:
    start = time.perf_counter()
    if images:
        from attribution.engine.copy_detection import decode_gray

        CopyIndex.build(images=[(w.id, decode_gray(w.read_bytes())) for w in works])
    else:
        CopyIndex.build(texts=[(w.id, w.text_content()) for w in works])
    seconds = time.perf_counter() - start
    emit(
        bench="index_build",
        adapter=name,
        method="copy-detection",
        works=len(works),
        seconds=round(seconds, 3),
        seconds_per_1000_works=per_1000(seconds, len(works)),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--works", type=int, default=1000)
    parser.add_argument("--only", nargs="+", choices=ADAPTERS, default=list(ADAPTERS))
    args = parser.parse_args()
    torch.manual_seed(0)
    n = args.works
    texts = make_texts(n, seed=0)
    text_works = [WorkInput(id=i, kind="text", text=t) for i, t in enumerate(texts)]
    emit(
        bench="build_setup",
        works=n,
        mean_words=round(float(np.mean([len(t.split()) for t in texts])), 1),
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
    )

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "hf-tiny" in args.only:
            path = build_tiny_gpt2(tmp / "hf-tiny", n_positions=128)
            adapter = adapter_load("hf-causal-lm", path, {}, "hf-tiny@bench")
            gradient_row("hf-tiny (GPT-2, 2 layers x 32)", adapter, text_works, 16, {"max_tokens": 128})
        if "hf-small" in args.only:
            path = build_tiny_gpt2(tmp / "hf-small", n_positions=128, n_embd=128, n_layer=4, n_head=4)
            adapter = adapter_load("hf-causal-lm", path, {}, "hf-small@bench")
            gradient_row("hf-small (GPT-2, 4 layers x 128)", adapter, text_works, 16, {"max_tokens": 128})
        if "reference-text" in args.only:
            from attribution.adapters.reference_text import train_reference_text_model

            trained = train_reference_text_model(text_works, tmp / "ref-text", epochs=1, seed=0)
            adapter = adapter_load("reference-text", str(tmp / "ref-text"), {}, "ref-text@bench")
            gradient_row(
                "reference-text (ByteGPT 2 x 64, 256 bytes)",
                adapter,
                text_works,
                16,
                {
                    "train_seconds": round(trained.seconds, 2),
                    "train_steps": trained.steps,
                    "train_final_loss": round(trained.final_loss, 3),
                },
            )
            copy_row("copy-detection text", text_works, images=False)
        if "reference-image" in args.only or "retrieval-image" in args.only:
            from attribution.adapters.reference_image import digits_dataset, pixels_to_png

            images, labels = digits_dataset()
            image_works = [
                WorkInput(
                    id=i,
                    kind="image",
                    data=pixels_to_png(images[i % len(images)]),
                    title=f"digit {labels[i % len(images)]}",
                )
                for i in range(n)
            ]
        if "reference-image" in args.only:
            from attribution.adapters.reference_image import train_reference_image_model

            trained = train_reference_image_model(image_works, tmp / "ref-image", epochs=30, seed=0)
            adapter = adapter_load("reference-image", str(tmp / "ref-image"), {}, "ref-image@bench")
            gradient_row(
                "reference-image (conditional VAE)",
                adapter,
                image_works,
                64,
                {
                    "train_seconds": round(trained.seconds, 2),
                    "train_steps": trained.steps,
                    "train_final_loss": round(trained.final_loss, 3),
                },
            )
            copy_row("copy-detection images", image_works, images=True)
        if "retrieval-text" in args.only:
            adapter = adapter_load("retrieval-text", "", {}, "minilm@bench")
            encoder = adapter.load_model()
            encoder(next(iter(adapter.work_batches(text_works[:8], 8))))  # warm-up, for both
            start = time.perf_counter()
            encoder.model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
            library = time.perf_counter() - start
            start = time.perf_counter()
            batches = adapter.work_batches(text_works, adapter.default_batch_size)
            index = EmbeddingIndex.build(encoder, batches, work_ids=range(n))
            seconds = time.perf_counter() - start
            emit(
                bench="index_build",
                adapter="retrieval-text (MiniLM-L6, 384-d)",
                method="retrieval",
                works=n,
                seconds=round(seconds, 2),
                seconds_per_1000_works=per_1000(seconds, n),
                library_encode_seconds=round(library, 2),
                ratio_to_library=round(seconds / library, 2),
                dim=index.dim,
                index_bytes=int(index.embeddings.nbytes),
            )
        if "retrieval-image" in args.only:
            adapter = adapter_load("retrieval-image", "", {}, "dct@bench")
            encoder = adapter.load_model()
            start = time.perf_counter()
            index = EmbeddingIndex.build(encoder, adapter.work_batches(image_works, 256), work_ids=range(n))
            seconds = time.perf_counter() - start
            emit(
                bench="index_build",
                adapter="retrieval-image (DCT 12x12)",
                method="retrieval",
                works=n,
                seconds=round(seconds, 3),
                seconds_per_1000_works=per_1000(seconds, n),
                dim=index.dim,
            )


if __name__ == "__main__":
    main()
