"""Tiny real models for the transformers backend's tasks, built (and trained) offline in about a second each.

- ``build_vit``: a ViT (32x32 images, 8x8 patches, hidden 32, 2 layers) that tells mostly-red from
  mostly-blue images; ``write_image_folder`` writes such images as ``<folder>/<label>/*.png``.
- ``build_gpt2``: a GPT-2 (n_embd 32, 2 layers) that continues ``count 3 4 5 ->`` with `` 6 7``;
  ``count_examples`` / ``write_count_data`` give the prompts and answers.
- ``build_embedder``: an untrained tiny BERT ``AutoModel`` for feature extraction.
- ``build_tagger``: a BERT token classifier (PER/LOC/ORG, IOB2) over a WordPiece vocabulary that splits
  some names into several subwords; ``tagged_sentences`` gives its data.
- ``build_reader``: a BERT extractive QA head that answers who/where/which company from a short context
  (and nothing when the context has no company); ``qa_examples`` gives its data.
- ``build_topics``: a BERT multi-label classifier (``problem_type: multi_label_classification``) of
  sports/politics/weather words; ``topic_texts`` gives its data.

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


# -- language tasks: token classification, question answering, multi-label -------------------------

PEOPLE = (("ann", "smith"), ("bob", "jones"), ("carla", "lopez"), ("dave", "miller"), ("eve", "brown"))
PLACES = ("rome", "paris", "london", "new york", "berlin", "madrid")
COMPANIES = ("acme", "globex", "initech", "umbrella")
TAGS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG")
#: Whole words of the WordPiece vocabulary; the names missing here are split into the pieces below.
_WHOLE = (
    "lives in works at and visited with likes today the office is near who where which company ? . "
    "ann bob carla dave eve jones lopez miller rome paris berlin madrid new york acme globex umbrella"
).split()
_PIECES = ("smi", "##th", "bro", "##wn", "lon", "##don", "ini", "##tech")
TOPICS = ("sports", "politics", "weather")
_TOPIC_WORDS = {"sports": ("ball", "goal", "team"), "politics": ("vote", "law", "senate"),
                "weather": ("rain", "sun", "storm")}  # fmt: skip
_FILLER = ("the", "a", "today", "news", "about", "and", "big", "report", "this", "week")


def piece_tokenizer(max_length: int = 64) -> Any:
    """A WordPiece tokenizer (``[CLS] a [SEP] b [SEP]`` for pairs) that splits smith, brown, london, initech."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys([*specials, *_WHOLE, *_PIECES]))}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_max_length=max_length, pad_token="[PAD]", unk_token="[UNK]",
        cls_token="[CLS]", sep_token="[SEP]",
    )  # fmt: skip


def _bert_config(tokenizer: Any, max_length: int, **extra: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=max_length, pad_token_id=tokenizer.pad_token_id, **extra,
    )  # fmt: skip


