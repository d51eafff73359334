"""Tiny real models for the transformers backend's tasks, built (and trained) offline in about a second each.

- ``build_vit``: a ViT (32x32 images, 8x8 patches, hidden 32, 2 layers) that tells mostly-red from
  mostly-blue images; ``write_image_folder`` writes such images as ``<folder>/<label>/*.png``.
- ``build_gpt2``: a GPT-2 (n_embd 32, 2 layers) that continues ``count 3 4 5 ->`` with `` 6 7``;
  ``count_examples`` / ``write_count_data`` give the prompts and answers.
- ``build_embedder``: an untrained tiny BERT ``AutoModel`` for feature extraction.

Every builder is deterministic for a seed and writes a folder with ``save_pretrained``; ``shared(name)``
builds a named model once per process for every test module that needs it.
"""

from __future__ import annotations

import atexit
import csv
import functools
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from modelcheck.models.hardware import torch_threads

IMAGE_LABELS = ("blue", "red")
COUNT_WORDS = ("count", "->", *(str(i) for i in range(30)))
EMBEDDER_WORDS = tuple(
    "a the cat dog bird sat ran flew on in under mat sofa tree house garden quickly slowly happily "
    "red blue green big small old young market price rose fell stock bank river water boat".split()
)


def word_tokenizer(words: Sequence[str], *, specials: Sequence[str], max_length: int, **tokens: str) -> Any:
    """A WordLevel tokenizer over ``specials + words`` wrapped for ``AutoTokenizer``.

    With ``cls_token``/``sep_token`` among ``tokens`` it frames texts as ``[CLS] text [SEP]``.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate([*specials, *words])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=tokens["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if "cls_token" in tokens:
        cls, sep = tokens["cls_token"], tokens["sep_token"]
        tok.post_processor = processors.TemplateProcessing(
            single=f"{cls} $A {sep}", special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])]
        )
    return PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=max_length, **tokens)


# -- image classification -------------------------------------------------------------------------


def color_images(n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images uint8 (n, 32, 32, 3), label ids)``: in a red image 75% of pixels are reddish, else bluish."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(IMAGE_LABELS)), n_per_class)
    images = rng.integers(0, 90, size=(len(labels), 32, 32, 3), dtype=np.uint8)
    for i, label in enumerate(labels):
        red_share = 0.75 if IMAGE_LABELS[label] == "red" else 0.25
        red = rng.random((32, 32)) < red_share
        images[i, ..., 0] = np.where(red, rng.integers(150, 256, (32, 32)), images[i, ..., 0])
        images[i, ..., 2] = np.where(~red, rng.integers(150, 256, (32, 32)), images[i, ..., 2])
    return images, labels


def write_image_folder(folder: Path, *, n_per_class: int = 24, seed: int = 1) -> Path:
    """Write ``color_images`` as ``folder/<label>/<i>.png`` (an image folder) and return ``folder``."""
    from PIL import Image

    images, labels = color_images(n_per_class, seed)
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        path = Path(folder) / IMAGE_LABELS[label] / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
    return Path(folder)


def build_vit(out: Path, *, trained: bool = True, seed: int = 0) -> Path:
    """A ViT image classifier (labels blue, red) and its ``ViTImageProcessor`` in ``out``."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    config = ViTConfig(
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        id2label=dict(enumerate(IMAGE_LABELS)),
        label2id={name: i for i, name in enumerate(IMAGE_LABELS)},
    )
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    with torch_threads(1):
        torch.manual_seed(seed)
        model = ViTForImageClassification(config)
        if trained:
            images, labels = color_images(48, seed + 100)
            pixels = processor(images=list(images), return_tensors="pt")["pixel_values"]
            _fit(model, {"pixel_values": pixels, "labels": torch.as_tensor(labels)}, steps=15, lr=3e-3)
    model.eval()
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return Path(out)


# -- text generation ------------------------------------------------------------------------------


def count_examples() -> list[tuple[str, str]]:
    """``(prompt, answer)``: two to four consecutive numbers, then the next two (``count 3 4 5 ->``, ``6 7``)."""
    return [
        ("count " + " ".join(str(k + i) for i in range(m)) + " ->", f"{k + m} {k + m + 1}")
        for k in range(20)
        for m in (2, 3, 4)
    ]


def write_count_data(path: Path, rows: Sequence[tuple[str, str]] | None = None) -> Path:
    """Write ``prompt,answer`` rows (default: every count example) as CSV and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["prompt", "answer"])
        writer.writerows(count_examples() if rows is None else rows)
    return path


def build_gpt2(out: Path, *, trained: bool = True, seed: int = 0, steps: int = 80) -> Path:
    """A GPT-2 that answers ``count_examples`` (then stops with ``<eos>``), in ``out``.

    The tokenizer has no pad token: batching must fall back to the end-of-sequence token.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = word_tokenizer(
        COUNT_WORDS, specials=["<eos>", "<unk>"], max_length=32, eos_token="<eos>", unk_token="<unk>"
    )
    eos = tokenizer.eos_token_id
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=32,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    with torch_threads(1):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config)
        if trained:
            sequences = [tokenizer(f"{p} {a}")["input_ids"] + [eos] for p, a in count_examples()]
            width = max(map(len, sequences))
            ids = torch.full((len(sequences), width), eos)
            labels = torch.full((len(sequences), width), -100)
            mask = torch.zeros((len(sequences), width), dtype=torch.long)
            for i, seq in enumerate(sequences):
                ids[i, : len(seq)] = labels[i, : len(seq)] = torch.tensor(seq)
                mask[i, : len(seq)] = 1
            _fit(model, {"input_ids": ids, "attention_mask": mask, "labels": labels}, steps=steps, lr=1e-2)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return Path(out)


# -- feature extraction ---------------------------------------------------------------------------


def build_embedder(out: Path, *, seed: int = 0, max_length: int = 64) -> Path:
    """An untrained tiny BERT ``AutoModel`` (hidden 32, 2 layers) with its tokenizer, in ``out``."""
    import torch
    from transformers import BertConfig, BertModel

    tokenizer = word_tokenizer(
        EMBEDDER_WORDS,
        specials=["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
        max_length=max_length,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
    )
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_length,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = BertModel(config)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return Path(out)


def sentences(n: int, seed: int) -> list[str]:
    """``n`` deterministic sentences of 3 to 12 embedder words."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(EMBEDDER_WORDS, size=int(rng.integers(3, 13)))) for _ in range(n)]


# -- one build per process ------------------------------------------------------------------------


@functools.cache
def _shared_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="modelcheck-tiny-models-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def shared(name: str) -> Path:
    """The model ``name`` (``vit``, ``vit-untrained``, ``gpt2``, ``gpt2-untrained``, ``embedder``,
    ``embedder-other``), built on first use in this process. Treat the folder as read-only."""
    builders = {
        "vit": lambda out: build_vit(out),
        "vit-untrained": lambda out: build_vit(out, trained=False),
        "gpt2": lambda out: build_gpt2(out),
        "gpt2-untrained": lambda out: build_gpt2(out, trained=False),
        "embedder": lambda out: build_embedder(out),
        "embedder-other": lambda out: build_embedder(out, seed=1),
    }
    return builders[name](_shared_root() / name)


# -- training -------------------------------------------------------------------------------------


def _fit(model: Any, batch: dict[str, Any], *, steps: int, lr: float) -> None:
    """Full-batch AdamW for ``steps`` steps (the tasks are tiny: one batch holds all the data)."""
    import torch

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
