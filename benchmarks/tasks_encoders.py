"""Token classification, question answering, multi-label: examples/s of modelcheck against a hand loop and the pipeline.

Per task, on the tiny BERT models of the tests (``tests/tiny_models.py``: the tagger, the reader, the
topic classifier) and the same rows:

- the transformers pipeline (``token-classification``; ``text-classification`` with sigmoid scores for
  every label; transformers 5 has no ``question-answering`` pipeline any more), ``batch_size=16``. ``evaluate.evaluator`` runs this same pipeline
  and then its metric, so its examples/s can only be lower than the pipeline's: ``≥ 2×`` the pipeline
  means ``≥ 2×`` the evaluator (which cannot run here anyway: it fetches its metric scripts from the Hub);
- a hand-written batched loop: tokenise 16 rows (fast tokenizer, padding), one forward pass, then the
  task's decoding with numpy (first subword of each word; the best span with end ≥ start; sigmoid ≥ 0.5);
- modelcheck: a gate (JSONL data, one metric check) run by ``modelcheck.run.gate.run_gate`` with the model
  loaded, so the figure includes reading and hashing the data and computing the metric with its library.

    python benchmarks/tasks_encoders.py [--rows 2000] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

GATES = {
    "token-classification": ("tagger", "input: words, label: tags", "{name: f1, metric: f1, min: 0}"),
    "question-answering": ("reader", "input: [question, context], label: answers", "{name: f1, metric: f1, min: 0}"),
    "multi-label-classification": ("topics", "input: text, label: topics", "{name: f1, metric: f1, min: 0}"),
}


def rows_of(task: str, n: int) -> list[dict[str, Any]]:
    import tiny_models

    if task == "token-classification":
        return [{"words": w, "tags": t} for w, t in tiny_models.tagged_sentences(n, seed=5)]
    if task == "question-answering":
        return [{"question": r["question"], "context": r["context"], "answers": [r["answer"]] if r["answer"] else []}
                for r in tiny_models.qa_examples(n, seed=3)]  # fmt: skip
    return [{"text": text, "topics": topics} for text, topics in tiny_models.topic_texts(n, seed=4)]


def hand_loop(task: str, model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> list[Any]:
    import numpy as np
    import torch

    out: list[Any] = []
    with torch.inference_mode():
        for start in range(0, len(rows), 16):
            batch = rows[start : start + 16]
            if task == "token-classification":
                words = [r["words"] for r in batch]
                encoded = tokenizer(words, is_split_into_words=True, padding=True, truncation=True, return_tensors="pt")
                best = model(**encoded).logits.argmax(-1).numpy()
                for i in range(len(words)):
                    ids, seen, tags = encoded.word_ids(i), set(), []
                    for position, word in enumerate(ids):
                        if word is not None and word not in seen:
                            seen.add(word)
                            tags.append(model.config.id2label[int(best[i, position])])
                    out.append(tags)
            elif task == "question-answering":
                encoded = tokenizer([r["question"] for r in batch], [r["context"] for r in batch], padding=True,
                                    truncation="only_second", return_offsets_mapping=True, return_tensors="pt")  # fmt: skip
                offsets = encoded.pop("offset_mapping").numpy()
                logits = model(**encoded)
                starts, ends = logits.start_logits.numpy(), logits.end_logits.numpy()
                for i, row in enumerate(batch):
                    context = np.array([s == 1 for s in encoded.sequence_ids(i)])
                    scores = starts[i][:, None] + ends[i][None, :]
                    allowed = np.triu(np.outer(context, context)) & (np.arange(len(context))[None, :] -
                                                                     np.arange(len(context))[:, None] < 30)  # fmt: skip
                    null = starts[i][0] + ends[i][0]
                    scores = np.where(allowed, scores, -np.inf)
                    s, e = np.unravel_index(int(np.argmax(scores)), scores.shape)
                    out.append("" if null > scores[s, e] else row["context"][offsets[i][s][0] : offsets[i][e][1]])
            else:
                encoded = tokenizer([r["text"] for r in batch], padding=True, truncation=True, return_tensors="pt")
                out.extend(torch.sigmoid(model(**encoded).logits).numpy() >= 0.5)
    return out


def pipeline_run(task: str, model: Any, tokenizer: Any, rows: list[dict[str, Any]]) -> Any:
    from transformers import pipeline

    if task == "token-classification":
        pipe = pipeline("token-classification", model=model, tokenizer=tokenizer)
        return pipe([" ".join(r["words"]) for r in rows], batch_size=16)
    pipe = pipeline("text-classification", model=model, tokenizer=tokenizer)
    return pipe([r["text"] for r in rows], batch_size=16, top_k=None, function_to_apply="sigmoid")


def throughput(task: str, n: int, threads: int, repeats: int) -> list[tuple[str, float | None]]:
    import tiny_models
    from tasks import timed
    from transformers import (
        AutoModelForQuestionAnswering,
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    from modelcheck.gatefile import load_gate
    from modelcheck.models.cache import ModelCache
    from modelcheck.run.gate import run_gate

    name, data_keys, check = GATES[task]
    folder = tiny_models.shared(name)
    auto = {"token-classification": AutoModelForTokenClassification, "question-answering": AutoModelForQuestionAnswering,
            "multi-label-classification": AutoModelForSequenceClassification}[task]  # fmt: skip
    model, tokenizer = auto.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(folder)
    rows = rows_of(task, n)
    pipe = None  # transformers 5 removed the question-answering pipeline (and evaluate's QA evaluator runs it)
    if task != "question-answering":
        pipe = timed(lambda: pipeline_run(task, model, tokenizer, rows), repeats)
    seconds = [
        ("transformers pipeline (batch_size 16)", pipe),
        ("hand-written batched loop", timed(lambda: hand_loop(task, model, tokenizer, rows), repeats)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data.jsonl"
        data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        gate_file = Path(tmp) / "gate.yaml"
        gate_file.write_text(
            f"version: 1\nmodel: {{source: {folder}, task: {task}, device: cpu, batch_size: 16, threads: {threads}}}\n"
            f"data: {{source: {data}, {data_keys}}}\nchecks:\n  - {check}\n",
            encoding="utf-8",
        )
        gate = load_gate(gate_file)
        cache = ModelCache()
        cache.get(gate.model)  # loading is not part of the figure, as for the loops
        seconds.append(("modelcheck gate (run_gate)", timed(lambda: run_gate(gate, file="g.yaml", models=cache, stage=None), repeats)))  # fmt: skip
        cache.close()
    return [(label, None if s is None else n / s) for label, s in seconds]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    import torch
    from tasks import print_header, print_rates
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
    print(f"{args.rows} rows per task, {args.threads} threads, median of {args.repeats}\n")
    print_header()
    for task in GATES:
        print_rates(task, throughput(task, args.rows, args.threads, args.repeats))


if __name__ == "__main__":
    main()
