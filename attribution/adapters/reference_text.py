"""The reference text model: a small byte-level GPT the platform trains locally on catalog works.

Why bytes: no tokenizer to train or ship, any language or code works, and the checkpoint is a state dict plus a
JSON config. Why a transformer built from ``nn.Linear``: the gradient engine projects every linear layer, so the
whole model takes part in attribution (a GRU's fused weights would not). Sizes default to what trains in about
a minute on two CPU cores over a few hundred works; ``ByteGPTConfig`` scales them up.

A training work is ``[BOS] text`` (its first ``block_size - 1`` bytes); a generation is ``[BOS] prompt output``
with the loss on the output bytes only, as in the Hugging Face adapter.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from attribution.adapters.base import AdapterError, GenerationInput, WorkInput
from attribution.adapters.losses import IGNORE_INDEX, causal_lm_loss, sampled_causal_lm_loss
from attribution.adapters.torch_module import CHECKPOINT_CONFIG, TorchModuleAdapter

BOS = 256  # one id past the bytes: starts every work and generation
VOCAB_SIZE = 257
FORMAT = "reference-text/1"
WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class ByteGPTConfig:
    block_size: int = 256
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64


class _Block(nn.Module):
    def __init__(self, cfg: ByteGPTConfig) -> None:
        super().__init__()
        self.n_head = cfg.n_head
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd)
        self.fc_out = nn.Linear(4 * cfg.n_embd, cfg.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape  # (B, T, C)
        q, k, v = self.qkv(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))  # (B, H, T, C/H)
        # Causal attention: right padding never leaks into real positions, so batches need no padding mask.
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, c)
        x = x + self.proj(y)
        return x + self.fc_out(F.gelu(self.fc(self.ln_2(x))))


class ByteGPT(nn.Module):
    """A GPT over bytes (vocabulary 256 + BOS)."""

    def __init__(self, block_size: int = 256, n_layer: int = 2, n_head: int = 4, n_embd: int = 64) -> None:
        super().__init__()
        if n_embd % n_head:
            raise ValueError(f"n_embd ({n_embd}) must be a multiple of n_head ({n_head})")
        self.config = ByteGPTConfig(block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd)
        self.tok_emb = nn.Embedding(VOCAB_SIZE, n_embd)
        self.pos_emb = nn.Embedding(block_size, n_embd)
        self.blocks = nn.ModuleList(_Block(self.config) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, VOCAB_SIZE, bias=False)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        _, t = input_ids.shape  # (B, T)
        if t > self.config.block_size:
            raise ValueError(f"sequence of {t} tokens is longer than block_size {self.config.block_size}")
        # Positions as a (1, T) batch: the gradient engine reads a leading dimension of 1 as "shared by all".
        pos = torch.arange(t, device=input_ids.device).unsqueeze(0)  # (1, T)
        x = self.tok_emb(input_ids) + self.pos_emb(pos)  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))  # (B, T, V)

    def per_example_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean NLL of the labelled (output) bytes of each example, ``[B]``."""
        return causal_lm_loss(self(batch["input_ids"]), batch["labels"])

    def per_example_fisher_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``per_example_loss`` with every labelled byte drawn from the model's own prediction, ``[B]``."""
        return sampled_causal_lm_loss(self(batch["input_ids"]), batch["labels"])

    @torch.no_grad()
    def generate(
        self, prompt: str, max_new_tokens: int, seed: int, *, temperature: float = 0.8, top_k: int | None = 40
    ) -> str:
        """Continue ``prompt`` by up to ``max_new_tokens`` bytes (stops at BOS, the end of a work)."""
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        generator = torch.Generator().manual_seed(seed)
        ids = torch.tensor([[BOS, *prompt.encode("utf-8")]], dtype=torch.long)  # (1, T)
        out: list[int] = []
        for _ in range(max_new_tokens):
            context = ids[:, -self.config.block_size :]
            logits = self(context)[:, -1, :].float() / temperature  # (1, V)
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)  # (1, 1)
            if int(nxt) == BOS:
                break
            out.append(int(nxt))
            ids = torch.cat([ids, nxt], dim=1)
        return bytes(out).decode("utf-8", errors="replace")


def encode_example(prompt: str, output: str, block_size: int) -> tuple[list[int], int]:
    """``[BOS] prompt output`` as byte ids within ``block_size``, and the index where the output starts.

    The output keeps its first bytes when it does not fit; the prompt keeps its last bytes in the room left.
    """
    out = list(output.encode("utf-8"))[: block_size - 1]
    room = block_size - 1 - len(out)
    prm = list(prompt.encode("utf-8"))
    prm = prm[len(prm) - room :] if room > 0 else []
    return [BOS, *prm, *out], 1 + len(prm)