def tagged_sentences(n: int, seed: int) -> list[tuple[list[str], list[str]]]:
    """``n`` deterministic (words, IOB2 tags) sentences about people, places and companies."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        first, last = PEOPLE[rng.integers(len(PEOPLE))]
        person = [(first, "B-PER")] + ([(last, "I-PER")] if rng.random() < 0.5 else [])
        place = [(w, ("B-LOC" if i == 0 else "I-LOC")) for i, w in enumerate(PLACES[rng.integers(len(PLACES))].split())]
        company = [(COMPANIES[rng.integers(len(COMPANIES))], "B-ORG")]
        shape = rng.integers(3)
        if shape == 0:
            pairs = [*person, ("lives", "O"), ("in", "O"), *place]
        elif shape == 1:
            pairs = [*person, ("works", "O"), ("at", "O"), *company, ("in", "O"), *place, (".", "O")]
        else:
            pairs = [("the", "O"), *company, ("office", "O"), ("is", "O"), ("near", "O"), *place]
        out.append(([w for w, _ in pairs], [t for _, t in pairs]))
    return out


def build_tagger(out: Path, *, trained: bool = True, seed: int = 0, steps: int = 40) -> Path:
    """A tiny BERT token classifier trained on ``tagged_sentences`` (labels on each word's first subword)."""
    import torch
    from transformers import BertForTokenClassification

    tokenizer = piece_tokenizer()
    config = _bert_config(tokenizer, 64, num_labels=len(TAGS), id2label=dict(enumerate(TAGS)),
                          label2id={t: i for i, t in enumerate(TAGS)})  # fmt: skip
    with torch_threads(1):
        torch.manual_seed(seed)
        model = BertForTokenClassification(config)
        if trained:
            data = tagged_sentences(300, seed=seed + 10)
            encoded = tokenizer([w for w, _ in data], is_split_into_words=True, padding=True, return_tensors="pt")
            labels = torch.full(encoded["input_ids"].shape, -100)
            for i, (_, tags) in enumerate(data):
                seen: set[int] = set()
                for position, word in enumerate(encoded.word_ids(i)):
                    if word is not None and word not in seen:
                        seen.add(word)
                        labels[i, position] = TAGS.index(tags[word])
            _fit(model, {**encoded, "labels": labels}, steps=steps, lr=5e-3)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return Path(out)


def qa_examples(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` deterministic {question, context, answer, answer_start} rows; "" answers a missing company."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        first, last = PEOPLE[rng.integers(len(PEOPLE))]
        person = f"{first} {last}" if rng.random() < 0.5 else first
        place = PLACES[rng.integers(len(PLACES))]
        company = COMPANIES[rng.integers(len(COMPANIES))] if rng.random() < 0.75 else None
        context = f"{person} lives in {place}" + (f" and works at {company}" if company else "") + " ."
        kind = rng.integers(3)
        question, answer = [("who ?", person), ("where ?", place), ("which company ?", company or "")][kind]
        rows.append({"question": question, "context": context, "answer": answer,
                     "answer_start": context.index(answer) if answer else -1})  # fmt: skip
    return rows


def build_reader(out: Path, *, trained: bool = True, seed: int = 0, steps: int = 90) -> Path:
    """A tiny BERT extractive QA head trained on ``qa_examples`` (no answer: start = end = [CLS])."""
    import torch
    from transformers import BertForQuestionAnswering

    tokenizer = piece_tokenizer()
    with torch_threads(1):
        torch.manual_seed(seed)
        model = BertForQuestionAnswering(_bert_config(tokenizer, 64))
        if trained:
            data = qa_examples(400, seed=seed + 10)
            encoded = tokenizer([r["question"] for r in data], [r["context"] for r in data], padding=True,
                                return_offsets_mapping=True, return_tensors="pt")  # fmt: skip
            offsets = encoded.pop("offset_mapping")
            starts, ends = torch.zeros(len(data), dtype=torch.long), torch.zeros(len(data), dtype=torch.long)
            for i, row in enumerate(data):
                if not row["answer"]:
                    continue
                first, last = row["answer_start"], row["answer_start"] + len(row["answer"])
                context = [p for p, s in enumerate(encoded.sequence_ids(i)) if s == 1]
                starts[i] = next(p for p in context if offsets[i, p, 0] == first)
                ends[i] = next(p for p in context if offsets[i, p, 1] == last)
            _fit(model, {**encoded, "start_positions": starts, "end_positions": ends}, steps=steps, lr=5e-3)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return Path(out)


def topic_texts(n: int, seed: int) -> list[tuple[str, list[str]]]:
    """``n`` deterministic (text, topics) rows: a text mentions words of 0 to 3 topics among filler words."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        topics = [t for t in TOPICS if rng.random() < 0.4]
        words = [str(w) for w in rng.choice(_FILLER, size=int(rng.integers(2, 6)))]
        words += [str(rng.choice(_TOPIC_WORDS[t])) for t in topics]
        rng.shuffle(words)
        rows.append((" ".join(words), topics))
    return rows


def build_topics(out: Path, *, trained: bool = True, seed: int = 0, steps: int = 100) -> Path:
    """A tiny BERT multi-label classifier of ``TOPICS`` trained on ``topic_texts`` (sigmoid, BCE)."""
    import torch
    from transformers import BertForSequenceClassification

    words = sorted({*_FILLER, *(w for ws in _TOPIC_WORDS.values() for w in ws)})
    tokenizer = word_tokenizer(words, specials=["[PAD]", "[UNK]", "[CLS]", "[SEP]"], max_length=32,
                               pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]", sep_token="[SEP]")  # fmt: skip
    config = _bert_config(tokenizer, 32, num_labels=len(TOPICS), id2label=dict(enumerate(TOPICS)),
                          label2id={t: i for i, t in enumerate(TOPICS)},
                          problem_type="multi_label_classification")  # fmt: skip
    with torch_threads(1):
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
        if trained:
            data = topic_texts(400, seed=seed + 10)
            encoded = tokenizer([t for t, _ in data], padding=True, return_tensors="pt")
            labels = torch.tensor([[float(t in topics) for t in TOPICS] for _, topics in data])
            _fit(model, {**encoded, "labels": labels}, steps=steps, lr=5e-3)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return Path(out)


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
        "tagger": lambda out: build_tagger(out),
        "tagger-untrained": lambda out: build_tagger(out, trained=False),
        "reader": lambda out: build_reader(out),
        "reader-untrained": lambda out: build_reader(out, trained=False),
        "topics": lambda out: build_topics(out),
        "topics-untrained": lambda out: build_topics(out, trained=False),
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
