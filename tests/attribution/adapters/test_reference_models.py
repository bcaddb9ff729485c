"""The reference models train locally, and their losses are per-example and deterministic."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from attribution.adapters import AdapterError, GenerationInput, WorkInput, adapter_load
from attribution.adapters.reference_image import (
    DigitVAE,
    digits_dataset,
    image_bytes_to_pixels,
    load_reference_image_model,
    parse_digit_label,
    pixels_to_png,
)
from attribution.adapters.reference_text import ByteGPT, encode_example, load_reference_text_model

ATOL = 1e-5


def _batch_invariance(adapter, model, items, batches_of):
    with torch.no_grad():
        together = torch.cat([adapter.loss_fn(model, b) for b in batches_of(items, len(items))])
        alone = torch.cat([adapter.loss_fn(model, b) for b in batches_of(items, 1)])
        again = torch.cat([adapter.loss_fn(model, b) for b in batches_of(items, 3)])
    assert together.shape == (len(items),)
    torch.testing.assert_close(together, alone, atol=ATOL, rtol=0)
    torch.testing.assert_close(together, again, atol=ATOL, rtol=0)
    return together


def test_reference_text_model_learns_and_its_loss_is_per_example(reference_text_dir, text_works):
    adapter = adapter_load("reference-text", reference_text_dir, {}, "ref-text@v1")
    model = adapter.load_model()
    assert isinstance(model, ByteGPT)
    assert not model.training
    losses = _batch_invariance(adapter, model, text_works[:7], adapter.work_batches)
    # Trained on these works: clearly better than a uniform guess over 257 symbols (ln 257 = 5.55).
    assert losses.mean().item() < 4.0
    untrained = ByteGPT(**json.loads((adapter.checkpoint_dir() / "config.json").read_text())["module_kwargs"])
    with torch.no_grad():
        fresh = untrained.eval().per_example_loss(next(iter(adapter.work_batches(text_works[:7], 7))))
    assert losses.mean().item() < fresh.mean().item() - 0.5


def test_reference_text_generation_loss_scores_only_the_output(reference_text_dir):
    adapter = adapter_load("reference-text", reference_text_dir, {}, "ref-text@v1")
    ids, start = encode_example("The quiet", " river", 128)
    assert ids[:start] == [256, *b"The quiet"]
    assert ids[start:] == list(b" river")
    gens = [GenerationInput(id=i, prompt="The quiet ", output_text=f"river number {i} finds") for i in range(5)]
    _batch_invariance(adapter, adapter.load_model(), gens, adapter.generation_batches)


def test_reference_text_generate_is_seeded(reference_text_dir):
    model = load_reference_text_model(reference_text_dir)
    first = model.generate("The quiet river", 40, seed=3)
    assert first == model.generate("The quiet river", 40, seed=3)
    assert len(first.encode("utf-8", errors="replace")) <= 40 * 3  # at most 40 bytes, some maybe replaced
    assert model.generate("The quiet river", 0, seed=3) == ""
    with pytest.raises(ValueError, match="temperature"):
        model.generate("x", 5, seed=0, temperature=0)


def test_reference_image_model_learns_samples_and_its_loss_is_per_example(reference_image_dir, digit_works):
    adapter = adapter_load("reference-image", reference_image_dir, {}, "digits@v1")
    model = adapter.load_model()
    assert isinstance(model, DigitVAE)
    losses = _batch_invariance(adapter, model, digit_works[:9], adapter.work_batches)
    untrained = DigitVAE().eval()
    with torch.no_grad():
        fresh = untrained.per_example_loss(next(iter(adapter.work_batches(digit_works[:9], 9))))
    assert losses.mean().item() < fresh.mean().item() * 0.8
    vae = load_reference_image_model(reference_image_dir)
    samples = vae.sample(7, 4, seed=1)
    assert samples.shape == (4, 8, 8)
    assert samples.min() >= 0.0
    assert samples.max() <= 1.0
    np.testing.assert_array_equal(samples, vae.sample(7, 4, seed=1))
    assert vae.sample(None, 2, seed=0).shape == (2, 8, 8)
    # A generated image, logged as PNG with its prompt, is a generation batch like any other.
    gens = [
        GenerationInput(id=1, prompt="a seven", output_data=pixels_to_png(samples[0]), output_mime_type="image/png")
    ]
    batch = next(iter(adapter.generation_batches(gens, 1)))
    assert batch["labels"].tolist() == [7]
    assert adapter.loss_fn(model, batch).shape == (1,)


def test_digit_images_round_trip_through_png_exactly_enough():
    images, _ = digits_dataset()
    for image in images[:20]:
        back = image_bytes_to_pixels(pixels_to_png(image)).reshape(8, 8)
        assert np.abs(back - image).max() <= 1 / 255 + 1e-6  # only 8-bit quantisation is lost


@pytest.mark.parametrize(
    ("caption", "label"),
    [("handwritten digit 3", 3), ("a Seven, drawn quickly", 7), ("no label here", None), ("2024 archive", None)],
)
def test_digit_labels_are_read_from_captions(caption, label):
    assert parse_digit_label(caption) == label


def test_reference_adapters_refuse_foreign_checkpoints(reference_text_dir, reference_image_dir):
    with pytest.raises(AdapterError, match=r"digits@v2.*not a reference image model"):
        adapter_load("reference-image", reference_text_dir, {}, "digits@v2")
    with pytest.raises(AdapterError, match=r"story@v2.*not a reference text model"):
        adapter_load("reference-text", reference_image_dir, {}, "story@v2")
    adapter = adapter_load("reference-image", reference_image_dir, {}, "digits@v1")
    with pytest.raises(AdapterError, match=r"digits@v1.*cannot read an image work"):
        list(adapter.work_batches([WorkInput(id=1, kind="image", data=b"not an image")], 1))