def collate_pairs(pairs: Sequence[tuple[str, str]], block_size: int) -> dict[str, torch.Tensor]:
    encoded = [encode_example(p, o, block_size) for p, o in pairs]
    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), BOS, dtype=torch.long)  # (B, T)
    labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)  # (B, T)
    for row, (ids, start) in enumerate(encoded):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, start : len(ids)] = torch.tensor(ids[start:])
    return {"input_ids": input_ids, "labels": labels}


class ReferenceTextAdapter(TorchModuleAdapter):
    """Loads a checkpoint written by ``train_reference_text_model``."""

    modality = "text"
    work_kinds = ("text", "code")
    module_path = f"{__name__}.ByteGPT"
    default_batch_size = 16

    @property
    def block_size(self) -> int:
        return int(self.options.get("module_kwargs", {}).get("block_size", ByteGPTConfig.block_size))

    def validate(self) -> None:
        super().validate()
        if self.options.get("format") != FORMAT:
            raise self.error(
                f"checkpoint {self.checkpoint_uri!r} is not a reference text model (config.json format is "
                f"{self.options.get('format')!r}, expected {FORMAT!r})"
            )

    def loss_fn(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model.per_example_loss(batch)

    def collate_works(self, works: Sequence[WorkInput]) -> dict[str, torch.Tensor]:
        return collate_pairs([("", w.text_content()) for w in works], self.block_size)

    def collate_generations(self, generations: Sequence[GenerationInput]) -> dict[str, torch.Tensor]:
        return collate_pairs([(g.prompt, g.output_text) for g in generations], self.block_size)


@dataclass(frozen=True)
class TrainResult:
    """Where a trained reference model was saved and how training went."""

    checkpoint_dir: Path
    steps: int
    final_loss: float
    seconds: float
    n_works: int


ProgressFn = Callable[[int, int, float], None]  # (step, total_steps, loss)


def train_reference_text_model(
    works: Sequence[WorkInput],
    out_dir: str | Path,
    *,
    epochs: int = 3,
    seed: int = 0,
    progress: ProgressFn | None = None,
    model_config: ByteGPTConfig | None = None,
    batch_size: int = 32,
    learning_rate: float = 3e-3,
) -> TrainResult:
    """Train a ``ByteGPT`` on the works' text and save it (``model.safetensors`` + ``config.json``) to ``out_dir``.

    An epoch is as many random ``block_size`` windows as it takes to cover the corpus once on average.
    """
    from safetensors.torch import save_file

    texts = [w.text_content() for w in works if w.kind in ("text", "code")]
    texts = [t for t in texts if t]
    if not texts:
        raise AdapterError("no text works to train the reference text model on")
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    cfg = model_config or ByteGPTConfig()
    started = time.perf_counter()
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)

    stream: list[int] = []
    for text in texts:
        stream.append(BOS)
        stream.extend(text.encode("utf-8"))
    data = torch.tensor(stream, dtype=torch.long)
    window = min(cfg.block_size, len(data) - 1)
    if window < 2:
        raise AdapterError("the works' text is too short to train the reference text model on")
    steps_per_epoch = max(1, math.ceil(len(data) / (batch_size * window)))
    total = steps_per_epoch * epochs

    model = ByteGPT(**asdict(cfg))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total, eta_min=learning_rate / 10)
    loss_value = float("nan")
    for step in range(1, total + 1):
        starts = torch.randint(0, len(data) - window, (batch_size,), generator=generator)
        x = torch.stack([data[s : s + window] for s in starts.tolist()])  # (B, T)
        y = torch.stack([data[s + 1 : s + 1 + window] for s in starts.tolist()])  # (B, T)
        logits = model(x)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB_SIZE), y.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        loss_value = float(loss.detach())
        if progress is not None:
            progress(step, total, loss_value)
    model.eval()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out / WEIGHTS))
    seconds = time.perf_counter() - started
    (out / CHECKPOINT_CONFIG).write_text(
        json.dumps(
            {
                "format": FORMAT,
                "module_kwargs": asdict(cfg),
                "training": {
                    "n_works": len(texts),
                    "n_bytes": len(stream),
                    "epochs": epochs,
                    "steps": total,
                    "batch_size": batch_size,
                    "learning_rate": learning_rate,
                    "seed": seed,
                    "final_loss": loss_value,
                },
            },
            indent=2,
            sort_keys=True,
        )
    )
    return TrainResult(checkpoint_dir=out, steps=total, final_loss=loss_value, seconds=seconds, n_works=len(texts))


def load_reference_text_model(checkpoint_dir: str | Path, *, model_version_label: str = "") -> ByteGPT:
    """The trained ``ByteGPT`` from a checkpoint directory (for the demo's model service)."""
    adapter = ReferenceTextAdapter(str(checkpoint_dir), {}, model_version_label=model_version_label)
    adapter.validate()
    model = adapter.load_model()
    assert isinstance(model, ByteGPT)
    return model


def describe_checkpoint(checkpoint_dir: str | Path) -> dict[str, Any]:
    """The JSON config a reference checkpoint was saved with."""
    return json.loads((Path(checkpoint_dir) / CHECKPOINT_CONFIG).read_text())
