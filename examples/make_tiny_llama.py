"""Make a tiny random Llama checkpoint (under 1 MB) for CPU end-to-end runs.

    python examples/make_tiny_llama.py examples/models/tiny-llama

Needs ``torch``, ``transformers`` and ``tokenizers`` (installed with ``aimc[cpu]``). The
tokenizer is a byte-level BPE trained on a few sentences here, so nothing is downloaded.
Shapes: hidden 64, 2 layers, 4 heads of 32 (vLLM's CPU attention needs head_dim >= 32),
2 KV heads, vocabulary 1000. Weights come from a fixed seed: the same folder every time.
"""

from __future__ import annotations

import sys
from pathlib import Path

CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A recipe says how a model is served on which hardware.",
    "aimc validates recipes, resolves a configuration and renders launch artifacts.",
    "Hello, how are you? I am fine, thank you. What is the capital of France? Paris.",
    "One two three four five six seven eight nine ten.",
] * 20


def make(out: Path) -> None:
    """Write config, weights and tokenizer of the tiny model to ``out``."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1000,
        special_tokens=["<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>")
    fast.model_max_length = 2048
    fast.save_pretrained(out)

    config = LlamaConfig(
        vocab_size=1000,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=2048,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.save_pretrained(out, safe_serialization=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: make_tiny_llama.py OUT_DIR")
    make(Path(sys.argv[1]))
