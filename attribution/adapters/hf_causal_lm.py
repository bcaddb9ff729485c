"""Hugging Face ``transformers`` causal language models (GPT-2 style and any ``AutoModelForCausalLM``).

The loss of one example is the negative log-likelihood of its *output* tokens given its prompt: prompt
positions carry label -100, exactly as ``model(input_ids, labels=labels)`` would ignore them. A training work is
an output with an empty prompt. Per-example reduction is the mean over output tokens (config ``"reduction":
"sum"`` switches to the sum): the mean is what the model's own ``.loss`` reports, and it keeps a long work from
outweighing a short one merely by its length.

Config (the model version's ``config`` JSON):
    max_length: tokens per example (default: the model's context size). A work keeps its first tokens; a
        generation keeps its whole output when it fits and the end of its prompt in the remaining room.
    reduction: "mean" (default) or "sum".
    add_bos: prepend the tokenizer's BOS token so the first output token is predicted too (default True when
        the tokenizer has one).

The checkpoint is a local directory written by ``save_pretrained`` (model and tokenizer); nothing is downloaded:
``HF_HUB_OFFLINE`` is set before transformers is imported and loading uses ``local_files_only``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import nn

from attribution.adapters.base import (
    METHOD_GRADIENT,
    GenerationInput,
    ModelAdapter,
    WorkInput,
    batched,
    set_offline_hub,
)
from attribution.adapters.losses import IGNORE_INDEX, causal_lm_loss, sampled_causal_lm_loss


class HFCausalLMAdapter(ModelAdapter):
    """A ``transformers`` causal LM saved with ``save_pretrained`` in a local directory."""

    method = METHOD_GRADIENT
    modality = "text"
    work_kinds = ("text", "code")
    default_batch_size = 8

    def __init__(self, checkpoint_uri: str, config: dict[str, Any] | None, *, model_version_label: str) -> None:
        super().__init__(checkpoint_uri, config, model_version_label=model_version_label)
        self._tokenizer = None
        self._max_length: int | None = None

    # --- checks and loading ------------------------------------------------------------------------------

    def validate(self) -> None:
        path = self.checkpoint_dir()
        if not path.is_dir() or not (path / "config.json").is_file():
            raise self.error(
                f"checkpoint {self.checkpoint_uri!r} is not a Hugging Face model directory (no config.json); "
                "save the model and its tokenizer with save_pretrained(dir)"
            )
        reduction = self.config.get("reduction", "mean")
        if reduction not in ("mean", "sum"):
            raise self.error(f"config.reduction must be 'mean' or 'sum', got {reduction!r}")
        max_length = self.config.get("max_length")
        if max_length is not None and (not isinstance(max_length, int) or max_length < 2):
            raise self.error(f"config.max_length must be an integer >= 2, got {max_length!r}")

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "reduction": self.config.get("reduction", "mean")}

    def load_model(self) -> nn.Module:
        set_offline_hub()
        from transformers import AutoModelForCausalLM

        path = self.checkpoint_dir()
        try:
            model = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True)
        except Exception as exc:
            raise self.error(f"cannot load the model from {str(path)!r}: {type(exc).__name__}: {exc}") from exc
        model.to("cpu").eval()
        return model

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            set_offline_hub()
            from transformers import AutoTokenizer

            path = self.checkpoint_dir()
            try:
                self._tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            except Exception as exc:
                raise self.error(f"cannot load the tokenizer from {str(path)!r}: {type(exc).__name__}: {exc}") from exc
        return self._tokenizer

    @property
    def max_length(self) -> int:
        if self._max_length is None:
            configured = self.config.get("max_length")
            if configured is None:
                # Read the context size from config.json rather than loading the weights to ask the model.
                model_config = json.loads((self.checkpoint_dir() / "config.json").read_text())
                configured = model_config.get("n_positions") or model_config.get("max_position_embeddings") or 1024
            self._max_length = int(configured)
        return self._max_length

    # --- batches ------------------------------------------------------------------------------------------

    def _ids(self, text: str) -> list[int]:
        if not text:
            return []
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _bos(self) -> list[int]:
        bos = self.tokenizer.bos_token_id
        if self.config.get("add_bos", True) and bos is not None:
            return [int(bos)]
        return []

    def encode(self, prompt: str, output: str) -> tuple[list[int], int]:
        """Token ids of ``[BOS] prompt output`` (truncated to ``max_length``) and how many lead the output."""
        head = self._bos()
        prompt_ids = self._ids(prompt)
        output_ids = self._ids(output)
        room = self.max_length - len(head)
        output_ids = output_ids[:room]
        keep_prompt = room - len(output_ids)
        prompt_ids = prompt_ids[len(prompt_ids) - keep_prompt :] if keep_prompt > 0 else []
        ids = head + prompt_ids + output_ids
        return ids, len(head) + len(prompt_ids)

    def collate(self, examples: Sequence[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """Right-padded ``input_ids``/``attention_mask`` and ``labels`` (-100 on prompt and padding)."""
        encoded = [self.encode(prompt, output) for prompt, output in examples]
        width = max(1, max(len(ids) for ids, _ in encoded))
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        input_ids = torch.full((len(encoded), width), int(pad), dtype=torch.long)  # (B, T)
        attention = torch.zeros((len(encoded), width), dtype=torch.long)  # (B, T)
        labels = torch.full((len(encoded), width), IGNORE_INDEX, dtype=torch.long)  # (B, T)
        for row, (ids, n_context) in enumerate(encoded):
            if not ids:
                continue
            input_ids[row, : len(ids)] = torch.tensor(ids)
            attention[row, : len(ids)] = 1
            labels[row, n_context : len(ids)] = torch.tensor(ids[n_context:], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}

    def work_batches(self, works: Sequence[WorkInput], batch_size: int) -> Iterator[dict[str, torch.Tensor]]:
        self.check_works(works)
        for chunk in batched(works, batch_size):
            yield self.collate([("", work.text_content()) for work in chunk])

    def generation_batches(
        self, generations: Sequence[GenerationInput], batch_size: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        for chunk in batched(generations, batch_size):
            yield self.collate([(gen.prompt, gen.output_text) for gen in chunk])

    # --- loss ---------------------------------------------------------------------------------------------

    def loss_fn(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-example NLL of the output tokens given the prompt, ``[B]`` (mean over tokens by default)."""
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, T, V)
        return causal_lm_loss(logits, batch["labels"], reduction=self.config.get("reduction", "mean"))

    @property
    def supports_sampled_fisher(self) -> bool:
        return True

    def fisher_loss_fn(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``loss_fn`` over the same output positions, each token drawn from the model's prediction."""
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return sampled_causal_lm_loss(logits, batch["labels"], reduction=self.config.get("reduction", "mean"))
