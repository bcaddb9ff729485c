"""The reference image model: a class-conditional VAE over 8x8 grayscale digits, trained locally on catalog works.

Works are image files (any format Pillow reads, any size: they are reduced to 8x8 by area averaging, so the
scikit-learn digits saved at 32x32 come back exactly). The condition is the digit named in the work's title or
description ("7", "seven"); a work without one trains the unconditional class (index 10), and 10% of labelled
examples are dropped to it too, so the model also samples without a label (classifier-free style).

Per-example loss (what the gradient engine differentiates): the negative ELBO evaluated at the posterior mean,
``BCE(decoder(mu, label), x) + KL(q(z|x, label) || N(0, I))``. Using the mean instead of a sampled ``z`` makes the
loss deterministic, so an index and a query see the same function. Generations are images too: a generation's
prompt gives its label and its output bytes its pixels.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from attribution.adapters.base import AdapterError, GenerationInput, WorkInput
from attribution.adapters.reference_text import TrainResult
from attribution.adapters.torch_module import CHECKPOINT_CONFIG, TorchModuleAdapter

SIDE = 8
PIXELS = SIDE * SIDE
N_DIGITS = 10
UNCONDITIONAL = N_DIGITS  # the extra class: "no label"
FORMAT = "reference-image/1"
WEIGHTS = "model.safetensors"
_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_LABEL_RE = re.compile(r"\b(" + "|".join(_WORDS) + r"|[0-9])\b", re.IGNORECASE)


def parse_digit_label(text: str) -> int | None:
    """The first digit named in ``text`` ("a seven", "digit 7"), or None."""
    match = _LABEL_RE.search(text or "")
    if not match:
        return None
    token = match.group(1).lower()
    return int(token) if token.isdigit() else _WORDS.index(token)


def image_bytes_to_pixels(data: bytes) -> np.ndarray:
    """Any image file -> float32 ``[64]`` in [0, 1], grayscale, 8x8 by area averaging (white digit on black)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            small = img.convert("L").resize((SIDE, SIDE), Image.Resampling.BOX)
            return (np.asarray(small, dtype=np.float32) / 255.0).reshape(PIXELS)
    except Exception as exc:
        raise ValueError(f"not a readable image ({type(exc).__name__}: {exc})") from exc


