"""Copy detection: the exact copied span is found, short common phrases and paraphrases are not copies."""

from __future__ import annotations

import random

import numpy as np
import pytest

from attribution.adapters import GenerationInput
from attribution.adapters.reference_image import digits_dataset, pixels_to_png
from attribution.adapters.scoring import GenerationScores, WorkScore, credit_copies, generation_copies
from attribution.engine.copy_detection import (
    CopyDetectionConfig,
    CopyIndex,
    CopyIndexError,
    char_span,
    tokenize,
)
from tests.attribution.adapters.corpus import BOILERPLATE, make_texts, near_copy, paraphrase, plant_copy


@pytest.fixture(scope="module")
def corpus():
    texts = make_texts(200, seed=3, boilerplate_every=10)
    return texts, CopyIndex.build(texts=[(900 + i, t) for i, t in enumerate(texts)])


def test_finds_the_exact_copied_span(corpus):
    texts, index = corpus
    rng = random.Random(0)
    planted = plant_copy(texts, 57, 30, rng)
    found = index.query(text=planted.generation)
    assert [m.work_id for m in found.text] == [957]
    match = found.text[0]
    start = planted.generation.index(planted.copied)
    # The copy starts/ends mid-sentence, so punctuation next to it may or may not be part of a word token.
    assert match.generation_span == (start, start + len(planted.copied.rstrip(".")))
    assert match.text == planted.generation[slice(*match.generation_span)]
    assert match.verbatim
    assert match.matched_words == match.longest_run_words == 30
    # The work side maps back to the same words in the work's own text.
    w0, w1 = char_span(texts[57], match.work_words)
    assert tokenize(texts[57][w0:w1])[0] == tokenize(planted.copied)[0]


def test_ignores_short_common_phrases_and_boilerplate(corpus):
    texts, index = corpus
    # A phrase shared with a work, but shorter than min_match_words (12): not a copy.
    words = texts[5].split()
    short = " ".join(words[3:13])  # 10 words
    assert not index.query(text=f"Once upon a time {short} and then nothing").text
    # BOILERPLATE (12 words) ends every tenth work: its shingles are in 20 works, above the stoplist threshold.
    assert index.text.stats["stopped_shingles"] > 0
    assert not index.query(text=f"Some story. {BOILERPLATE}.").text
    # Boilerplate inside a real copy does not hide the copy.
    planted = plant_copy(texts, 10, 25, random.Random(4))
    assert 910 in index.query(text=planted.generation + " " + BOILERPLATE).work_ids


def test_near_copies_match_and_paraphrases_do_not(corpus):
    texts, index = corpus
    rng = random.Random(1)
    for source in (12, 99, 150):
        near = near_copy(texts, source, 50, 3, rng)
        found = index.query(text=near.generation)
        assert found.text, near.generation
        assert found.text[0].work_id == 900 + source
        assert not found.text[0].verbatim
        assert found.text[0].matched_words >= 40
        para = paraphrase(texts, source, 50, rng)
        assert not index.query(text=para.generation).text, para.generation


def test_a_repeated_line_cannot_blow_up_the_index():
    line = "the same long line of verse repeated again and again across the page "
    index = CopyIndex.build(texts=[(1, line * 50)], config=CopyDetectionConfig(max_positions_per_work=2))
    assert index.text.stats["postings"] <= 2 * 13  # 13 distinct 8-word shingles in the cycle
    assert index.query(text=line * 2).work_ids == [1]


def test_image_copies_exact_near_and_pasted_are_found_unrelated_are_not():
    images, _ = digits_dataset()
    works = [(i, pixels_to_png(images[i])) for i in range(300)]
    index = CopyIndex.build(images=works)
    exact = index.query(image=pixels_to_png(images[42], scale=8))
    assert exact.images[0].work_id == 42
    assert exact.images[0].distance <= 4
    assert exact.images[0].correlation > 0.999
    assert exact.images[0].whole_image
    rng = np.random.default_rng(0)
    noisy = np.clip(images[120] * 0.95 + 0.03 + rng.normal(0, 0.04, (8, 8)), 0, 1)  # dimmer, lifted, noisy
    assert index.query(image=pixels_to_png(noisy)).work_ids[:1] == [120]
    # A work pasted into the top-left quarter of a larger canvas: found, with its region.
    canvas = np.zeros((16, 16), dtype=np.float32)
    canvas[:8, :8] = images[200]
    pasted = index.query(image=_png(canvas))  # shown at 64x64
    assert pasted.images[0].work_id == 200
    assert pasted.images[0].region == (0, 0, 32, 32)
    assert not pasted.images[0].whole_image
    # Digits the index never saw (the same classes, other writers): no near-duplicate claimed.
    unrelated = [index.query(image=pixels_to_png(images[i])) for i in range(1000, 1060)]
    assert not any(u.images for u in unrelated)


def _png(canvas: np.ndarray) -> bytes:
    import io

    from PIL import Image

    img = Image.fromarray(np.rint(canvas * 255).astype(np.uint8)).resize((64, 64), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_save_load_round_trip(tmp_path, corpus):
    texts, index = corpus
    index.save(tmp_path / "copy")
    loaded = CopyIndex.load(tmp_path / "copy")
    planted = plant_copy(texts, 33, 20, random.Random(9))
    assert loaded.query(text=planted.generation) == index.query(text=planted.generation)
    (tmp_path / "copy" / "text.npz").write_bytes(b"tampered")
    with pytest.raises(CopyIndexError, match="does not match its recorded checksum"):
        CopyIndex.load(tmp_path / "copy")


def test_a_copied_work_is_always_credited_and_flagged(corpus):
    texts, index = corpus
    planted = plant_copy(texts, 77, 40, random.Random(2))
    gen = GenerationInput(id=5, prompt="write", output_text=planted.generation)
    copies = generation_copies(index, gen)
    # The attribution scores missed the copied work entirely.
    scores = GenerationScores(generation_id=5, works=(WorkScore(901, 0.4), WorkScore(902, 0.1)))
    credited = credit_copies(scores, copies)
    assert credited.works[0] == WorkScore(work_id=977, score=0.4, copied=True)
    assert [w.work_id for w in credited.works] == [977, 901, 902]
    assert credited.copies.text[0].work_id == 977
    # No positive score at all: the copy still gets a positive one.
    negative = GenerationScores(generation_id=5, works=(WorkScore(901, -2.0),))
    assert credit_copies(negative, copies).works[0].score > 0
    # Nothing copied: unchanged.
    assert credit_copies(scores, index.query(text="nothing copied here")) == scores
