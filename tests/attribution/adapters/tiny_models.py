"""A tiny GPT-2 and its tokenizer, built locally (nothing downloaded), for tests and benchmarks."""

from __future__ import annotations

from tests.attribution.adapters.corpus import make_texts

TOKENIZER_TEXTS = make_texts(30, seed=123)


def build_tiny_gpt2(
    directory, *, seed: int = 0, n_positions: int = 64, n_embd: int = 32, n_layer: int = 2, n_head: int = 2
) -> str:
    """A GPT-2 (2 layers x 32 by default) and a byte-level BPE tokenizer trained here, saved to ``directory``."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

    tokenizer = ByteLevelBPETokenizer()
    tokenizer.train_from_iterator(TOKENIZER_TEXTS, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    fast = GPT2TokenizerFast(
        tokenizer_object=tokenizer._tokenizer,
        bos_token="<|endoftext|>",
        eos_token="<|endoftext|>",
        unk_token="<|endoftext|>",
    )
    fast.save_pretrained(str(directory))
    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=len(fast),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(str(directory))
    return str(directory)