def pixels_to_png(pixels: np.ndarray, *, scale: int = 4) -> bytes:
    """An 8x8 array in [0, 1] as PNG bytes, upscaled ``scale`` times with nearest neighbours (for display)."""
    from PIL import Image

    arr = np.clip(np.asarray(pixels, dtype=np.float32).reshape(SIDE, SIDE), 0.0, 1.0)
    img = Image.fromarray(np.rint(arr * 255).astype(np.uint8))  # 2-D uint8: mode "L"
    if scale > 1:
        img = img.resize((SIDE * scale, SIDE * scale), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@dataclass(frozen=True)
class DigitVAEConfig:
    hidden: int = 128
    latent: int = 8


class DigitVAE(nn.Module):
    """Conditional VAE: encoder q(z | x, y) and Bernoulli decoder p(x | z, y), all ``nn.Linear``."""

    def __init__(self, hidden: int = 128, latent: int = 8) -> None:
        super().__init__()
        self.config = DigitVAEConfig(hidden=hidden, latent=latent)
        n_cond = N_DIGITS + 1
        self.enc = nn.Linear(PIXELS + n_cond, hidden)
        self.enc_out = nn.Linear(hidden, 2 * latent)
        self.dec = nn.Linear(latent + n_cond, hidden)
        self.dec_out = nn.Linear(hidden, PIXELS)

    @staticmethod
    def condition(labels: torch.Tensor) -> torch.Tensor:
        return F.one_hot(labels, N_DIGITS + 1).float()  # (B, 11)

    def encode(self, pixels: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.relu(self.enc(torch.cat([pixels, self.condition(labels)], dim=1)))  # (B, H)
        mu, logvar = self.enc_out(h).chunk(2, dim=1)  # (B, Z) each
        return mu, logvar.clamp(-10, 10)

    def decode(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.dec(torch.cat([z, self.condition(labels)], dim=1)))  # (B, H)
        return self.dec_out(h)  # (B, 64) logits

    def neg_elbo(self, pixels: torch.Tensor, labels: torch.Tensor, *, sample: torch.Generator | None) -> torch.Tensor:
        mu, logvar = self.encode(pixels, labels)
        # Training samples z (reparameterisation); the attribution loss uses the mean, so it is deterministic.
        z = mu if sample is None else mu + torch.randn(mu.shape, generator=sample) * torch.exp(0.5 * logvar)
        recon = F.binary_cross_entropy_with_logits(self.decode(z, labels), pixels, reduction="none").sum(1)  # (B,)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)  # (B,)
        return recon + kl

    def forward(self, pixels: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.neg_elbo(pixels, labels, sample=None)

    def per_example_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Negative ELBO at the posterior mean, ``[B]`` (deterministic)."""
        return self(batch["pixels"], batch["labels"])

    @torch.no_grad()
    def sample(self, label: int | None, n: int, seed: int) -> np.ndarray:
        """``n`` images ``[n, 8, 8]`` in [0, 1] of digit ``label`` (None: any digit)."""
        if label is not None and not 0 <= label < N_DIGITS:
            raise ValueError(f"label must be a digit 0-9 or None, got {label!r}")
        generator = torch.Generator().manual_seed(seed)
        z = torch.randn((n, self.config.latent), generator=generator)
        labels = torch.full((n,), UNCONDITIONAL if label is None else label, dtype=torch.long)
        return torch.sigmoid(self.decode(z, labels)).view(n, SIDE, SIDE).numpy()


def collate_images(items: Sequence[tuple[bytes, str]], *, what: str) -> dict[str, torch.Tensor]:
    """``(image bytes, caption)`` pairs -> ``{"pixels": [B, 64], "labels": [B]}``."""
    pixels = np.zeros((len(items), PIXELS), dtype=np.float32)
    labels = np.full((len(items),), UNCONDITIONAL, dtype=np.int64)
    for row, (data, caption) in enumerate(items):
        try:
            pixels[row] = image_bytes_to_pixels(data)
        except ValueError as exc:
            raise ValueError(f"{what} #{row}: {exc}") from exc
        label = parse_digit_label(caption)
        if label is not None:
            labels[row] = label
    return {"pixels": torch.from_numpy(pixels), "labels": torch.from_numpy(labels)}


class ReferenceImageAdapter(TorchModuleAdapter):
    """Loads a checkpoint written by ``train_reference_image_model``."""

    modality = "image"
    work_kinds = ("image",)
    module_path = f"{__name__}.DigitVAE"
    default_batch_size = 64

    def validate(self) -> None:
        super().validate()
        if self.options.get("format") != FORMAT:
            raise self.error(
                f"checkpoint {self.checkpoint_uri!r} is not a reference image model (config.json format is "
                f"{self.options.get('format')!r}, expected {FORMAT!r})"
            )

    def loss_fn(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model.per_example_loss(batch)

    def collate_works(self, works: Sequence[WorkInput]) -> dict[str, torch.Tensor]:
        try:
            return collate_images([(w.read_bytes(), w.title) for w in works], what="work")
        except (ValueError, OSError) as exc:
            raise self.error(f"cannot read an image work: {exc}") from exc

    def collate_generations(self, generations: Sequence[GenerationInput]) -> dict[str, torch.Tensor]:
        try:
            return collate_images([(g.read_output_bytes(), g.prompt) for g in generations], what="generation")
        except (ValueError, OSError) as exc:
            raise self.error(f"cannot read an image generation: {exc}") from exc


ProgressFn = Callable[[int, int, float], None]


def train_reference_image_model(
    works: Sequence[WorkInput],
    out_dir: str | Path,
    *,
    epochs: int = 30,
    seed: int = 0,
    progress: ProgressFn | None = None,
    model_config: DigitVAEConfig | None = None,
    batch_size: int = 64,
    learning_rate: float = 3e-3,
    label_dropout: float = 0.1,
) -> TrainResult:
    """Train a ``DigitVAE`` on the image works and save it (``model.safetensors`` + ``config.json``) to ``out_dir``."""
    from safetensors.torch import save_file

    images = [w for w in works if w.kind == "image"]
    if not images:
        raise AdapterError("no image works to train the reference image model on")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    batch = collate_images([(w.read_bytes(), w.title) for w in images], what="work")
    pixels, labels = batch["pixels"], batch["labels"]  # (N, 64), (N,)
    cfg = model_config or DigitVAEConfig()
    started = time.perf_counter()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = DigitVAE(**asdict(cfg))
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    n = len(images)
    steps_per_epoch = max(1, math.ceil(n / batch_size))
    total = steps_per_epoch * epochs
    loss_value = float("nan")
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            y = labels[idx].clone()
            drop = torch.rand(len(idx), generator=generator) < label_dropout
            y[drop] = UNCONDITIONAL
            loss = model.neg_elbo(pixels[idx], y, sample=generator).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            loss_value = float(loss.detach())
            if progress is not None:
                progress(step, total, loss_value)
    model.eval()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS))
    (out / CHECKPOINT_CONFIG).write_text(
        json.dumps(
            {
                "format": FORMAT,
                "module_kwargs": asdict(cfg),
                "training": {
                    "n_works": n,
                    "n_labelled": int((labels != UNCONDITIONAL).sum()),
                    "epochs": epochs,
                    "steps": total,
                    "batch_size": batch_size,
                    "learning_rate": learning_rate,
                    "label_dropout": label_dropout,
                    "seed": seed,
                    "final_loss": loss_value,
                },
            },
            indent=2,
            sort_keys=True,
        )
    )
    return TrainResult(
        checkpoint_dir=out, steps=total, final_loss=loss_value, seconds=time.perf_counter() - started, n_works=n
    )


def load_reference_image_model(checkpoint_dir: str | Path, *, model_version_label: str = "") -> DigitVAE:
    """The trained ``DigitVAE`` from a checkpoint directory (for the demo's model service)."""
    adapter = ReferenceImageAdapter(str(checkpoint_dir), {}, model_version_label=model_version_label)
    adapter.validate()
    model = adapter.load_model()
    assert isinstance(model, DigitVAE)
    return model


def digits_dataset() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (shipped with the package, nothing downloaded) in [0, 1], and labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)
