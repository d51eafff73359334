"""Build the example sentiment model and its test data, offline and deterministically.

The task is synthetic: short English or German sentences made of neutral filler words plus a few
sentiment words of one polarity. A tiny BERT (~21k parameters) learns it in about a second on a CPU.

    python examples/sentiment/build.py              # model/ (trained) and test.csv
    python examples/sentiment/build.py --untrained  # model-untrained/ (random init, same architecture)
    python examples/sentiment/build.py --out DIR    # write the model to DIR instead
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path
from typing import Any

from modelcheck.models.hardware import torch_threads

HERE = Path(__file__).resolve().parent
LABELS = ("negative", "positive")
_VOCABULARY = """
en positive  good great excellent love wonderful happy amazing fine nice perfect
en negative  bad awful terrible hate poor sad horrible boring broken worst
en filler    the a this movie film was is and it very really quite plot actors story
en filler    i we today show ending music
de positive  gut toll super liebe wunderbar froh klasse schön prima perfekt
de negative  schlecht furchtbar schrecklich hasse arm traurig mies langweilig kaputt übel
de filler    der die das film war ist und es sehr wirklich ziemlich handlung schauspieler geschichte
de filler    ich wir heute serie ende musik
"""
#: WORDS[language][group] -> words, group being "positive", "negative" or "filler".
WORDS: dict[str, dict[str, list[str]]] = {}
for _line in _VOCABULARY.strip().splitlines():
    _language, _group, *_words = _line.split()
    WORDS.setdefault(_language, {}).setdefault(_group, []).extend(_words)
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
MAX_LEN = 64


def make_examples(n: int, seed: int) -> list[tuple[str, str, str]]:
    """``n`` deterministic ``(text, label, language)`` rows, alternating labels and languages."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = LABELS[i % 2]
        language = ("en", "de")[(i // 2) % 2]
        words = WORDS[language]
        length = rng.randint(5, 12)
        n_sentiment = rng.randint(1, min(3, length - 3))
        tokens = rng.choices(words["filler"], k=length - n_sentiment)
        tokens += rng.choices(words[label], k=n_sentiment)
        rng.shuffle(tokens)
        rows.append((" ".join(tokens), label, language))
    return rows


def write_test_data(path: Path, *, n: int = 400, seed: int = 1) -> Path:
    """Write ``n`` labelled rows as CSV with columns ``text,label,language`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["text", "label", "language"])
        writer.writerows(make_examples(n, seed))
    return path


def build_tokenizer() -> Any:
    """A WordLevel tokenizer over the task's vocabulary, wrapped for ``AutoTokenizer``."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = sorted({w for lang in WORDS.values() for group in lang.values() for w in group})
    vocab = {token: i for i, token in enumerate(SPECIAL + words)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        model_max_length=MAX_LEN,
    )


def build_model(out_dir: Path, *, trained: bool = True, seed: int = 0) -> Path:
    """Write a tiny BERT sentiment classifier (model + tokenizer) to ``out_dir`` and return it.

    ``trained=False`` saves the seeded random initialisation of the same architecture.
    """
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    out_dir = Path(out_dir)
    tokenizer = build_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LEN,
        pad_token_id=tokenizer.pad_token_id,
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    with torch_threads(1):  # two shared cores: one thread trains fastest, and reproducibly
        torch.manual_seed(seed)
        model = BertForSequenceClassification(config)
        if trained:
            _train(model, tokenizer, seed)
    model.eval()
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def _train(model: Any, tokenizer: Any, seed: int, *, epochs: int = 4, batch_size: int = 32) -> None:
    """AdamW, lr 1e-3, on 800 synthetic examples (a different seed from the test data)."""
    import torch

    rows = make_examples(800, seed + 1000)
    encoded = tokenizer([text for text, _, _ in rows], padding=True, return_tensors="pt")
    labels = torch.tensor([LABELS.index(label) for _, label, _ in rows])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(rows), generator=generator).tolist()
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            loss = model(**{k: v[idx] for k, v in encoded.items()}, labels=labels[idx]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--untrained", action="store_true", help="save the random initialisation")
    parser.add_argument("--out", type=Path, help="model folder (default: model/ or model-untrained/ here)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out or HERE / ("model-untrained" if args.untrained else "model")
    print(f"model: {build_model(out, trained=not args.untrained, seed=args.seed)}")
    print(f"data:  {write_test_data(HERE / 'test.csv')}")


if __name__ == "__main__":
    main()
