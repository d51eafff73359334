"""Tiny real language models for the text2text and chat tasks, built offline in about a second or two.

- ``build_t5``: a T5 (d_model 32, 2+2 layers) trained to reverse 2-4 letters (``a b c`` -> ``c b a``);
  ``reverse_examples`` / ``write_reverse_data`` give the sources and references.
- ``build_chat_gpt2``: the counting GPT-2 of :mod:`tiny_models` with a chat template on its tokenizer
  that renders a user message ``3 4 5`` as ``count 3 4 5 ->`` (so the trained model answers ``6 7``).

Deterministic for a seed; ``shared(name)`` builds each once per process.
"""

from __future__ import annotations

import csv
import functools
import itertools
import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tiny_models

from modelcheck.models.hardware import torch_threads

LETTERS = tuple("abcdefgh")
CHAT_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}count {{ m['content'] }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %} ->{% endif %}"
)


def reverse_examples() -> list[tuple[str, str]]:
    """``(source, reference)``: every sequence of 2 or 3 distinct letters of ``abcdef``, and its reverse."""
    rows = []
    for m in (2, 3):
        for letters in itertools.permutations(LETTERS[:6], m):
            rows.append((" ".join(letters), " ".join(reversed(letters))))
    return rows


def write_reverse_data(path: Path, rows: Sequence[tuple[str, Any]] | None = None) -> Path:
    """Write ``source,reference`` rows (default: every reverse example) as CSV; lists are written as JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["source", "reference"])
        for source, ref in reverse_examples() if rows is None else rows:
            writer.writerow([source, ref if isinstance(ref, str) else json.dumps(ref)])
    return path


def seq2seq_tokenizer(max_length: int = 16) -> Any:
    """A WordLevel tokenizer over the letters that ends every source with ``</s>``, as T5's does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(["<pad>", "</s>", "<unk>", *LETTERS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=max_length, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )


def build_t5(out: Path, *, trained: bool = True, seed: int = 0, steps: int = 200) -> Path:
    """A T5 that reverses ``reverse_examples`` (then ends with ``</s>``), in ``out``."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = seq2seq_tokenizer()
    config = T5Config(
        vocab_size=len(tokenizer), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=2,
        pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, dropout_rate=0.0,
    )  # fmt: skip
    with torch_threads(1):
        torch.manual_seed(seed)
        model = T5ForConditionalGeneration(config)
        if trained:
            sources, references = zip(*reverse_examples(), strict=True)
            batch = tokenizer(list(sources), padding=True, return_tensors="pt")
            labels = tokenizer(list(references), padding=True, return_tensors="pt")["input_ids"]
            labels[labels == tokenizer.pad_token_id] = -100
            tiny_models._fit(model, {**batch, "labels": labels}, steps=steps, lr=1e-2)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return Path(out)


def build_chat_gpt2(out: Path, *, trained: bool = True) -> Path:
    """The counting GPT-2 with :data:`CHAT_TEMPLATE` set on its tokenizer, in ``out``."""
    from transformers import AutoTokenizer

    shutil.copytree(tiny_models.shared("gpt2" if trained else "gpt2-untrained"), out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    return Path(out)


@functools.cache
def shared(name: str) -> Path:
    """``t5``, ``t5-untrained``, ``chat-gpt2`` or ``chat-gpt2-untrained``, built once per process (read-only)."""
    builders = {
        "t5": lambda out: build_t5(out),
        "t5-untrained": lambda out: build_t5(out, trained=False),
        "chat-gpt2": lambda out: build_chat_gpt2(out),
        "chat-gpt2-untrained": lambda out: build_chat_gpt2(out, trained=False),
    }
    return builders[name](tiny_models._shared_root() / name)
