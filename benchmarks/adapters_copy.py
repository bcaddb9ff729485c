"""Copy-detection precision and recall on planted copies, near copies and paraphrases (text and images).

Text: a catalog of synthetic works (tests/attribution/adapters/corpus.py; every 10th ends with a 12-word
boilerplate line). Positives are generations that contain an exact span of a work (12-60 words) or a near copy
(50 words with 2-4 single-word substitutions, insertions or deletions), and, to show the limit, heavily
edited copies (8 edits in 50 words). Negatives are paraphrases of a span
(every other content word swapped, sentences reordered; they must NOT count as verbatim), fresh text, short
shared phrases (8-11 words of a work) and the boilerplate line. A positive is found when the copied work is the
first match; any match on a negative is a false positive. Exact copies also check the reported character span.

The peer in the same run is a naive detector: "shares any 8-word shingle with the work", with no minimum length,
no stoplist and no region chaining, i.e. what a first attempt would do.

Images: the first 1,000 of scikit-learn's digits are the works; positives are exact re-encodings at another
scale, near copies (brightness/contrast change + Gaussian noise), heavy noise (the limit), and a work pasted into a corner of a larger
canvas; negatives are the 797 digits not in the index (same classes, other writers). The peer is pHash + dHash
alone (Hamming distance <= 12 of 128 bits), without the thumbnail check.

    .venv/bin/python benchmarks/adapters_copy.py [--works 2000] [--per-kind 200]

Prints one JSON line per (modality, detector, kind) and a summary per detector.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from attribution.adapters.reference_image import digits_dataset, pixels_to_png  # noqa: E402
from attribution.engine.copy_detection import (  # noqa: E402
    CopyIndex,
    image_hashes,
    shingle_hashes,
    tokenize,
)
from tests.attribution.adapters.corpus import (  # noqa: E402
    BOILERPLATE,
    frame,
    make_texts,
    near_copy,
    paraphrase,
    plant_copy,
    sentence,
)


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


class NaiveShingles:
    """Peer: any shared 8-word shingle is a copy (no minimum length, no stoplist, no chaining)."""

    def __init__(self, texts: list[str], ngram: int = 8) -> None:
        self.ngram = ngram
        self.owner: dict[int, int] = {}
        for i, text in enumerate(texts):
            for h in shingle_hashes(tokenize(text)[0], ngram).tolist():
                self.owner.setdefault(h, i)

    def query(self, text: str) -> list[int]:
        seen: dict[int, None] = {}
        for h in shingle_hashes(tokenize(text)[0], self.ngram).tolist():
            if h in self.owner:
                seen.setdefault(self.owner[h], None)
        return list(seen)


def text_cases(texts: list[str], per_kind: int, rng: random.Random) -> list[tuple[str, str, int | None, str]]:
    """(kind, generation, source work or None, the copied text) for every planted case."""
    cases = []
    n = len(texts)
    for _ in range(per_kind):
        p = plant_copy(texts, rng.randrange(n), rng.randint(12, 60), rng)
        cases.append(("exact copy", p.generation, p.source_index, p.copied))
    for _ in range(per_kind):
        p = near_copy(texts, rng.randrange(n), 50, rng.randint(2, 4), rng)
        cases.append(("near copy (2-4 edits in 50 words)", p.generation, p.source_index, p.copied))
    for _ in range(per_kind):
        # Beyond what a shingle detector can see: an edit every ~6 words leaves no 8-word run intact.
        p = near_copy(texts, rng.randrange(n), 50, 8, rng)
        cases.append(("heavily edited copy (8 edits in 50 words)", p.generation, p.source_index, p.copied))
    for _ in range(per_kind):
        p = paraphrase(texts, rng.randrange(n), 50, rng)
        cases.append(("paraphrase", p.generation, None, ""))
    for _ in range(per_kind):
        cases.append(("fresh text", " ".join(sentence(rng) for _ in range(6)), None, ""))
    for _ in range(per_kind):
        words = texts[rng.randrange(n)].split()
        start = rng.randrange(max(1, len(words) - 12))
        short = " ".join(words[start : start + rng.randint(8, 11)])
        cases.append(("short shared phrase (8-11 words)", frame(short, rng), None, ""))
    for _ in range(per_kind // 4):
        cases.append(("boilerplate line", frame(BOILERPLATE + ".", rng), None, ""))
    return cases


def score(results: dict[str, list[tuple[bool, bool]]], modality: str, detector: str) -> None:
    """results[kind] = [(is_positive, correctly_found_or_wrongly_flagged)]."""
    tp = fp = fn = tn = 0
    for kind, rows in results.items():
        positives = [hit for pos, hit in rows if pos]
        negatives = [flag for pos, flag in rows if not pos]
        if positives:
            emit(
                bench="copy_detection",
                modality=modality,
                detector=detector,
                kind=kind,
                cases=len(positives),
                recall=round(sum(positives) / len(positives), 4),
            )
        if negatives:
            emit(
                bench="copy_detection",
                modality=modality,
                detector=detector,
                kind=kind,
                cases=len(negatives),
                false_positive_rate=round(sum(negatives) / len(negatives), 4),
            )
        tp += sum(positives)
        fn += len(positives) - sum(positives)
        fp += sum(negatives)
        tn += len(negatives) - sum(negatives)
    emit(
        bench="copy_detection_summary",
        modality=modality,
        detector=detector,
        precision=round(tp / max(1, tp + fp), 4),
        recall=round(tp / max(1, tp + fn), 4),
        tp=tp,
        fp=fp,
        fn=fn,
        tn=tn,
    )


def bench_text(n_works: int, per_kind: int) -> None:
    texts = make_texts(n_works, seed=1, boilerplate_every=10)
    start = time.perf_counter()
    index = CopyIndex.build(texts=list(enumerate(texts)))
    build = time.perf_counter() - start
    naive = NaiveShingles(texts)
    cases = text_cases(texts, per_kind, random.Random(7))
    ours: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    peer: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    span_exact = span_total = 0
    query_times = []
    for kind, generation, source, copied in cases:
        t0 = time.perf_counter()
        found = index.query(text=generation).text
        query_times.append(time.perf_counter() - t0)
        peer_found = naive.query(generation)
        positive = source is not None
        if positive:
            ours[kind].append((True, bool(found) and found[0].work_id == source))
            peer[kind].append((True, bool(peer_found) and peer_found[0] == source))
            if kind == "exact copy" and found and found[0].work_id == source:
                span_total += 1
                start_char = generation.index(copied)
                # The span ends at the last word character; a copied trailing "." is punctuation, not a word.
                span_exact += found[0].generation_span == (start_char, start_char + len(copied.rstrip(".")))
        else:
            ours[kind].append((False, bool(found)))
            peer[kind].append((False, bool(peer_found)))
    emit(
        bench="copy_text_setup",
        build_seconds=round(build, 3),
        **index.stats,
        query_ms_p50=round(1000 * float(np.median(query_times)), 3),
        query_ms_p95=round(1000 * float(np.quantile(query_times, 0.95)), 3),
        exact_copies_with_exact_span=f"{span_exact}/{span_total}",
    )
    score(ours, "text", "CopyIndex (8-gram, >=12 words, stoplist, chaining)")
    score(peer, "text", "naive: any shared 8-gram")


def _canvas_png(image: np.ndarray, corner: int, rng: random.Random) -> bytes:
    canvas = np.zeros((16, 16), dtype=np.float32)
    top, left = divmod(corner, 2)
    canvas[top * 8 : top * 8 + 8, left * 8 : left * 8 + 8] = image
    other = (top ^ 1) * 8, (left ^ 1) * 8
    canvas[other[0] : other[0] + 8, other[1] : other[1] + 8] = rng.random() * 0.3  # something else on the canvas
    return pixels_to_png_any(canvas, scale=4)


def pixels_to_png_any(arr: np.ndarray, *, scale: int) -> bytes:
    import io

    from PIL import Image

    img = Image.fromarray(np.rint(np.clip(arr, 0, 1) * 255).astype(np.uint8))
    img = img.resize((arr.shape[1] * scale, arr.shape[0] * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def bench_images(per_kind: int) -> None:
    images, _ = digits_dataset()
    n_index = 1000
    start = time.perf_counter()
    index = CopyIndex.build(images=[(i, pixels_to_png(images[i])) for i in range(n_index)])
    build = time.perf_counter() - start
    rng = random.Random(3)
    nrng = np.random.default_rng(3)
    cases: list[tuple[str, bytes, int | None]] = []
    for _ in range(per_kind):
        i = rng.randrange(n_index)
        cases.append(("exact (re-encoded at 8x scale)", pixels_to_png(images[i], scale=8), i))
    for _ in range(per_kind):
        i = rng.randrange(n_index)
        gain, lift = rng.uniform(0.8, 1.0), rng.uniform(0.0, 0.1)
        noisy = np.clip(images[i] * gain + lift + nrng.normal(0, 0.04, (8, 8)), 0, 1)
        cases.append(("near (contrast, brightness, noise sd 0.04)", pixels_to_png(noisy), i))
    for _ in range(per_kind):
        i = rng.randrange(n_index)
        heavy = np.clip(images[i] + nrng.normal(0, 0.1, (8, 8)), 0, 1)
        cases.append(("heavy noise (sd 0.1)", pixels_to_png(heavy), i))
    for _ in range(per_kind):
        i = rng.randrange(n_index)
        cases.append(("pasted into a 2x2 canvas", _canvas_png(images[i], rng.randrange(4), rng), i))
    for j in range(min(per_kind * 2, len(images) - n_index)):
        cases.append(("unseen digit (same classes)", pixels_to_png(images[n_index + j]), None))
    ours: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    peer: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    query_times = []
    for kind, png, source in cases:
        t0 = time.perf_counter()
        found = index.query(image=png).images
        query_times.append(time.perf_counter() - t0)
        peer_found = _hash_only(index, png, max_distance=12)
        if source is not None:
            ours[kind].append((True, bool(found) and found[0].work_id == source))
            peer[kind].append((True, bool(peer_found) and peer_found[0] == source))
        else:
            ours[kind].append((False, bool(found)))
            peer[kind].append((False, bool(peer_found)))
    emit(
        bench="copy_image_setup",
        works=n_index,
        build_seconds=round(build, 3),
        query_ms_p50=round(1000 * float(np.median(query_times)), 3),
        query_ms_p95=round(1000 * float(np.quantile(query_times, 0.95)), 3),
    )
    score(ours, "image", "CopyIndex (pHash+dHash <= 28 and thumbnail correlation >= 0.98)")
    score(peer, "image", "hashes only (pHash+dHash <= 12 of 128 bits)")


def _hash_only(index: CopyIndex, png: bytes, *, max_distance: int) -> list[int]:
    """Whole-image hash distance only (the peer)."""
    from attribution.engine.copy_detection import decode_gray

    p, d = image_hashes(decode_gray(png))
    dist = np.bitwise_count(index.images.phashes ^ p).astype(int) + np.bitwise_count(index.images.dhashes ^ d)
    order = np.argsort(dist, kind="stable")
    return [int(index.images.work_ids[i]) for i in order if dist[i] <= max_distance]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--works", type=int, default=2000)
    parser.add_argument("--per-kind", type=int, default=200)
    args = parser.parse_args()
    bench_text(args.works, args.per_kind)
    bench_images(args.per_kind)


if __name__ == "__main__":
    main()
