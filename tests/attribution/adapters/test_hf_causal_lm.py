"""The Hugging Face causal-LM adapter: its per-example loss is the model's own loss on the output span."""

from __future__ import annotations

import pytest
import torch

from attribution.adapters import AdapterError, GenerationInput, WorkInput, adapter_load
from attribution.adapters.losses import IGNORE_INDEX

ATOL = 1e-5
GENERATIONS = [
    GenerationInput(id=1, prompt="The quiet river", output_text=" finds the golden stone near the garden."),
    GenerationInput(id=2, prompt="", output_text="The bitter wolf chases the silver horse across the bridge."),
    GenerationInput(id=3, prompt="The patient sailor writes the", output_text=" letter"),
    GenerationInput(id=4, prompt="A prompt with no output at all", output_text=""),
]


@pytest.fixture(scope="module")
def hf(tiny_gpt2_dir):
    adapter = adapter_load("attribution.adapters.hf_causal_lm.HFCausalLMAdapter", tiny_gpt2_dir, {}, "tiny-gpt2@v1")
    return adapter, adapter.load_model()


def test_loss_equals_the_models_own_loss_on_the_output_span(hf):
    adapter, model = hf
    batch = next(iter(adapter.generation_batches(GENERATIONS[:3], batch_size=8)))
    with torch.no_grad():
        ours = adapter.loss_fn(model, batch)  # (B,)
        for row, gen in enumerate(GENERATIONS[:3]):
            # The reference: the model alone, unpadded, labels = output tokens, prompt positions ignored.
            prompt_ids = adapter.tokenizer(gen.prompt, add_special_tokens=False)["input_ids"] if gen.prompt else []
            output_ids = adapter.tokenizer(gen.output_text, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([[adapter.tokenizer.bos_token_id, *prompt_ids, *output_ids]])
            labels = ids.clone()
            labels[0, : 1 + len(prompt_ids)] = IGNORE_INDEX
            expected = model(input_ids=ids, labels=labels).loss
            assert ours[row].item() == pytest.approx(expected.item(), abs=ATOL)


def test_loss_is_per_example_whatever_the_batch(hf):
    adapter, model = hf
    with torch.no_grad():
        together = adapter.loss_fn(model, next(iter(adapter.generation_batches(GENERATIONS, batch_size=8))))
        alone = torch.cat([adapter.loss_fn(model, b) for b in adapter.generation_batches(GENERATIONS, batch_size=1)])
    assert together.shape == (len(GENERATIONS),)
    torch.testing.assert_close(together, alone, atol=ATOL, rtol=0)
    # No output tokens: zero loss (and zero gradient), not NaN.
    assert together[3].item() == 0.0


def test_the_prompt_conditions_the_loss_but_is_not_scored(hf):
    adapter, model = hf
    batch = adapter.collate([("The quiet river", " finds the stone")])
    n_prompt = 1 + len(adapter.tokenizer("The quiet river", add_special_tokens=False)["input_ids"])
    assert (batch["labels"][0, :n_prompt] == IGNORE_INDEX).all()
    assert (batch["labels"][0, n_prompt:] != IGNORE_INDEX).all()
    with torch.no_grad():
        with_prompt = adapter.loss_fn(model, batch)
        other_prompt = adapter.loss_fn(model, adapter.collate([("A loud engine", " finds the stone")]))
    assert with_prompt.item() != pytest.approx(other_prompt.item(), abs=1e-6)


def test_sum_reduction_is_mean_times_tokens(tiny_gpt2_dir, hf):
    mean_adapter, model = hf
    sum_adapter = adapter_load("hf-causal-lm", tiny_gpt2_dir, {"reduction": "sum"}, "tiny-gpt2@sum")
    batch = next(iter(mean_adapter.generation_batches(GENERATIONS[:2], batch_size=2)))
    tokens = (batch["labels"][:, 1:] != IGNORE_INDEX).sum(dim=1)
    with torch.no_grad():
        torch.testing.assert_close(sum_adapter.loss_fn(model, batch), mean_adapter.loss_fn(model, batch) * tokens)


def test_long_examples_keep_the_output_and_the_end_of_the_prompt(tiny_gpt2_dir):
    adapter = adapter_load("hf-causal-lm", tiny_gpt2_dir, {"max_length": 16}, "tiny-gpt2@short")
    prompt = "The quiet river finds the golden stone near the garden. " * 3
    ids, start = adapter.encode(prompt, " the letter")
    output_ids = adapter.tokenizer(" the letter", add_special_tokens=False)["input_ids"]
    assert len(ids) == 16
    assert ids[start:] == output_ids
    prompt_ids = adapter.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids[1:start] == prompt_ids[-(start - 1) :]
    work_batch = next(iter(adapter.work_batches([WorkInput(id=1, kind="text", text=prompt * 3)], 1)))
    assert work_batch["input_ids"].shape == (1, 16)


def test_works_of_another_kind_are_refused_naming_the_version(hf):
    adapter, _ = hf
    with pytest.raises(AdapterError, match=r"tiny-gpt2@v1.*reads code/text works.*7 \(image\)"):
        list(adapter.work_batches([WorkInput(id=7, kind="image", data=b"\x89PNG")], 4))


@pytest.mark.parametrize(
    ("config", "message"),
    [({"reduction": "max"}, "config.reduction"), ({"max_length": 1}, "config.max_length")],
)
def test_bad_config_is_refused(tiny_gpt2_dir, config, message):
    with pytest.raises(AdapterError, match=rf"tiny-gpt2@bad.*{message}"):
        adapter_load("hf-causal-lm", tiny_gpt2_dir, config, "tiny-gpt2@bad")


def test_fisher_loss_draws_the_output_tokens_from_the_model(hf):
    adapter, model = hf
    assert adapter.supports_sampled_fisher
    batch = next(iter(adapter.generation_batches(GENERATIONS, batch_size=8)))
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1].float()
        mask = batch["labels"][:, 1:] != IGNORE_INDEX
        # E_{y ~ p}[-log p(y)] is the entropy of the prediction: the mean of many draws of the sampled loss is
        # the mean entropy over each example's output positions (and never looks at the observed tokens)
        log_p = torch.log_softmax(logits, -1)
        entropy = ((-(log_p.exp() * log_p).sum(-1)) * mask).sum(1) / mask.sum(1).clamp(min=1)
        torch.manual_seed(0)
        draws = torch.stack([adapter.fisher_loss_fn(model, batch) for _ in range(300)])
    assert draws.shape == (300, len(GENERATIONS))
    torch.testing.assert_close(draws.mean(0), entropy, rtol=0.05, atol=1e-6)
    assert (draws[:, 3] == 0).all()  # no output tokens: nothing drawn, zero loss
    assert draws[:, 0].std() > 0  # a fresh draw on every call
